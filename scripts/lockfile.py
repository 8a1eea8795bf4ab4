"""requirements-lock.txt: is it up to date with pyproject.toml, and does an environment hold exactly it?

    python scripts/lockfile.py hash          the inputs' hash that `make lock` writes into the lock's header
    python scripts/lockfile.py check-fresh   exit 1 (with the fix) when pyproject.toml changed since `make lock`
    python scripts/lockfile.py check-env     exit 1 listing every difference between this interpreter's
                                             installed distributions and the lock (the project itself aside)
    python scripts/lockfile.py extras        names installed here that the lock does not list (bootstrap removes them)

Standard library only: bootstrap runs it before the virtual environment exists.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements-lock.txt"
PYPROJECT = REPO / "pyproject.toml"
HASH_KEY = "# pyproject-deps-sha256:"
REFRESH = "make lock"
# Installed beside the lock's packages for building sdists without isolation (sam2, antlr4): pinned in the lock too.
BUILD_TOOLS = ("pip", "setuptools", "wheel")


def canon(name: str) -> str:
    """PEP 503 normalized name: `Typing_Extensions` and `typing-extensions` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def inputs_hash(pyproject: Path = PYPROJECT) -> str:
    """Hash of what the resolver reads from pyproject.toml: requirements, extras, Python and [tool.uv].

    Other tables (scripts, ruff, pytest) may change without a new lock."""
    data = tomllib.loads(pyproject.read_text())
    proj = data.get("project", {})
    relevant = {"requires-python": proj.get("requires-python"), "dependencies": proj.get("dependencies", []),
                "optional-dependencies": proj.get("optional-dependencies", {}),
                "tool.uv": data.get("tool", {}).get("uv", {}), "build-tools": list(BUILD_TOOLS)}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def read_lock(lock: Path = LOCK) -> tuple[str | None, dict[str, str]]:
    """(the header's inputs hash, {canonical name: version}) of a `uv pip compile` output."""
    recorded = None
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        if line.startswith(HASH_KEY):
            recorded = line[len(HASH_KEY):].strip()
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if m:
            pins[canon(m.group(1))] = m.group(3)
    return recorded, pins


def project_name(pyproject: Path = PYPROJECT) -> str:
    return canon(tomllib.loads(pyproject.read_text())["project"]["name"])


def installed() -> dict[str, str]:
    """{canonical name: version} of every distribution installed in this interpreter's environment.

    Its site-packages only, not all of sys.path: ray, once imported, puts its vendored psutil and colorama
    (with their dist-info) on sys.path, and those are ray's files, not installed packages."""
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    out: dict[str, str] = {}
    for d in metadata.distributions(path=paths):
        name = d.metadata["Name"]
        if name:
            out[canon(name)] = d.version
    return out


def fresh_problem(lock: Path = LOCK, pyproject: Path = PYPROJECT) -> str | None:
    if not lock.is_file():
        return f"{lock.name}: missing; run `{REFRESH}` to create it"
    recorded, _ = read_lock(lock)
    if recorded is None:
        return f"{lock.name}: no '{HASH_KEY}' header line; run `{REFRESH}` to rewrite it"
    if recorded != inputs_hash(pyproject):
        return (f"{pyproject.name} changed its dependencies since {lock.name} was made: run `{REFRESH}` "
                f"and commit {lock.name}")
    return None


def env_differences(pins: dict[str, str], have: dict[str, str], own: str) -> list[str]:
    """Lines naming each package that is missing, extra or at another version than the lock says."""
    have = {k: v for k, v in have.items() if k != own}
    out = [f"missing  {n}=={v}" for n, v in sorted(pins.items()) if n not in have]
    out += [f"extra    {n}=={v} (not in the lock)" for n, v in sorted(have.items()) if n not in pins]
    out += [f"version  {n}=={have[n]} (lock: {v})" for n, v in sorted(pins.items()) if n in have and have[n] != v]
    return out


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else ""
    if cmd == "hash":
        print(inputs_hash())
        return 0
    if cmd == "check-fresh":
        problem = fresh_problem()
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 1
        return 0
    if cmd in ("check-env", "extras"):
        _, pins = read_lock()
        have = installed()
        if cmd == "extras":
            print(" ".join(sorted(n for n in have if n not in pins and n != project_name())))
            return 0
        diff = env_differences(pins, have, project_name())
        if diff:
            print(f"error: {sys.prefix} differs from {LOCK.name} in {len(diff)} package(s):", file=sys.stderr)
            print("\n".join(f"  {d}" for d in diff), file=sys.stderr)
            return 1
        print(f"{sys.prefix}: {len(pins)} packages, exactly {LOCK.name}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
