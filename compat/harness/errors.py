"""Errors the user can fix, each rendered as one line that names file, key and value.

Every message is made one line here, credentials redacted and length bounded, so that
whatever value a file or an option held, the error says where to look on a single line
and shows no secret. Which exit code each kind of error gives is decided in one table,
``results.gate.EXIT_CODES``.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

from compat.harness.redact import redact

__all__ = [
    "ConfigError",
    "ErrorKind",
    "InfraError",
    "InstallError",
    "ResultFileError",
    "UsageError",
    "one_line",
]

MAX_MESSAGE = 1000
# Control characters, and whatever else a terminal or str.splitlines() breaks a line at.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: object, limit: int = MAX_MESSAGE) -> str:
    """``text`` redacted, control characters escaped (``\\n``), at most ``limit`` characters.

    Redacted before it is cut (a cut URL can no longer be recognised as one).
    """
    flat = _CONTROL.sub(lambda m: repr(m.group())[1:-1], redact(str(text)))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class UsageError(Exception):
    """Bad command-line use; exit code 2."""

    def __init__(self, message: object = "") -> None:
        super().__init__(one_line(message))


class ConfigError(UsageError):
    """A matrix file that cannot be used as written.

    Rendered as ``file: key: message`` so that the user sees, on one line, where to look.
    """

    def __init__(self, path: Path | str, key: str, message: str) -> None:
        self.path = str(path)
        self.key = key
        self.message = one_line(message)
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + message)


class InfraError(Exception):
    """The machine or the network failed, not the code under test; exit code 3."""

    def __init__(self, message: object = "") -> None:
        super().__init__(one_line(message))


class ResultFileError(Exception):
    """A result file that is missing, truncated or not ours; the cell is reported as such."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = str(path)
        super().__init__(one_line(f"{path}: {message}"))


class ErrorKind(str, Enum):
    """Why a cell could not be installed, in one word: a cell result's ``error_kind``
    (``results.schema.json`` lists these values) and a prefetch failure's first word.

    A ``str``: ``kind == "no-interpreter"`` holds, and it formats as its value.
    """

    NO_SUCH_VERSION = "no-such-version"  # the index (or wheelhouse) has no such build
    NO_WHEEL_FOR_PYTHON = "no-wheel-for-python"  # the build exists, not for this Python
    INDEX_UNREACHABLE = "index-unreachable"
    DISK_FULL = "disk-full"
    INSTALL_TIMEOUT = "install-timeout"
    INSTALL_ERROR = "install-error"  # uv failed in a way none of the above names
    NO_INTERPRETER = "no-interpreter"  # no CPython of the cell's version on this machine
    NO_UV = "no-uv"
    BROKEN_ENV = "broken-env"  # a built env without site-packages
    BAD_LOCK = "bad-lock"  # uv wrote a lock PEP 751 refuses
    BAD_WHEEL_NAME = "bad-wheel-name"  # prefetch: a lock names no wheel file
    HASH_MISMATCH = "hash-mismatch"  # prefetch: a download is not the file the lock names

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class InstallError(Exception):
    """A cell's env could not be resolved or built: the base of every install error, so
    that ``except InstallError`` catches them all. ``kind`` says why in one word (a str
    given is checked against :class:`ErrorKind`), ``message`` in one line, ``log`` is
    the installer's output when there is one."""

    def __init__(self, kind: ErrorKind | str, message: str, log: str | None = None) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.log = log
