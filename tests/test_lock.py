"""requirements-lock.txt: up to date with pyproject.toml, and exactly what this environment holds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lockfile", REPO / "scripts" / "lockfile.py")
lockfile = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(lockfile)  # type: ignore[union-attr]


def test_lock_matches_pyproject() -> None:
    assert lockfile.fresh_problem() is None, lockfile.fresh_problem()


def test_a_dependency_change_makes_the_lock_stale(tmp_path: Path) -> None:
    text = (REPO / "pyproject.toml").read_text()
    scripts = tmp_path / "scripts.toml"  # another table changes: the lock stays valid
    scripts.write_text(text.replace("[project.scripts]\n", "[project.scripts]\nssu-new = \"schemas.cli:main\"\n"))
    assert lockfile.fresh_problem(pyproject=scripts) is None
    deps = tmp_path / "deps.toml"
    deps.write_text(text.replace('"pandas>=2.2",', '"pandas>=2.2",\n  "bm25s>=0.3",'))
    assert deps.read_text() != text
    problem = lockfile.fresh_problem(pyproject=deps)
    assert problem is not None and "make lock" in problem
    assert "make lock" in lockfile.fresh_problem(lock=tmp_path / "absent.txt")


def test_environment_is_exactly_the_lock() -> None:
    _, pins = lockfile.read_lock()
    assert len(pins) > 100 and pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    diff = lockfile.env_differences(pins, lockfile.installed(), lockfile.project_name())
    assert not diff, f"{sys.prefix} is not requirements-lock.txt (run `make setup`):\n" + "\n".join(diff)


def test_ray_vendored_packages_are_not_installed_packages() -> None:
    import ray  # noqa: F401 - ray puts ray/thirdparty_files (psutil, colorama) on sys.path

    assert "psutil" not in lockfile.installed() or "psutil" in lockfile.read_lock()[1]


def test_differences_are_named() -> None:
    pins = {"a": "1", "b": "2", "c": "3"}
    have = {"a": "1", "b": "2.1", "d": "4", "ra-ssu": "0.1.0"}
    assert lockfile.env_differences(pins, have, "ra-ssu") == [
        "missing  c==3", "extra    d==4 (not in the lock)", "version  b==2.1 (lock: 2)"]
