"""Credentials never reach a log or a report: ``https://user:token@host`` -> ``https://***@host``.

:func:`redact` is the one filter every outgoing string of the harness passes through: the
console (:class:`RedactingStream`, installed by the command line over stdout and stderr),
every file the harness writes (``files.atomic_write_text``), the logs of uv and of the
cells, and the error messages (``errors``). The bottom layer: it imports nothing.

Redact before you cut: a string truncated first may keep ``er:token@host`` without the
``https://`` that marks it as a URL, and nothing after that can recognise it.
"""

from __future__ import annotations

import contextlib
import errno
import os
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

    A reader that went away (``| head``, a closed terminal, a dropped ssh) is not the run's
    fault: once a write fails with a broken pipe (or EIO), the stream's descriptor is
    pointed at ``/dev/null`` and what follows is dropped quietly, so the run goes on and
    still writes its results and reports.
    """

    _HOLD = 1 << 20  # a "line" longer than this is passed on without waiting for its end
    _GONE = frozenset({errno.EPIPE, errno.EIO, errno.ECONNRESET, errno.ENXIO})

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._pending = ""
        self._lock = threading.RLock()
        self.gone = False  # the reader went away: everything since was dropped

    def _send(self, text: str, *, flush: bool = False) -> None:
        if self.gone:
            return
        try:
            if text:
                self.stream.write(text)
            if flush:
                self.stream.flush()
        except OSError as exc:
            if exc.errno not in self._GONE:
                raise
            self._drop()

    def _drop(self) -> None:
        """The reader is gone: from now on the descriptor writes to /dev/null (the stream's
        buffer, flushed at exit, then lands there instead of raising again)."""
        self.gone = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self.stream.fileno())
            finally:
                os.close(null)
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            cut = self._pending.rfind("\n") + 1
            if not cut and len(self._pending) > self._HOLD:
                cut = len(self._pending)
            if cut:
                ready, self._pending = self._pending[:cut], self._pending[cut:]
                self._send(redact(ready))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            ready, self._pending = self._pending, ""
            self._send(redact(ready), flush=True)

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def __getattr__(self, name: str) -> object:  # encoding, errors, buffer ...
        return getattr(self.stream, name)
