"""Errors that are the user's to fix: shown as one line, exit code 2, no traceback."""


class UserError(Exception):
    """A mistake in input the user controls (a file, a flag). The message names it and says what to do."""

    exit_code = 2
