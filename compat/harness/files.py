"""Files the harness writes so that a reader never sees half of one, and small JSON state.

Every result, report, manifest, stamp, cache and download goes through
:func:`atomic_writer`: a temporary file (a unique name) beside the target, renamed over it
once complete (a crash leaves the old file or none, never a truncated one), created with
one mode policy: ``0666`` less the umask, as ``open()`` would (``0644`` under the usual
umask), whoever writes it. Text goes through :func:`atomic_write_text`, which redacts it:
the one door by which the harness's documents reach the disk. Logs a child wrote itself
(pytest's) are redacted in place afterwards with :func:`redact_file`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from compat.harness.redact import redact

__all__ = [
    "STATE_LIMIT",
    "FileTooLarge",
    "NotARegularFile",
    "atomic_symlink",
    "atomic_write_text",
    "atomic_writer",
    "file_mode",
    "read_json_object",
    "read_regular",
    "read_text_file",
    "redact_file",
]


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})  # the disk (or a quota) is full


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would, for all threads)."""
    with contextlib.suppress(OSError, ValueError):
        status = Path("/proc/self/status").read_text(encoding="ascii", errors="replace")
        found = re.search(r"^Umask:\s*([0-7]+)", status, re.MULTILINE)
        if found:
            return int(found.group(1), 8)
    return _UMASK_AT_IMPORT


def _umask_at_import() -> int:
    mask = os.umask(0o022)  # while importing, before any thread of the harness runs
    os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _umask_at_import()


def file_mode() -> int:
    """The mode every file the harness writes gets: ``0666`` less the umask."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Write ``path`` through a temp file in its folder, renamed over it on success only.

    On any exception (Ctrl-C included) the temp file is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes it 0600
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None and exc.errno in _FULL:  # a write names no file: name it
            raise type(exc)(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text``, redacted, via a temp file and rename: never half a file, no secret."""
    with atomic_writer(path) as handle:
        handle.write(redact(text).encode("utf-8"))


LOG_CAP = 32 * 2**20  # a log (``*.log``) longer than this keeps its head and tail, halves
_CHUNK = 1 << 20  # read and redacted at a time
_CARRY = 1 << 20  # the most held back for a URL whose user-info may go on in the next chunk
_STOPS = re.compile(r"[/?#\s]")  # none of these is ever inside a URL's user-info
_TOKEN_END = re.compile(rb"[\s?#]")
_DEFAULT_CAP = -1


def _safe_end(text: str, carry: float = _CARRY) -> int:
    """How much of ``text`` can be redacted on its own, whatever text follows it: up to a
    ``://`` whose user-info may go on (none of ``/?#`` or a space after it yet, and not
    grown past ``_CARRY``), else all of it but a ``:`` or ``:/`` at its end (a ``://``
    may be starting)."""
    start = text.rfind("://")
    if start != -1 and not _STOPS.search(text, start + 3) and len(text) - start <= carry:
        return start
    return len(text) - (2 if text.endswith(":/") else 1 if text.endswith(":") else 0)


def _pieces(handle: BinaryIO, begin: int, end: int, *, whole: bool = True) -> Iterator[str]:
    """Bytes ``begin:end`` of ``handle`` as text, in pieces of about ``_CHUNK`` that each
    redact as they would within the whole: no URL is ever split between two. Not
    ``whole`` (a head cut off a longer file): what may be the start of a URL going on past
    ``end`` is left out."""
    handle.seek(begin)
    remaining, carry = end - begin, ""
    while remaining > 0:
        data = handle.read(min(_CHUNK, remaining))
        if not data:
            break
        remaining -= len(data)
        text = carry + data.decode("utf-8", errors="surrogateescape")
        if remaining > 0:
            cut = _safe_end(text)
        else:  # the last piece: all of it, or (a head) none of a URL that may go on
            cut = len(text) if whole else _safe_end(text, carry=math.inf)
        if cut:
            yield text[:cut]
        carry = text[cut:]
    if carry and whole:
        yield carry


def _byte_length(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogateescape"))


def _tail_start(handle: BinaryIO, size: int, keep: int) -> int:
    """Where the kept tail of a log starts: at the first line break, token end (a space,
    ``?``, ``#``) or ``://`` from ``size - keep`` on, so that no URL is cut in two and no
    end of a user-info is kept without its start; the end of the file if none comes."""
    position = size - keep
    handle.seek(position)
    before = b""  # the last bytes of the previous chunk: a "://" may straddle two
    while data := handle.read(_CHUNK):
        window, base = before + data, position - len(before)
        found = [
            window.find(b"\n") + 1 or None,
            (stop.end() if (stop := _TOKEN_END.search(window)) else None),
            (url if (url := window.find(b"://")) != -1 else None),
        ]
        offsets = [f for f in found if f is not None]
        if offsets:
            return base + min(offsets)
        position += len(data)
        before = window[-2:]
    return size


def redact_file(path: Path, *, cap: int | None = _DEFAULT_CAP) -> None:
    """Redact a text file a child process wrote (a log), in place; untouched if clean.

    Streamed in pieces of about a megabyte, never a whole line at once (one line may be
    hundreds of megabytes), cut where no URL is split. A file longer than ``cap`` bytes
    (by default ``LOG_CAP`` for a ``*.log``, no cap for other files) keeps its first and
    last halves of ``cap``, and a line in between says how much was cut.
    """
    limit = (LOG_CAP if path.suffix == ".log" else None) if cap == _DEFAULT_CAP else cap
    try:
        if not path.is_file():  # a FIFO or a device is never opened
            return
        size = path.stat().st_size
        capped = limit is not None and size > limit
        if not capped:
            with open(path, "rb") as handle:
                if all(redact(piece) == piece for piece in _pieces(handle, 0, size)):
                    return  # clean, as logs usually are: not rewritten
        with open(path, "rb") as handle, atomic_writer(path) as out:
            if not capped:
                for piece in _pieces(handle, 0, size):
                    out.write(redact(piece).encode("utf-8", errors="surrogateescape"))
                return
            assert limit is not None
            head = 0  # bytes of the file kept at its start (up to a line or URL's start)
            for piece in _pieces(handle, 0, limit // 2, whole=False):
                head += _byte_length(piece)
                out.write(redact(piece).encode("utf-8", errors="surrogateescape"))
            tail = max(head, _tail_start(handle, size, limit // 2))
            out.write(
                f"\n[compat: {tail - head} bytes cut from the middle of this {size}-byte "
                f"log: its first {head} and last {size - tail} bytes are kept]\n".encode()
            )
            for piece in _pieces(handle, tail, size):
                out.write(redact(piece).encode("utf-8", errors="surrogateescape"))
    except OSError:
        return


def atomic_symlink(link: Path, target: Path | str) -> None:
    """Point ``link`` at ``target``, replacing an old link in one rename."""
    link.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        tmp = Path(tempfile.mktemp(prefix=f".{link.name}.", dir=link.parent))
        try:
            tmp.symlink_to(target)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - a hundred name clashes in a row
        raise FileExistsError(f"no free temporary name beside {link}")
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


STATE_LIMIT = 256 * 2**20  # the largest state file read (a results.json of a huge matrix)


class NotARegularFile(OSError):
    """A FIFO, a device (``/dev/zero``), a socket or a folder where a file is read."""


class FileTooLarge(OSError):
    """A file larger than the reader's limit (an endless or runaway one)."""


def read_regular(path: Path | str, limit: int = STATE_LIMIT) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes; anything else is an
    :class:`OSError` (:class:`NotARegularFile`, :class:`FileTooLarge`) naming it.

    Opened without blocking (a FIFO no one writes to would hold ``open`` forever), checked
    to be a regular file before a byte is read, and never read past the limit: every JSON
    state the harness reads back (results, manifests, baselines, stamps, caches) comes in
    through here.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise NotARegularFile(
                errno.EINVAL, "not a regular file (a FIFO, a device or a socket)", str(path)
            )
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise FileTooLarge(errno.EFBIG, f"larger than {limit} bytes: not read", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text_file(path: Path | str, limit: int = STATE_LIMIT) -> str:
    """:func:`read_regular`, decoded as UTF-8 (a ``UnicodeDecodeError``, a ValueError, if
    it is not)."""
    return read_regular(path, limit).decode("utf-8")


def read_json_object(path: Path) -> dict[str, Any]:
    """A small state file (a stamp, a cache, saved verdicts): missing or corrupt reads as {}
    (so does a FIFO, a device or an endless file: see :func:`read_regular`, and a number
    JSON has not: ``NaN``, ``Infinity``, ``1e400``)."""
    try:
        data = json.loads(read_text_file(path), parse_constant=_not_json, parse_float=_finite_float)
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _not_json(name: str) -> float:
    """``NaN``, ``Infinity``: Python's json reads them, JSON has none (a damaged file)."""
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400
        raise ValueError(f"{text}: out of range")
    return value
