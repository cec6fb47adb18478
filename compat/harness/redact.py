"""Credentials never reach a log or a report: ``https://user:token@host`` -> ``https://***@host``.

:func:`redact` is the one filter every outgoing string of the harness passes through: the
console (:class:`RedactingStream`, installed by the command line over stdout and stderr),
every file the harness writes (``files.atomic_write_text``), the logs of uv and of the
cells, and the error messages (``errors``). The bottom layer: it imports nothing.

Redact before you cut: a string truncated first may keep ``er:token@host`` without the
``https://`` that marks it as a URL, and nothing after that can recognise it.
"""

from __future__ import annotations

import re
import threading
from typing import TextIO

__all__ = ["RedactingStream", "redact"]

# The user-info is what follows "://" up to the last "@" before the host ends (a password
# may hold an "@"); it never crosses "/", "?", "#" or a space. Anchored on "://" alone, not on
# the scheme before it: a scheme glued to other text ("key.https://...") is still a URL, and
# since every "://" holds a "/", the spans scanned after each one are disjoint: linear time.
_USERINFO = re.compile(r"://[^/?#\s]+@")


def redact(text: str) -> str:
    """Replace the user-info part of every URL in ``text`` (linear in its length)."""
    if "://" not in text or "@" not in text:
        return text
    return _USERINFO.sub("://***@", text)


class RedactingStream:
    """A text stream that redacts what is written to it, a whole line at a time.

    Lines are held until their newline (or a flush), so a URL written in two pieces is
    still recognised. Safe to share between threads.
    """

    _HOLD = 1 << 20  # a "line" longer than this is passed on without waiting for its end

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._pending = ""
        self._lock = threading.RLock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            cut = self._pending.rfind("\n") + 1
            if not cut and len(self._pending) > self._HOLD:
                cut = len(self._pending)
            if cut:
                ready, self._pending = self._pending[:cut], self._pending[cut:]
                self.stream.write(redact(ready))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                ready, self._pending = self._pending, ""
                self.stream.write(redact(ready))
            self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def __getattr__(self, name: str) -> object:  # encoding, errors, buffer ...
        return getattr(self.stream, name)
