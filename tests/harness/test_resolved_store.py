"""``.resolved.json`` is written under its lock, and a stop ends the wait for that lock."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from compat.harness import processes
from compat.harness.install import resolve
from compat.harness.locations import resolved_file

HOLDER = """
import fcntl, sys
with open(sys.argv[1], "a+") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    print("ready", flush=True)
    sys.stdin.read()
"""


def test_store_adds_a_key(tmp_path: Path) -> None:
    path = resolved_file(tmp_path / "envs")
    resolve._store(path, "a", {"x": 1})
    resolve._store(path, "b", {"y": 2})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": {"x": 1}, "b": {"y": 2}}


def test_a_stop_ends_the_wait_for_the_lock(tmp_path: Path) -> None:
    path = resolved_file(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path.with_suffix(".lock"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(0.3, processes.stop_event().set)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "ready\n"
        started = time.monotonic()
        timer.start()
        with pytest.raises(processes.Stopped):
            resolve._store(path, "a", {})
        assert time.monotonic() - started < 5
        assert not path.exists()
    finally:
        timer.cancel()
        processes.reset()
        holder.kill()
        holder.wait(30)
        for stream in (holder.stdin, holder.stdout):
            if stream is not None:
                stream.close()
