"""The layout rules of docs/development.md, checked: import direction, no import cycle, light `--help`."""

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
    # collection.job / .index / .request: the refine app's upload runs ssu-collect's local ingest (DESIGN.md);
    # ssuformer.predict: ssu-annotate --drafter drafts clips with a trained checkpoint (its public prediction API)
    "annotator": {"schemas", "ssuformer.metrics", "ssuformer.predict", "collection.job", "collection.index",
                  "collection.request"},
    "bench": {"schemas", "collection", "annotator", "ssuformer"},
}
# annotator's rooms (one per stage) and the other rooms each may import; the package root holds only small shared
# leaves (ROOT_LEAVES) that any room may use. docs/development.md "Layout" states the same table.
ROOMS = {
    "annotator.models": set(),  # settings, flags, loaders: SAM, SAM2, the Hugging Face models
    "annotator.draft": {"annotator.models"},  # ssu-annotate: the automatic pipeline and its runner
    "annotator.search": set(),  # ssu-search
    "annotator.export": set(),  # ssu-export
    # ssu-refine: the upload drafts new clips, the tools run the models, the editor's search box uses ssu-search
    "annotator.refine": {"annotator.models", "annotator.draft", "annotator.search"},
}
ROOT_LEAVES = {"__init__.py", "overlay.py"}
# Import edges of known cycles tolerated by the test: none. Any cycle between modules fails.
KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()
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


def test_annotator_root_holds_only_shared_leaves():
    files = {p.name for p in (REPO / "annotator").iterdir() if p.is_file()}
    rooms = {p.name for p in (REPO / "annotator").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert files == ROOT_LEAVES, f"annotator/ root: {sorted(files - ROOT_LEAVES)} belong in a room"
    assert {f"annotator.{r}" for r in rooms} == set(ROOMS), "a room of annotator/ is missing from ROOMS"


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_annotator_rooms_import_only_their_neighbours(room):
    bad = []
    for f in (REPO / room.replace(".", "/")).rglob("*.py"):
        for mod in _imports(f):
            other = ".".join(mod.split(".")[:2])
            if other in ROOMS and other != room and other not in ROOMS[room]:
                bad.append(f"{f.relative_to(REPO)} imports {mod}")
    assert not bad, bad


def _modules() -> dict[str, Path]:
    """Module name -> file, for every module of our packages (a package is its __init__.py)."""
    out = {}
    for pkg in ALLOWED:
        for f in (REPO / pkg).rglob("*.py"):
            parts = f.relative_to(REPO).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _module_edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules that `name` imports anywhere in its file: top level, inside functions, under
    TYPE_CHECKING; relative imports resolved; `from pkg import mod` counts as an import of pkg.mod."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out |= {m for m in [mod, *(f"{mod}.{a.name}" for a in node.names)] if m in modules}
    return out - {name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _module_edges(m, f, modules) for m, f in modules.items()}


def test_cycle_finder_sees_function_level_and_relative_imports(tmp_path):
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from .b import g\n")
    b = tmp_path / "b.py"
    b.write_text("import pkg.a\n")
    mods = {"pkg.a": a, "pkg.b": b}
    graph = {m: _module_edges(m, f, mods) for m, f in mods.items()}
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]
    assert _cycles({"x": {"y"}, "y": {"z"}, "z": set()}) == []


def test_no_import_cycles():
    graph = _graph()
    for a, b in KNOWN_CYCLE_EDGES:
        graph.get(a, set()).discard(b)
    cycles = _cycles(graph)
    assert not cycles, "import cycles (modules, then the edges among them): " + "; ".join(
        f"{c}: {sorted((a, b) for a in c for b in graph[a] if b in c)}" for c in cycles)


# Uses of another module's private (_name) names tolerated in annotator/, each with its reason.
PRIVATE_USES_ALLOWED = {
    # the datasets library has no public call that writes Features as the card's YAML list (export's to settle)
    ("annotator/export/hf_vocabulary.py", "feats._to_yaml_list"),
}


def _private_uses(path: Path) -> list[str]:
    """Another module's private names used in `path`: `from m import _name`, and `x._name` on anything but
    self/cls (an imported module, or an object another module made) where this file defines no `_name`."""
    tree = ast.parse(path.read_text())
    own: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(n.name)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            own.add(n.attr)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            own.add(n.id)

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")

    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            out += [f"from {n.module} import {a.name}" for a in n.names if private(a.name)]
        elif isinstance(n, ast.Attribute) and private(n.attr) and n.attr not in own and not (
                isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")):
            out.append(ast.unparse(n))
    return out


def test_private_name_finder_sees_modules_and_objects(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from a import tools, _helper\nfrom a.b import c\n\n"
                 "class C:\n    def __init__(self):\n        self._mine = 1\n\n"
                 "    def _own(self):\n        return self._mine + self._inherited\n\n"
                 "def f(ctl, other):\n    tools._xy(1, 2)\n    ctl._open(3)\n    other._own()\n    return c._z\n")
    assert sorted(_private_uses(f)) == ["c._z", "ctl._open", "from a import _helper", "tools._xy"]


def test_annotator_uses_no_private_names_of_other_modules():
    bad = [f"{f.relative_to(REPO)}: {use}" for f in sorted((REPO / "annotator").rglob("*.py"))
           for use in _private_uses(f) if (str(f.relative_to(REPO)), use) not in PRIVATE_USES_ALLOWED]
    assert not bad, "make the name public in its module, or move the code that needs it there: " + "; ".join(bad)


def test_toolkit_packages_ship_no_test_models_or_benchmarks():
    """Tiny random models are built by tests/tiny_models.py and bench/tiny_llava.py, benchmarks live in bench/."""
    bad = []
    for pkg in ("schemas", "collection", "annotator", "ssuformer"):
        for f in (REPO / pkg).rglob("*.py"):
            if f.name.startswith("bench"):
                bad.append(str(f.relative_to(REPO)))
            bad += [f"{f.relative_to(REPO)}: {n.name}" for n in ast.walk(ast.parse(f.read_text()))
                    if isinstance(n, ast.FunctionDef) and n.name.startswith("build_tiny")]
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
