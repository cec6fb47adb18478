"""Files the harness writes so that a reader never sees half of one, and small JSON state.

Every result, report, manifest, stamp, cache and download goes through
:func:`atomic_writer`: a temporary file beside the target, renamed over it once complete
(a crash leaves the old file or none, never a truncated one). A leaf module: it imports
nothing else of the harness.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["atomic_symlink", "atomic_write_text", "atomic_writer", "read_json_object"]


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Write ``path`` through a temp file in its folder, renamed over it on success only.

    On any exception (Ctrl-C included) the temp file is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file and rename, so a reader never sees half a file."""
    with atomic_writer(path) as handle:
        handle.write(text.encode("utf-8"))


def atomic_symlink(link: Path, target: Path | str) -> None:
    """Point ``link`` at ``target``, replacing an old link in one rename."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def read_json_object(path: Path) -> dict[str, Any]:
    """A small state file (a stamp, a cache, saved verdicts): missing or corrupt reads as {}."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
