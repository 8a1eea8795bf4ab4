"""The layout rules of docs/development.md, checked: import direction, and light `--help` for every command."""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ALLOWED = {
    "schemas": set(),
    "collection": {"schemas"},
    "ssuformer": {"schemas"},
    # collection.job / collection.index: the refine app's upload runs ssu-collect's local ingest (DESIGN.md)
    "annotator": {"schemas", "ssuformer.metrics", "collection.job", "collection.index"},
}
HEAVY = ("torch", "timm", "transformers", "gradio", "ray", "sam2", "pandas", "matplotlib", "datasets")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("pkg", sorted(ALLOWED))
def test_import_direction(pkg):
    bad = []
    for f in (REPO / pkg).rglob("*.py"):
        for mod in _imports(f):
            top = mod.split(".")[0]
            if top in ALLOWED and top != pkg and not any(mod == a or mod.startswith(a + ".") for a in ALLOWED[pkg]):
                bad.append(f"{f.relative_to(REPO)} imports {mod}")
    assert not bad, bad


def _scripts() -> dict[str, str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("name", sorted(_scripts()))
def test_help_works_without_heavy_imports(name):
    module, func = _scripts()[name].split(":")
    code = (
        "import sys\n"
        f"sys.argv = [{name!r}, '--help']\n"
        f"from {module} import {func}\n"
        "try:\n"
        f"    {func}()\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "HEAVY []" in p.stdout, f"{name} --help imported {p.stdout.splitlines()[-1]}"
    assert "xample" in p.stdout, f"{name} --help shows no example"
