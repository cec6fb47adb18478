"""One cell env's folder and the files beside it: the one owner of their names and layout.

An env ``<root>/<name>`` has its lock beside it (``<root>/.<name>.lock``, so that it
outlives the folder) and its stamp inside (``.compat-env.json``, written last by a build:
an env without one is not trusted). Builds hold the lock exclusive, runs shared.

Removal has one rule, whoever removes (``nox -s gc``, a disk budget during a run): take
the env's exclusive lock (wait for it, or give up at once if the env is in use), remove
the stamp first, so that an env removed halfway is never mistaken for a built one, then
the tree. The lock file stays: a process may already have it open and be waiting on it,
and a new lock file at the same path would let a newcomer lock "the same" env at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compat.harness.locations import SITE_PACKAGES
from compat.harness.processes import file_lock

if TYPE_CHECKING:
    from compat.harness.install.install_plan import InstallPlan

__all__ = ["STAMP", "Env"]

STAMP = ".compat-env.json"  # inside the env: the key it was built for, what it holds
SOURCES_MEMO = ".compat-sources.json"  # inside the env: its sources' digests (cache/installed)
SOURCES_DIGEST = ".compat-sources-digest.json"  # and their one digest, by their stat listing


@dataclass(frozen=True)
class Env:
    """The env ``name`` under the envs root ``root`` (it need not exist)."""

    root: Path
    name: str

    @classmethod
    def of(cls, plan: InstallPlan) -> Env:
        """The env a cell's install plan builds."""
        return cls.at(plan.env_dir)

    @classmethod
    def at(cls, path: Path) -> Env:
        """The env whose folder is ``path``."""
        return cls(path.parent, path.name)

    @property
    def path(self) -> Path:
        return self.root / self.name

    @property
    def lock_path(self) -> Path:
        return self.root / f".{self.name}.lock"

    @property
    def stamp_path(self) -> Path:
        return self.path / STAMP

    @property
    def sources_memo_path(self) -> Path:
        return self.path / SOURCES_MEMO

    @property
    def sources_digest_path(self) -> Path:
        return self.path / SOURCES_DIGEST

    def site_packages(self) -> Path | None:
        """The env's ``lib/pythonX.Y/site-packages``; None when it has none (not built)."""
        found = sorted(self.path.glob(SITE_PACKAGES))
        return found[0] if found else None

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        """Exclusive to build or remove, shared to run; the wait ends at a stop
        (``processes.Stopped``)."""
        with file_lock(self.lock_path, exclusive=exclusive):
            yield

    def remove(self, *, wait: bool) -> bool:
        """Remove the env by the rule above; whether it is gone.

        ``wait``: wait for an env in use (a stop ends the wait with ``processes.Stopped``);
        else an env in use, or whose lock cannot be opened, is left alone (False).
        """
        if wait:
            with self.lock(exclusive=True):
                self.remove_locked()
        else:
            try:
                with _try_exclusive(self.lock_path) as held:
                    if not held:
                        return False
                    self.remove_locked()
            except OSError:
                return False
        return not self.path.exists()

    def remove_locked(self) -> None:
        """Remove the env while the caller holds its exclusive lock (a build clearing the
        way): the stamp first, then the tree."""
        self.stamp_path.unlink(missing_ok=True)  # half removed is never mistaken for built
        shutil.rmtree(self.path, ignore_errors=True)


@contextlib.contextmanager
def _try_exclusive(path: Path) -> Iterator[bool]:
    """The exclusive lock on ``path`` if it is free now (True), without waiting (False)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
