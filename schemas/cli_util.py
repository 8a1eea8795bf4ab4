"""Shared CLI plumbing: one contract for every console script, and typed path arguments.

The contract (tests/test_cli_contract.py checks it for every script in pyproject's [project.scripts]): a usage
mistake (unknown flag, missing required option, a number out of range or not a number, a path of the wrong
kind) prints the usage and one `Error:` line and exits 2; a UserError prints `error: <message>` and exits 2.
Never a traceback for either.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from schemas.errors import UserError

# typer >= 0.2x carries its own copy of click (`typer._click`) and raises that copy's exceptions, which are not
# instances of the `click` package's classes (older typer raised click's own). typer.BadParameter always lives in
# the click that typer's parser uses, so take that click's ClickException from there, whichever copy it is.
_typer_click = importlib.import_module(typer.BadParameter.__module__.rpartition(".")[0])
ClickException: type[Exception] = _typer_click.ClickException


def run_cli(app: typer.Typer) -> None:
    """Entry point wrapper: usage errors and UserErrors print one error line and exit 2 (never a traceback)."""
    try:
        # non-standalone click returns the code of a typer.Exit instead of raising it
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except ClickException as e:  # usage errors: in non-standalone mode click leaves showing them to us
        e.show()  # type: ignore[attr-defined]
        sys.exit(2)


def new_app(help: str) -> typer.Typer:
    return typer.Typer(help=help, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                       rich_markup_mode=None)


# -- typed paths ---------------------------------------------------------------------------------------------
# Pass one of these as `parser=` of a Path argument or option: the kind is then checked while the command line
# is parsed, so a path of the wrong kind is a usage error naming the flag (exit 2) before any work or heavy
# import. Every Path parameter of every command declares one (tests/test_cli_contract.py). They check the kind
# only: whether the path must already exist is the command's business, since it knows the fix to name
# ("not a dataset root", "create one with `ssu-refine add-user`", "export cookies.txt from your browser").


def _no_file_above(p: Path) -> None:
    """A path under a plain file cannot exist (`afile/out` would fail deep inside the work)."""
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise typer.BadParameter(f"{parent} is a file, so {p} cannot be a path under it")
            return


def folder_path(value: str | Path) -> Path:
    """A folder, existing or to be created (a dataset root, an output folder): anything but a file."""
    p = Path(value)
    if p.exists() and not p.is_dir():
        raise typer.BadParameter(f"{p} is a file, not a folder")
    _no_file_above(p)
    return p


def file_path(value: str | Path) -> Path:
    """A file, existing or to be created (an index, a config, users.toml): anything but a folder."""
    p = Path(value)
    if p.is_dir():
        raise typer.BadParameter(f"{p} is a folder, not a file")
    _no_file_above(p)
    return p


def any_path(value: str | Path) -> Path:
    """A file or a folder (the command accepts both): it cannot lie under a plain file."""
    p = Path(value)
    _no_file_above(p)
    return p


PATH_KINDS: tuple[Callable[[Any], Path], ...] = (folder_path, file_path, any_path)
