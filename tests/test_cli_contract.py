"""One CLI contract for every console script in pyproject's [project.scripts] and every subcommand.

A usage mistake (unknown flag, missing required parameter, a number out of range or not a number, a ROOT/--out
that is a plain file, a folder where a file is expected) prints the usage and one error line and exits 2,
never a traceback. The cases are derived from each command's declared parameters, so a new command or flag is
covered without editing this file. In-process runs call the console script's own entry function (through
schemas.cli_util.run_cli, the code that failed when typer began to carry its own click); one real subprocess
per script checks the installed console script itself.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import shutil
import subprocess
import sys
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.models import ArgumentInfo, ParameterInfo

from schemas import cli_util

REPO = Path(__file__).resolve().parents[1]
SCRIPTS: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
MAX_LINES = 4  # "Usage: ...", "Try '... --help' for help.", "Error: ..." (+ a blank line, not counted)


@dataclass(eq=False)  # hashed by identity: cases map parameters to values
class Param:
    name: str
    info: ParameterInfo
    base: Any  # the annotation without Optional
    position: int | None  # index among the positional arguments; None for an option

    @property
    def flag(self) -> str:
        decls = [d for d in self.info.param_decls or () if d.startswith("--")]
        return decls[0].split("/")[0] if decls else "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        return self.name.upper() if self.position is not None else self.flag

    @property
    def required(self) -> bool:
        return self.info.default is ...

    @property
    def kind(self) -> Any:
        return self.info.parser if self.info.parser in cli_util.PATH_KINDS else None


@dataclass
class Command:
    script: str
    prefix: list[str]  # the subcommand path
    params: list[Param] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join([self.script, *self.prefix])


def _base(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _params(fn: Any) -> list[Param]:
    hints = typing.get_type_hints(fn, include_extras=True)
    out, pos = [], 0
    for name, p in inspect.signature(fn).parameters.items():
        info = p.default
        if typing.get_origin(hints.get(name)) is typing.Annotated:  # `x: Annotated[int, typer.Option()] = 1`
            info = next((m for m in typing.get_args(hints[name])[1:] if isinstance(m, ParameterInfo)), info)
        if not isinstance(info, ParameterInfo):
            continue
        is_arg = isinstance(info, ArgumentInfo)
        out.append(Param(name, info, _base(hints.get(name)), pos if is_arg else None))
        pos += is_arg
    return out


def _app(module: str) -> typer.Typer:
    mod = importlib.import_module(module)
    apps = [v for v in vars(mod).values() if isinstance(v, typer.Typer)]
    assert len(apps) == 1, f"{module}: the console script's module should hold one typer.Typer app"
    return apps[0]


def _commands(script: str) -> list[Command]:
    app = _app(SCRIPTS[script].split(":")[0])

    def walk(a: typer.Typer, prefix: list[str]) -> list[Command]:
        cmds = a.registered_commands
        single = not prefix and len(cmds) == 1 and not a.registered_groups and a.registered_callback is None
        out = []
        for c in cmds:
            name = c.name or c.callback.__name__.lower().replace("_", "-")
            out.append(Command(script, prefix if single else [*prefix, name], _params(c.callback)))
        for g in a.registered_groups:
            out += walk(g.typer_instance, [*prefix, g.name or g.typer_instance.info.name])
        return out

    return walk(app, [])


def _run(script: str, argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) \
        -> tuple[int, str]:
    """Call the console script's entry function in-process as `script argv...`: (exit code, stdout+stderr)."""
    module, func = SCRIPTS[script].split(":")
    entry = getattr(importlib.import_module(module), func)
    monkeypatch.setattr(sys, "argv", [script, *argv])
    code: Any = 0
    try:
        entry()
    except SystemExit as e:
        code = e.code
    except BaseException as e:  # noqa: BLE001 - the contract is that nothing escapes; report it as a traceback
        import traceback

        return -1, "Traceback (escaped the entry point)\n" + "".join(traceback.format_exception(e))
    finally:
        out = capsys.readouterr()
    return (code if isinstance(code, int) else 1), out.out + out.err


def _valid(p: Param, tmp: Path) -> str:
    """A value this parameter accepts (to fill the other required parameters of a case)."""
    if p.kind is cli_util.folder_path:
        return str(tmp / "folder")
    if p.kind in (cli_util.file_path, cli_util.any_path):
        return str(tmp / "file.txt")
    if isinstance(p.base, type) and issubclass(p.base, enum.Enum):
        return str(next(iter(p.base)).value)
    if p.base in (int, float):
        return str(p.info.min if p.info.min is not None else 1)
    return "x"


def _argv(cmd: Command, given: dict[Param, str], tmp: Path) -> list[str]:
    """prefix + the positional arguments up to the last given one (others filled) + the given options."""
    args = sorted((p for p in cmd.params if p.position is not None), key=lambda p: p.position)  # type: ignore
    last = max((p.position for p in given if p.position is not None), default=-1)
    pos = [given.get(p, _valid(p, tmp)) for p in args if p.position <= last]  # type: ignore[operator]
    opts = [x for p, v in given.items() if p.position is None for x in (p.flag, v)]
    return [*cmd.prefix, *pos, *opts]


def _cases(cmd: Command, tmp: Path) -> list[tuple[str, list[str], str]]:
    """(what, argv, text the error must contain) for every usage mistake this command's parameters allow."""
    cases = [("unknown flag", [*cmd.prefix, "--frobnicate"], "frobnicate")]
    for p in cmd.params:
        if p.base in (int, float) and p.position is None:
            cases.append((f"{p.flag} not a number", _argv(cmd, {p: "abc"}, tmp), p.flag))
            lo, hi = p.info.min, p.info.max
            if lo is not None:
                cases.append((f"{p.flag} below {lo}", _argv(cmd, {p: str(lo - 1)}, tmp), p.flag))
            if hi is not None:
                cases.append((f"{p.flag} above {hi}", _argv(cmd, {p: str(hi + 1)}, tmp), p.flag))
        if p.kind is cli_util.folder_path:
            cases.append((f"{p.label} is a plain file", _argv(cmd, {p: str(tmp / "file.txt")}, tmp), "is a file"))
        if p.kind is cli_util.file_path:
            cases.append((f"{p.label} is a folder", _argv(cmd, {p: str(tmp / "folder")}, tmp), "is a folder"))
        if p.kind is not None:
            cases.append((f"{p.label} under a plain file", _argv(cmd, {p: str(tmp / "file.txt" / "x")}, tmp),
                          "is a file"))
        if p.required:  # every other required option, and the positional arguments before it
            given = {q: _valid(q, tmp) for q in cmd.params if q is not p and (
                q.required if q.position is None else p.position is not None and q.position < p.position)}
            argv = _argv(cmd, given, tmp)
            if argv == cmd.prefix:  # no arguments at all shows the help (no_args_is_help): give an optional one
                q = next(q for q in cmd.params if not q.required and q.position is None)
                argv = [*argv, q.flag] if q.base is bool else [*argv, q.flag, _valid(q, tmp)]
            cases.append((f"{p.label} missing", argv, "Missing"))
    return cases


@pytest.fixture()
def paths(tmp_path: Path) -> Path:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("a plain file\n")
    return tmp_path


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_usage_mistakes_exit_2_in_a_few_lines(script: str, paths: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    bad = []
    n = 0
    for cmd in _commands(script):
        for what, argv, expect in _cases(cmd, paths):
            n += 1
            code, out = _run(script, argv, monkeypatch, capsys)
            lines = [x for x in out.splitlines() if x.strip()]
            if code != 2 or "Traceback" in out or len(lines) > MAX_LINES or expect not in out:
                bad.append(f"{cmd.name}: {what}: `{' '.join(argv)}` -> exit {code}, {len(lines)} lines:\n{out}")
    assert n >= 3, f"{script}: too few cases derived ({n})"
    assert not bad, f"{len(bad)} of {n} cases broke the contract:\n\n" + "\n\n".join(bad)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_parameters_declare_path_kind_and_number_range(script: str) -> None:
    """The cases above can only be derived when parameters say what they take: every Path names its kind with a
    schemas.cli_util parser, every number its range (min and/or max)."""
    bad = []
    for cmd in _commands(script):
        for p in cmd.params:
            if isinstance(p.base, type) and issubclass(p.base, Path) and p.kind is None:
                bad.append(f"{cmd.name} {p.label}: a Path without parser= from schemas.cli_util "
                           f"({', '.join(f.__name__ for f in cli_util.PATH_KINDS)})")
            if p.base in (int, float) and p.info.min is None and p.info.max is None:
                bad.append(f"{cmd.name} {p.label}: a number without min=/max=")
    assert not bad, "\n".join(bad)


def _console_script(name: str) -> str:
    exe = Path(sys.executable).parent / name
    assert exe.exists(), f"{exe}: not installed; run `make setup` (pyproject.toml's scripts changed)"
    return str(exe)


def _subprocess(argv: list[str], cwd: Path) -> tuple[int, str]:
    p = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


def _check(code: int, out: str, expect: str) -> None:
    lines = [x for x in out.splitlines() if x.strip()]
    assert code == 2 and "Traceback" not in out and len(lines) <= MAX_LINES and expect in out, (code, out)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_unknown_flag(script: str, tmp_path: Path) -> None:
    cmd = _commands(script)[0]
    code, out = _subprocess([_console_script(script), *cmd.prefix, "--frobnicate"], tmp_path)
    _check(code, out, "frobnicate")


# The invocations of the report that found typer's own click (issue 13).
ISSUE_CASES = [
    ("ssu-collect", ["R", "--index", "{index}", "--keywords", "x", "--frobnicate"], "No such option"),
    ("ssu-refine", ["serve", "{root}"], "Missing option '--users'"),
    ("ssu-collect", ["R", "--index", "{index}", "--keywords", "x", "--workers", "0"], "--workers"),
    ("ssu-collect", ["{afile}", "--index", "{index}", "--keywords", "x"], "is a file"),
    ("ssu-export", ["all", "{root}", "--out", "{afile}"], "is a file"),
    ("ssu-export", ["all", "{root}", "--fps", "45"], "--fps"),
    ("ssu-collect", ["R", "--index", "{index}", "--synonyms", "{root}"], "is a folder"),
]


@pytest.mark.parametrize(("script", "argv", "expect"), ISSUE_CASES, ids=[" ".join(c[1][:1] + c[1][-2:])
                                                                          for c in ISSUE_CASES])
def test_reported_invocations(script: str, argv: list[str], expect: str, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "index.csv").write_text("file,label,start\n")
    fill = {"root": str(tmp_path / "root"), "afile": str(tmp_path / "afile"), "index": str(tmp_path / "index.csv")}
    monkeypatch.chdir(tmp_path)
    code, out = _run(script, [a.format(**fill) for a in argv], monkeypatch, capsys)
    _check(code, out, expect)
    assert not (tmp_path / "R").exists()  # refused before any work


def test_quiet_hides_progress_not_the_summary(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    d = tmp_path / "local"
    d.mkdir()
    shutil.copy(shared_data / "media/vggsound/M1pPtg6a_g8_000230.mp4", d / "a.mp4")
    (d / "index.csv").write_text("file,label,start\na.mp4,piano,0\n")
    argv = [str(tmp_path / "root"), "--source", "local", "--index", str(d), "--keywords", "piano", "--quiet"]
    code, out = _run("ssu-collect", argv, monkeypatch, capsys)
    assert code == 0, out
    assert "done 1 " in out and "stats:" in out, out  # the run's summary
    assert "collect:" not in out, out  # no progress bar (tqdm's "collect: 100%|...")
