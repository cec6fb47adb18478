"""Every child process of the harness, and the one stop that reaches all of them.

uv, pytest, probes and the helpers they spawn each run in a process group of their own
(``start_new_session``), registered here while they run. Nothing a child started outlives
it: when it ends, what is left of its group is killed, and so is every process that still
carries its tag (``COMPAT_PROCESS_TAG`` in the environment it inherited: a ``setsid``
daemon, a double fork), found in ``/proc``. A stop (Ctrl-C, SIGTERM, asked
for by the command line's signal handler or by a run's supervisor) signals every group at
once, SIGKILLs what is left after a short grace, and makes every later start, index read
or lock wait give up with :class:`Stopped`. Blocking calls that are not processes (an
index that never answers) run through :func:`wait_for`, which stops waiting at a stop.

A leaf module: it imports nothing else of the harness.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

__all__ = [
    "KILL_GRACE",
    "STOP_GRACE",
    "STOP_SIGNALS",
    "Finished",
    "Stopped",
    "file_lock",
    "reset",
    "run",
    "stop",
    "stop_event",
    "stopping",
    "tagged",
    "wait_for",
    "wait_stopped",
]

KILL_GRACE = 10.0  # a timed-out child: SIGTERM, then SIGKILL after this long
STOP_GRACE = 2.0  # a stop: SIGTERM now, SIGKILL after this long
POLL = 0.1
# The signals that stop the harness, each the same way (stop every child, write the partial
# report, exit 130): Ctrl-C, a kill or a CI cancel, and a closed terminal or dropped ssh.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

T = TypeVar("T")


class Stopped(Exception):
    """The harness is stopping (a signal): the caller gives up and reports what it has."""

    def __init__(self, message: str = "stopped") -> None:
        super().__init__(message)


_STOP = threading.Event()
_lock = threading.RLock()  # re-entered by a signal handler on the thread that holds it
_running: set[subprocess.Popen[Any]] = set()
_signalled: set[int] = set()  # process groups a stop has sent SIGTERM to
_killer: list[threading.Thread] = []
_tags: dict[int, str] = {}  # a running child's pid -> the tag its descendants inherit
_stopped_tags: set[str] = set()  # tags of children a stop reached: swept after its SIGKILL

TAG = "COMPAT_PROCESS_TAG"  # in every child's environment: what it starts can be found


def tagged(tag: str) -> list[int]:
    """Live processes (of this user: others' environments are not readable) whose
    environment holds ``TAG=tag``; none where there is no ``/proc``."""
    needle = f"{TAG}={tag}".encode()
    found = []
    try:
        entries = [entry.name for entry in Path("/proc").iterdir()]
    except OSError:
        return []
    me = os.getpid()
    for name in entries:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:  # gone, or not ours
            continue
        if needle in environ.split(b"\0"):
            found.append(int(name))
    return found


def _sweep(tag: str) -> None:
    """SIGKILL every process left with ``tag``: a child's descendants, wherever they went
    (another group, another session, reparented to init). A few rounds: one may fork as
    it dies."""
    for _ in range(5):
        pids = tagged(tag)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def stopping() -> bool:
    return _STOP.is_set()


def stop_event() -> threading.Event:
    """The process-wide stop: set once a stop is asked for, until :func:`reset`."""
    return _STOP


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop(grace: float = STOP_GRACE) -> None:
    """SIGTERM every running child's group now, SIGKILL the groups after ``grace``.

    Safe to call from a signal handler and more than once.
    """
    with _lock:
        _STOP.set()
        groups = [p.pid for p in _running]
        _signalled.update(groups)
        _stopped_tags.update(_tags[pid] for pid in groups if pid in _tags)
        start_killer = not _killer
        if start_killer:
            killer = threading.Thread(
                target=_kill_later, args=(grace,), daemon=True, name="compat-stop"
            )
            _killer.append(killer)
    for pgid in groups:
        _signal_group(pgid, signal.SIGTERM)
    if start_killer:
        killer.start()


def _kill_later(grace: float) -> None:
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with _lock:
            if not _running:
                break
        time.sleep(POLL)
    with _lock:
        groups = set(_signalled) | {p.pid for p in _running}
        _signalled.update(groups)
        tags = set(_stopped_tags) | {_tags[p.pid] for p in _running if p.pid in _tags}
    for pgid in groups:  # the leader may be gone while its children live on
        _signal_group(pgid, signal.SIGKILL)
    for tag in tags:  # and what left the group
        _sweep(tag)


def wait_stopped(timeout: float = STOP_GRACE + 1.0) -> None:
    """After a stop: wait (bounded) until every signalled group has had its SIGKILL."""
    with _lock:
        killers = list(_killer)
    for killer in killers:
        killer.join(timeout)


def reset() -> None:
    """Forget a previous stop (a new command in the same process)."""
    with _lock:
        _STOP.clear()
        _signalled.clear()
        _killer.clear()
        _stopped_tags.clear()


@dataclass
class Finished:
    returncode: int | None
    timed_out: bool
    stdout: str = ""
    stderr: str = ""


def _kill_group(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM the group, then SIGKILL what is left after ``grace``."""
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def run(
    cmd: list[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    log: IO[bytes] | IO[str] | None = None,
    capture: bool = False,
) -> Finished:
    """Run ``cmd`` in its own process group until it exits, times out or a stop comes.

    Output goes to ``log`` (stdout and stderr together), or is returned (``capture``),
    or is dropped. A timeout kills the group and returns ``timed_out``; a stop (before
    or during the run) raises :class:`Stopped` once the group is gone.
    """
    if _STOP.is_set():
        raise Stopped
    if capture:
        out: Any = subprocess.PIPE
        err: Any = subprocess.PIPE
    else:
        out, err = (log, subprocess.STDOUT) if log is not None else (subprocess.DEVNULL,) * 2
    tag = uuid.uuid4().hex
    environ = {**(env if env is not None else os.environ), TAG: tag}
    with _lock:
        if _STOP.is_set():
            raise Stopped
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=environ,
            cwd=cwd,
            start_new_session=True,
            text=capture or None,
        )
        _running.add(proc)
        _tags[proc.pid] = tag
    try:
        try:
            if capture:
                stdout, stderr = proc.communicate(timeout=timeout)
                finished = Finished(proc.returncode, False, stdout or "", stderr or "")
            else:
                finished = Finished(proc.wait(timeout=timeout), False)
        except subprocess.TimeoutExpired:
            _kill_group(proc, KILL_GRACE)
            if capture:
                with contextlib.suppress(ValueError, OSError):
                    proc.communicate()
            finished = Finished(proc.returncode, True)
        except BaseException:
            _kill_group(proc, STOP_GRACE)
            raise
    finally:
        with _lock:
            _running.discard(proc)
            _tags.pop(proc.pid, None)
        # Whatever it started and left behind: its group, then what left the group.
        _signal_group(proc.pid, signal.SIGKILL)
        _sweep(tag)
    if _STOP.is_set():
        raise Stopped
    return finished


def wait_for(call: Callable[[], T], *, what: str = "a read") -> T:
    """``call()`` in a daemon thread; the caller stops waiting as soon as a stop comes.

    For reads that cannot be interrupted (a socket an index never answers on): the
    abandoned thread ends with the process instead of holding up the stop.
    """
    if _STOP.is_set():
        raise Stopped
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, daemon=True, name="compat-wait").start()
    while not done.wait(POLL):
        if _STOP.is_set():
            raise Stopped(f"stopped while waiting for {what}")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


@contextlib.contextmanager
def file_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
    """``flock`` on ``path`` (made if missing); the wait for it ends at a stop."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(handle, mode)
                break
            except BlockingIOError:
                if _STOP.is_set():
                    raise Stopped(f"stopped while waiting for the lock {path}") from None
                time.sleep(POLL)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
