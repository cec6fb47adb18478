"""Errors the user can fix, each rendered as one line that names file, key and value."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConfigError", "ResultFileError", "UsageError"]


class UsageError(Exception):
    """Bad command-line use; exit code 2."""


class ConfigError(UsageError):
    """A matrix file that cannot be used as written.

    Rendered as ``file: key: message`` so that the user sees, on one line, where to look.
    """

    def __init__(self, path: Path | str, key: str, message: str) -> None:
        self.path = str(path)
        self.key = key
        self.message = message
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + message)


class ResultFileError(Exception):
    """A result file that is missing, truncated or not ours; the cell is reported as such."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {message}")
