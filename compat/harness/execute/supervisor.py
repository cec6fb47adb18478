"""Child processes of a cell: started in their own process group, killed as a group.

Timeouts, Ctrl-C, SIGTERM and memory limits all end the same way: every process a cell
started (pytest, and whatever it spawned) is signalled, so nothing outlives its cell. The
groups themselves, and the one stop that reaches every child of the harness (uv's too),
are :mod:`compat.harness.processes`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from compat.harness import processes

__all__ = ["Supervisor", "memory_limited"]

KILL_GRACE = processes.KILL_GRACE

# Runs in the cell's own interpreter (Python 3.9+): cap the data segment, then become
# the real command. RLIMIT_DATA (not RLIMIT_AS) so CUDA builds can still map their libs.
_TRAMPOLINE = (
    "import os, resource, sys; n = int(sys.argv[1]) * 2**20; "
    "resource.setrlimit(resource.RLIMIT_DATA, (n, n)); os.execv(sys.argv[2], sys.argv[2:])"
)


def memory_limited(cmd: list[str], limit_mb: int | None) -> list[str]:
    """``cmd`` wrapped so that its data segment is capped at ``limit_mb`` MiB."""
    if not limit_mb:
        return cmd
    return [cmd[0], "-c", _TRAMPOLINE, str(limit_mb), *cmd]


class Supervisor:
    """A run's view of the stop: ``interrupted`` is the process-wide stop (a signal sets
    it), ``interrupt()`` asks for it; after it no child starts and every running one ends."""

    @property
    def interrupted(self) -> threading.Event:
        return processes.stop_event()

    def interrupt(self) -> None:
        processes.stop()

    def run(
        self, cmd: list[str], *, env: dict[str, str], log: Path, timeout: float, cwd: Path
    ) -> tuple[int | None, bool]:
        """Run to completion; returns (returncode, timed_out). A timeout kills the group;
        a stop ends it, and the caller sees ``interrupted`` set."""
        if self.interrupted.is_set():
            return None, False
        with open(log, "wb") as out:
            try:
                finished = processes.run(cmd, env=env, cwd=cwd, timeout=timeout, log=out)
            except processes.Stopped:
                return None, False
        return finished.returncode, finished.timed_out
