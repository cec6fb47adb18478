"""SIGTERM and SIGINT to the harness's PID alone, through the real command line in a process
of its own: every child (uv and what it spawned, pytest, an index read) is stopped within
seconds, the partial report is written with exit code 130 (results.json says so too), the
interrupted cell is *not run* and ``--resume`` runs it again. A second signal changes
nothing; ``report`` interrupted exits 130. No traceback anywhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from compat.harness.config.matrix import Matrix
from compat.harness.install.interpreters import find_interpreter
from compat.harness.results.run_folder import LOCK

ROOT = Path(__file__).resolve().parents[2]
STOP_WITHIN = 5.0  # seconds from the signal to the harness's exit, children gone
CELL = "torch2.8.0-torch.ao-py3.11"


def _default_sigint() -> None:  # a terminal's Ctrl-C reaches a process that handles it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """``python -m compat ARGS`` (with stand-ins from ``env``, see cli_stub), in ``tmp_path``."""
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COMPAT_PROGRESS": "lines",
        "COMPAT_ENVS_DIR": str(tmp_path / "envs"),
        **env,
    }
    environ.pop("COMPAT_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.harness.cli_stub", *args],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str], *signals: int, gap: float = 0.2) -> tuple[float, str, str]:
    """Send ``signals`` (``gap`` s apart); the seconds until the process is gone, its output."""
    started = time.monotonic()
    for n, sig in enumerate(signals):
        if n:
            time.sleep(gap)
        if proc.poll() is None:
            proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"still running 60 s after the signal:\n{out}\n{err}") from None
    return time.monotonic() - started, out, err


def living(token: str) -> list[str]:
    """Processes (not zombies) whose command line holds ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def document(run: Path) -> dict[str, object]:
    return json.loads((run / "results.json").read_text(encoding="utf-8"))


def assert_stopped(
    elapsed: float, code: int, err: str, run: Path, reason: str, cell: str = CELL
) -> None:
    assert code == 130, err
    assert elapsed < STOP_WITHIN, f"{elapsed:.1f} s to stop"
    assert "Traceback" not in err, err
    assert "compat: interrupted; finished cells are kept (rerun with --resume)" in err
    doc = document(run)
    assert doc["exit_code"] == 130  # the report says what the process said
    cells = {c["cell_id"]: c for c in doc["cells"]}  # type: ignore[attr-defined]
    assert (cells[cell]["status"], cells[cell]["reason"]) == ("not-run", reason)


@pytest.fixture
def fake_uv(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A uv that starts a grandchild and hangs; each call notes its pids in a marker file."""
    marker = tmp_path / "uv-calls"
    uv = tmp_path / "fake-uv"
    uv.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import os, subprocess, sys, time
        if sys.argv[1:3] == ["pip", "compile"]:  # the run's disk estimate: cannot size
            sys.exit(2)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)",
                                  "compat-test-grandchild-{tmp_path.name}"])
        with open({str(marker)!r}, "a") as handle:
            handle.write(f"{{os.getpid()}} {{child.pid}} {{' '.join(sys.argv[1:3])}}\\n")
        time.sleep(300)
        """),
        encoding="utf-8",
    )
    uv.chmod(uv.stat().st_mode | stat.S_IEXEC)
    yield uv, marker
    for line in marker.read_text().splitlines() if marker.exists() else []:
        for pid in line.split()[:2]:  # never leave one behind, whatever the test found
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_uv_installs_stops_uv_and_what_it_started(
    cell_world: Callable[..., Matrix], tmp_path: Path, fake_uv: tuple[Path, Path], sig: int
) -> None:
    if find_interpreter("3.11") is None:
        pytest.skip("no CPython 3.11 here")
    uv, marker = fake_uv
    matrix = cell_world("plain", versions=("2.8.0",))
    run = tmp_path / "run"
    proc = start(
        tmp_path, "matrix", "--matrix", str(matrix.path), "--out", str(run), COMPAT_STUB_UV=str(uv)
    )
    wait_until(lambda: marker.exists() and " venv" in marker.read_text(), "uv venv")
    elapsed, out, err = stop(proc, sig)
    assert_stopped(elapsed, proc.returncode, err, run, "interrupted while installing")
    assert "exit code 130" in out
    pids = [int(p) for line in marker.read_text().splitlines() for p in line.split()[:2]]
    assert len(pids) >= 2  # uv venv (and uv cache dir, sizing the cache) with a child each
    assert living(f"compat-test-grandchild-{tmp_path.name}") == []
    assert living(str(uv)) == []
    log = (run / "cells" / CELL / "install.log").read_text(encoding="utf-8")
    assert "stopped (interrupted)" in log

    # --resume runs the interrupted cell again (here with a working install)
    resumed = tmp_path / "resumed"
    again = start(
        tmp_path,
        "matrix",
        "--matrix",
        str(matrix.path),
        "--out",
        str(resumed),
        "--resume",
        str(run),
        COMPAT_STUB_ENV="1",
    )
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    cells = {c["cell_id"]: c for c in document(resumed)["cells"]}  # type: ignore[attr-defined]
    assert cells[CELL]["status"] == "passed"
    assert "resuming" not in out  # nothing finished to keep: the cell ran again


def test_sigint_while_an_index_never_answers(
    write_matrix: Callable[..., Path], tmp_path: Path
) -> None:
    """The listing read of a nightly channel whose index accepts and never answers (its
    timeout is 30 s): the stop does not wait for it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    path = write_matrix(f"""
        [matrix]
        name = "dead-index"
        stacks = ["torch.ao"]

        [channels.nightly]
        index-url = "http://127.0.0.1:{port}/simple"

        [[torch]]
        version = "latest"
        channel = "nightly"
        """)
    run = tmp_path / "run"
    proc = start(tmp_path, "matrix", "--matrix", str(path), "--out", str(run))
    server.settimeout(60)
    connection, _ = server.accept()  # the harness asked; the index will never answer
    try:
        assert connection.recv(100).startswith(b"GET /simple/torch/")
        elapsed, _, err = stop(proc, signal.SIGINT)
    finally:
        connection.close()
        server.close()
    assert_stopped(
        elapsed,
        proc.returncode,
        err,
        run,
        "interrupted while installing",
        cell="nightly-torchlatest-torch.ao-py3.11",
    )


def _hanging_run(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> tuple[Matrix, Path, subprocess.Popen[str]]:
    """torch2.7.0 passes at once; torch2.8.0 hangs in test_hang (pytest, a stand-in torch)."""
    matrix = cell_world("hang", timeout=300, versions=("2.7.0", "2.8.0"))
    run = tmp_path / "run"
    proc = start(
        tmp_path,
        "matrix",
        "--matrix",
        str(matrix.path),
        "--out",
        str(run),
        "-j",
        "2",
        COMPAT_STUB_ENV="1",
    )
    events = run / "cells" / CELL / "events.jsonl"
    done = run / "cells" / "torch2.7.0-torch.ao-py3.11" / "result.json"
    wait_until(
        lambda: (
            done.exists() and events.exists() and "test_hang" in events.read_text(encoding="utf-8")
        ),
        "test_hang to start",
    )
    return matrix, run, proc


def test_sigterm_while_testing_keeps_finished_tests_and_resume_reruns_the_cell(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    matrix, run, proc = _hanging_run(cell_world, tmp_path)
    assert living(str(run / "cells" / CELL))  # pytest, writing into the cell's folder
    elapsed, _, err = stop(proc, signal.SIGTERM)
    assert_stopped(elapsed, proc.returncode, err, run, "interrupted while testing")
    assert living(str(run / "cells")) == []  # pytest is gone too
    cells = {c["cell_id"]: c for c in document(run)["cells"]}  # type: ignore[attr-defined]
    assert [t["outcome"] for t in cells[CELL]["tests"]] == ["passed"]  # test_quick kept
    assert cells["torch2.7.0-torch.ao-py3.11"]["status"] == "passed"

    (tmp_path / "tests" / "core" / "test_fault.py").write_text(
        "def test_quick(): pass\ndef test_hang(): pass\n", encoding="utf-8"
    )
    resumed = tmp_path / "resumed"
    again = start(
        tmp_path,
        "matrix",
        "--matrix",
        str(matrix.path),
        "--out",
        str(resumed),
        "--resume",
        str(run),
        COMPAT_STUB_ENV="1",
    )
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    assert "resuming 1 finished cell(s)" in out
    cells = {c["cell_id"]: c for c in document(resumed)["cells"]}  # type: ignore[attr-defined]
    assert cells[CELL]["status"] == "passed"
    assert document(resumed)["exit_code"] == 0


def test_sighup_is_a_stop_like_sigterm(cell_world: Callable[..., Matrix], tmp_path: Path) -> None:
    """A closed terminal or a dropped ssh (SIGHUP) while pytest runs: not a death by 129 with
    pytest left behind, but the same stop as SIGTERM: exit 130, the partial report, pytest
    gone."""
    _, run, proc = _hanging_run(cell_world, tmp_path)
    assert living(str(run / "cells" / CELL))
    elapsed, out, err = stop(proc, signal.SIGHUP)
    assert_stopped(elapsed, proc.returncode, err, run, "interrupted while testing")
    assert "exit code 130" in out
    assert living(str(run / "cells")) == []


def test_a_second_signal_changes_nothing(cell_world: Callable[..., Matrix], tmp_path: Path) -> None:
    """Ctrl-C, Ctrl-C, SIGTERM while the first stop is still under way (the second comes
    while the run's cells are being stopped and its report written)."""
    _, run, proc = _hanging_run(cell_world, tmp_path)
    elapsed, _, err = stop(proc, signal.SIGINT, signal.SIGINT, signal.SIGTERM, gap=0.02)
    assert_stopped(elapsed, proc.returncode, err, run, "interrupted while testing")
    assert "compat: already stopping; writing the partial report" in err


def test_report_interrupted_exits_130_without_a_traceback(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    """``report`` blocked waiting for its run folder's lock (another command holds it) when
    SIGTERM comes. (A FIFO as its baseline no longer blocks: it is refused at once.)"""
    matrix = cell_world("plain", versions=("2.8.0",))
    run = tmp_path / "run"
    made = start(
        tmp_path, "matrix", "--matrix", str(matrix.path), "--out", str(run), COMPAT_STUB_ENV="1"
    )
    out, err = made.communicate(timeout=120)
    assert made.returncode == 0, out + err
    with open(run / LOCK, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = start(tmp_path, "report", str(run))
        time.sleep(2.0)  # started, and waiting for the lock
        assert proc.poll() is None
        elapsed, _, err = stop(proc, signal.SIGTERM)
    assert proc.returncode == 130
    assert elapsed < STOP_WITHIN
    assert err.strip() == "compat: interrupted"
