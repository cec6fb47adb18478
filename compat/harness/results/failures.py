"""What a failure says in one line, and where in the user's code it happened.

A failure's record holds pytest's report (its long traceback) and, from a current plugin,
``where``: the deepest frame of the traceback inside the user's tree, found in the cell
(``compat.pytest_plugin``). For a result without it (a collection error, an older run)
:func:`user_frame` reads the same out of the report's text. :func:`signature` is what two
failures must share to be the same failure: the exception's type and that frame.
"""

from __future__ import annotations

import re

from compat.harness.redact import redact
from compat.harness.results.model import TestResult

__all__ = ["SHORT_TEXT", "exception_name", "short_message", "signature", "user_frame"]

SHORT_TEXT = 300  # characters of a failure's one line

# pytest's location lines: ``pkg/mod.py:48: in quantize`` (a frame on the way) and
# ``pkg/mod.py:48: TypeError`` (the frame that raised); Python's own ``File "x.py", line 48``.
_PYTEST_FRAME = re.compile(r"^(?P<path>[^\s:<][^:\n]*?\.py):(?P<line>\d+):(?: |$)", re.MULTILINE)
_PYTHON_FRAME = re.compile(r'^\s*File "(?P<path>[^"\n]+\.py)", line (?P<line>\d+)', re.MULTILINE)
# Frames that are never the user's: installed packages, the interpreter's library, this
# tool's own package (its shims, its runner and plugin).
_NOT_USER = re.compile(
    r"(^|/)(site-packages|dist-packages)/"
    r"|(^|/)lib/python3[.\d]*/"
    r"|(^|/)compat/(harness|shims)/"
    r"|(^|/)compat/(pytest_plugin|file_runner|events|__init__|__main__)\.py$"
    r"|^<"
)
_EXCEPTION = re.compile(r"^((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Warning))\b")


def short_message(message: str | None) -> str:
    """The line that says what went wrong: pytest's first ``E`` line, else the last line;
    redacted and cut to :data:`SHORT_TEXT` characters.

    >>> short_message("    assert x\\nE   assert 2 == 1\\n\\nt.py:3: AssertionError")
    'assert 2 == 1'
    >>> short_message("RuntimeError: boom\\n")
    'RuntimeError: boom'
    """
    lines = [ln.strip() for ln in redact(message or "").splitlines() if ln.strip()]
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    return (errors[0] if errors else lines[-1] if lines else "")[:SHORT_TEXT]


def _is_user(path: str) -> bool:
    return not _NOT_USER.search(path.replace("\\", "/"))


def user_frame(message: str | None) -> str | None:
    """``pkg/mod.py:48``: the deepest frame of a pytest report inside the user's tree (the
    last location line that is not an installed package, the interpreter's library or this
    tool's own code), else None.

    >>> user_frame("t.py:9: in test_q\\n    q()\\nmyquant/q.py:48: TypeError")
    'myquant/q.py:48'
    >>> user_frame("/env/lib/python3.11/site-packages/torch/fx/node.py:3: KeyError") is None
    True
    """
    text = message or ""
    found = [
        (m.start(), m.group("path"), m.group("line"))
        for pattern in (_PYTEST_FRAME, _PYTHON_FRAME)
        for m in pattern.finditer(text)
        if _is_user(m.group("path"))
    ]
    if not found:
        return None
    _, path, line = max(found)
    return f"{path.replace(chr(92), '/')}:{line}"


def exception_name(test: TestResult) -> str:
    """The failure's exception class (bare), from the record, else from its one line."""
    if test.exc_types:
        return test.exc_types[0].rsplit(".", 1)[-1]
    found = _EXCEPTION.match(short_message(test.message))
    return found.group(1).rsplit(".", 1)[-1] if found else ""


def signature(test: TestResult) -> tuple[str, str] | None:
    """What identical failures share: the exception's type and the user's frame; None when
    either is unknown (such a failure is never merged with another)."""
    where = test.where or user_frame(test.message)
    name = exception_name(test)
    return (name, where) if where and name else None
