"""The command line's options as a run takes them, and the checks every command shares.

``cli`` turns its arguments into a :class:`RunOptions`; :mod:`.pipeline` checks them. The
helpers here (a folder the command may write into, a wheelhouse, ``-j``) are what more
than one command needs, so they live apart from any one command.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from compat.harness.errors import UsageError
from compat.harness.execute.cell_runner import default_jobs
from compat.harness.install.prefetch import MANIFEST as WHEELHOUSE_MANIFEST
from compat.harness.results.baseline import BaselineCell, load_baseline

__all__ = [
    "Baseline",
    "RunOptions",
    "checked_jobs",
    "console_width",
    "load_baseline_option",
    "offline_wheelhouse",
    "writable_folder",
]

Baseline = tuple[str, dict[str, BaselineCell]]  # its name, its cells by id


@dataclass(frozen=True)
class RunOptions:
    """What the command line may change about a run (``None``: the default)."""

    out: str | None = None
    jobs: int | None = None
    baseline: str | None = None
    resume: str | None = None
    offline: str | None = None
    reruns: int | None = None
    shard: str | None = None
    strict: bool | None = None
    disk_budget: str | None = None  # a size such as 30G; else the matrix's disk-budget
    pytest_args: tuple[str, ...] = ()  # after the matrix's own pytest-args
    drift_detail: bool = False  # the console lists each drift finding's nodes
    no_cache: bool = False  # run every test file; the fresh verdicts are stored
    refresh: tuple[str, ...] = ()  # test globs whose files run again despite the cache


def console_width() -> int:
    """The terminal's width, ``$COLUMNS``, or 200 for a CI log (wide, yet one screen)."""
    return max(80, shutil.get_terminal_size((200, 24)).columns)


def checked_jobs(jobs: int | None) -> int:
    """``-j``: cells at once, 1 or more; ``None`` is what cores and memory allow."""
    if jobs is None:
        return default_jobs()
    if jobs < 1:
        raise UsageError(f"-j {jobs}: expected a whole number of cells at once, 1 or more")
    return jobs


def load_baseline_option(path: str | None) -> Baseline | None:
    return None if not path else (str(path), load_baseline(path))


def writable_folder(path: str | Path, option: str) -> Path:
    """``path`` as a folder the command may write into, made if missing; a file, or a
    folder that cannot be written (read-only, no permission), is a usage error."""
    try:
        folder = Path(path).resolve()
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{option} {path}: is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".compat-write-check."):
            pass
    except (OSError, ValueError, RuntimeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{option} {path}: cannot write there ({why})") from None
    return folder


def offline_wheelhouse(offline: str | None) -> Path | None:
    """``--offline [WHEELHOUSE]``: a folder ``prefetch`` filled, else a usage error."""
    if not offline:
        return None
    folder = Path(offline).resolve()
    if not (folder / WHEELHOUSE_MANIFEST).is_file():
        raise UsageError(f"{folder}: not a prefetched wheelhouse (run nox -s prefetch first)")
    return folder
