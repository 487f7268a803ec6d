"""Exceptions a user can act on.

Every error raised at the edges (readers, configuration, command line) is a
``NerkitError``: the CLI prints its message as one paragraph and exits non-zero,
without a traceback.
"""

from __future__ import annotations


class NerkitError(Exception):
    """Base class of the errors nerkit reports to users."""


class DataError(NerkitError):
    """A data file is malformed. The message names the file, the line and what was expected."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path} line {line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


class ConfigError(NerkitError):
    """A configuration value or a hyper-parameter is invalid."""
