"""Inside a cell: run each test file in a process of its own, importing torch only once.

PyTorch's own CI (``test/run_test.py``) runs every test file in a fresh process, so a
file's verdict never depends on what another file did at import (one sets
``torch._dynamo.config.cache_size_limit``, another then passes where it fails alone). This
runner gives each file that same isolation without paying ``import torch`` per file: it
imports torch (and torchao on that stack), pytest and the ``preload`` modules once, then
forks one child per file before any Python thread has started (as torch's own DataLoader
workers fork after ``import torch``); each child runs ``pytest FILE`` on a copy of the
imported interpreter, as if the file had been the first to import them. A child that crashes, hangs
past its timeout or exits early costs its own file only: the runner records how it ended
(``file_exit``) and goes on with the next file.

When forking is unsafe (a Python thread already runs after the imports, or no ``fork``),
each file runs in a fresh interpreter instead (``python -m pytest FILE``), and the session's
fingerprint says so (``file_process``).

Run as ``python -m compat.file_runner SPEC.json -- PYTEST-ARGS``: the spec (written by the
harness) names the files, the events and JUnit paths, the per-file timeout and the cell's
time budget; every file's pytest gets the arguments after ``--``. Runs on every Python a
cell may use (3.9+) and never imports the harness.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO, Any

from compat.events import EVENTS_SCHEMA, FILE_EXIT, FILE_START, SESSION_FINISH, SESSION_START

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _preload(modules: list[str]) -> tuple[list[str], dict[str, str]]:
    """Import what most files import anyway, once, before forking (``torch._dynamo`` alone is
    0.7 s a file): importing a module is the same wherever it happens, and only modules
    whose import warns of nothing and starts no thread are preloaded by default."""
    import importlib

    done: list[str] = []
    errors: dict[str, str] = {}
    for name in modules:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a file that imports it will say so itself
            errors[name] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            done.append(name)
    return done, errors


def _without_plugin_flag(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "-p" and i + 1 < len(argv) and argv[i + 1] == "compat.pytest_plugin":
            skip = True
            continue
        out.append(arg)
    return out


def _threads() -> int:
    """Threads of this process, counted by the kernel (a C library's threads included)."""
    try:
        return len(list(Path("/proc/self/task").iterdir()))
    except OSError:
        return threading.active_count()


def _become_subreaper() -> bool:
    """Orphans of a file's process (a ``setsid`` daemon it started) are reparented to this
    runner instead of init, so they can be found and ended with their file (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _own_children() -> list[int]:
    pids: list[int] = []
    try:
        for task in Path("/proc/self/task").iterdir():
            text = (task / "children").read_text()
            pids += [int(p) for p in text.split()]
    except (OSError, ValueError):
        pass
    return pids


def _end_stragglers(group: int) -> int:
    """Kill what the file's process left behind: its group, then any orphan adopted by this
    runner; reap them. Returns how many orphans there were."""
    with contextlib.suppress(OSError):
        os.killpg(group, signal.SIGKILL)
    orphans = 0
    for _ in range(20):  # an orphan's own children are adopted in turn
        found = _own_children()
        if not found:
            break
        for pid in found:
            orphans += 1
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(OSError):
                    kill(pid, signal.SIGKILL)
        for pid in found:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return orphans


class Runner:
    def __init__(self, spec: dict[str, Any], common: list[str]) -> None:
        self.spec = spec
        self.files: list[dict[str, Any]] = list(spec["files"])
        self.common: list[str] = list(common)
        self.events_path = str(spec["events"])
        self.junit_dir = Path(spec["junit_dir"])
        self.file_timeout = float(spec["file_timeout"])
        self.deadline = time.monotonic() + float(spec["budget"])
        self.stream: IO[str] = open(self.events_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.current: int | None = None  # the running file's process group
        self.fork = False
        self.why_not_fork = ""

    def emit(self, event: str, **data: Any) -> None:
        data = {"event": event, "t": round(time.time(), 3), **data}
        self.stream.write(json.dumps(data, default=str) + "\n")
        self.stream.flush()

    # --- before any file ---------------------------------------------------------------

    def prepare(self) -> None:
        """Import what every file shares, once; decide whether children can be forked."""
        import pytest  # noqa: F401 - imported once, shared by every forked child

        from compat import pytest_plugin

        info = pytest_plugin.fingerprint()  # imports torch (and torchao on that stack)
        info["preloaded"], info["preload_errors"] = _preload(self.spec.get("preload", []))
        # ``import torch`` starts one native thread (a worker parked on a futex, from the CUDA
        # wheels' libraries); torch forks after its import itself (DataLoader workers) and
        # registers its own at-fork handlers. A Python thread is another matter: it may hold
        # a lock the child would inherit locked, so then each file gets a fresh interpreter.
        python_threads = threading.active_count()
        if not hasattr(os, "fork"):
            self.why_not_fork = "this platform has no fork"
        elif python_threads > 1:
            self.why_not_fork = f"{python_threads} Python threads run after importing torch"
        else:
            self.fork = True
        info["isolation"] = "file"
        info["native_threads_at_fork"] = _threads()
        info["file_process"] = "fork" if self.fork else "spawn"
        if self.why_not_fork:
            info["file_process_note"] = self.why_not_fork
        info["subreaper"] = _become_subreaper()
        if self.fork:
            # What the imports built stays alive in every child: out of the collector's
            # sight, a child's gc (pytest runs gc.collect() five times at its end) walks
            # only what the file made, not torch's whole heap (0.3 s -> 0.06 s a file).
            gc.collect()
            gc.freeze()
        self.emit(
            SESSION_START,
            schema=EVENTS_SCHEMA,
            fingerprint=info,
            files=[f["nodeid"] for f in self.files],
        )

    # --- one file ----------------------------------------------------------------------

    def _argv(self, index: int, entry: dict[str, Any]) -> list[str]:
        return [
            *entry["args"],
            *self.common,
            "--compat-events",
            self.events_path,
            "--compat-file",
            entry["nodeid"],
            "--junitxml",
            str(self.junit_dir / f"{index:04d}.xml"),
        ]

    def _start(self, argv: list[str]) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        if not self.fork:
            proc = subprocess.Popen([sys.executable, "-m", "pytest", *argv], start_new_session=True)
            return proc.pid
        with warnings.catch_warnings():  # 3.12+: "process is multi-threaded" (see prepare)
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: this file's pytest, then exit without running atexit
            code = 3
            try:
                os.setpgid(0, 0)
                for signum in _STOP_SIGNALS:
                    signal.signal(signum, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                import pytest

                from compat import pytest_plugin

                sys.argv = ["pytest", *argv]
                # The plugin is already imported here: given as an object, not ``-p``
                # (pytest would warn that it cannot rewrite an imported module).
                code = int(pytest.main(_without_plugin_flag(argv), plugins=[pytest_plugin]))
            except BaseException:  # noqa: BLE001 - the child must never return into the runner
                import traceback

                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also here: a kill may come before the child sets it
        return pid

    def _wait(self, pid: int, limit: float) -> int | None:
        """The child's wait status, or None when ``limit`` seconds passed first."""
        end = time.monotonic() + limit
        pidfd = None
        if hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                pidfd = None
        try:
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return status
                left = end - time.monotonic()
                if left <= 0:
                    return None
                if pidfd is not None:
                    select.select([pidfd], [], [], min(left, 1.0))
                else:
                    time.sleep(min(left, 0.02))
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def run_file(self, index: int, entry: dict[str, Any]) -> int:
        """One file in its own process; returns pytest's exit code (or 3: it died)."""
        nodeid = entry["nodeid"]
        limit = min(self.file_timeout, self.deadline - time.monotonic())
        self.emit(FILE_START, nodeid=nodeid, args=entry["args"], timeout=round(limit, 3))
        print(f"\ncompat: file {index + 1}/{len(self.files)} {nodeid}", flush=True)
        started = time.monotonic()
        pid = self._start(self._argv(index, entry))
        self.current = pid
        try:
            status = self._wait(pid, limit)
            timed_out = status is None
            if timed_out:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
        finally:
            self.current = None
            orphans = _end_stragglers(pid)
        returncode = os.waitstatus_to_exitcode(status)
        signame = None
        if returncode < 0:
            try:
                signame = signal.Signals(-returncode).name
            except ValueError:
                signame = f"signal {-returncode}"
        self.emit(
            FILE_EXIT,
            nodeid=nodeid,
            returncode=returncode,
            signal=None if timed_out else signame,
            timed_out=timed_out,
            cell_budget_spent=timed_out and limit < self.file_timeout,
            seconds=round(time.monotonic() - started, 3),
            orphans_killed=orphans,
        )
        return returncode if returncode >= 0 and not timed_out else 3

    # --- the cell ----------------------------------------------------------------------

    def run(self) -> int:
        for signum in _STOP_SIGNALS:
            signal.signal(signum, self._stop)
        self.junit_dir.mkdir(parents=True, exist_ok=True)
        codes: list[int] = []
        stop_early = any(a in ("-x", "--exitfirst") for a in self.common)
        try:
            self.prepare()
            for index, entry in enumerate(self.files):
                if time.monotonic() >= self.deadline:
                    self._not_run(index, "timeout")  # the rest: the cell's time ran out
                    break
                code = self.run_file(index, entry)
                codes.append(code)
                if stop_early and code != 0 and code != 5:
                    self._not_run(index + 1, "exitfirst")  # -x: the first failing file
                    break
        except _Stopped as stop:
            self.emit(SESSION_FINISH, exitstatus=2, stopped_by=signal.Signals(stop.signum).name)
            self._merge_junit()
            return 128 + stop.signum
        ran = [c for c in codes if c != 5]
        exitstatus = max(ran) if ran else (5 if codes else 0)
        self.emit(SESSION_FINISH, exitstatus=exitstatus, files_run=len(codes))
        self._merge_junit()
        return exitstatus

    def _not_run(self, start: int, why: str) -> None:
        """Each file from ``start`` on is said not run, and why: never silently missing."""
        for entry in self.files[start:]:
            self.emit(FILE_EXIT, nodeid=entry["nodeid"], not_run=why)

    def _stop(self, signum: int, frame: Any) -> None:
        """Ctrl-C, SIGTERM or SIGHUP: end the running file's process group, then stop."""
        if self.current is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.current, signal.SIGKILL)
            _end_stragglers(self.current)
        raise _Stopped(signum)

    def _merge_junit(self) -> None:
        """Every file's JUnit report as one document, as one pytest would have written it."""
        merged = ET.Element("testsuites")
        for part in sorted(self.junit_dir.glob("*.xml")):
            try:
                root = ET.parse(part).getroot()
            except (ET.ParseError, OSError):
                continue  # a file whose process died before writing it
            suites = [root] if root.tag == "testsuite" else list(root)
            merged.extend(suites)
        ET.ElementTree(merged).write(
            str(self.spec["junit"]), encoding="utf-8", xml_declaration=True
        )
        for part in self.junit_dir.glob("*.xml"):  # merged: the parts would only repeat it
            with contextlib.suppress(OSError):
                part.unlink()
        with contextlib.suppress(OSError):
            self.junit_dir.rmdir()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[1] != "--":
        print("usage: python -m compat.file_runner SPEC.json -- PYTEST-ARGS...", file=sys.stderr)
        return 4
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    return Runner(spec, args[2:]).run()


if __name__ == "__main__":
    sys.exit(main())
