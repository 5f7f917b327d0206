"""The one exception type users see.

Every bad input (unknown name, bad size, missing or corrupt data, wrong checkpoint) raises
`ReproError` with a message that says what was wrong and what to do. Command-line entry points
catch it, print the message alone (no traceback) and exit with status 2.
"""

from __future__ import annotations

import functools
import sys


class ReproError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""


def cli_errors(main):
    """Decorator for `main()` functions: ReproError -> one clear line on stderr, exit 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except ReproError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
