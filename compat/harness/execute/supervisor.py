"""Child processes of a run: started in their own process group, killed as a group.

Timeouts, Ctrl-C and memory limits all end the same way: every process a cell started
(pytest, and whatever it spawned) is signalled, so nothing outlives its cell.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path

__all__ = ["Supervisor", "memory_limited"]

KILL_GRACE = 10.0

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
    """Tracks running children; ``interrupt()`` stops them all and refuses new ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: set[subprocess.Popen[bytes]] = set()
        self.interrupted = threading.Event()

    def interrupt(self) -> None:
        self.interrupted.set()
        with self._lock:
            children = list(self._children)
        for proc in children:
            _signal_group(proc, signal.SIGTERM)

    def run(self, cmd: list[str], *, env: dict[str, str], log: Path, timeout: float,
            cwd: Path) -> tuple[int | None, bool]:
        """Run to completion; returns (returncode, timed_out). A timeout kills the group."""
        if self.interrupted.is_set():
            return None, False
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    cwd=cwd, start_new_session=True)
            with self._lock:
                self._children.add(proc)
            try:
                return proc.wait(timeout=timeout), False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                return proc.returncode, True
            except BaseException:
                _kill_group(proc)
                raise
            finally:
                with self._lock:
                    self._children.discard(proc)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group, then SIGKILL what is left after a grace period."""
    _signal_group(proc, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE)
    _signal_group(proc, signal.SIGKILL)
    proc.wait()
