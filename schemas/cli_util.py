"""Shared CLI plumbing: one-line errors with exit code 2 for user mistakes, progress bars."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from schemas.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


def run_cli(app: typer.Typer) -> None:
    """Entry point wrapper: a UserError prints `error: <message>` on one line and exits 2."""
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
    except Exception as e:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(2)
        raise


def new_app(help: str) -> typer.Typer:
    return typer.Typer(help=help, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                       rich_markup_mode=None)
