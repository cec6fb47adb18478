"""Faults of the machine the harness runs on, not of the code under test, through the real
command line: a full disk while a result is written, a read-only or missing folder, a
``COMPAT_ENVS_DIR`` that is a file, a closed stdout. None is a test verdict: each is
infrastructure (exit 3, the path named) or a usage error found before anything is
created (exit 2), a faulted cell is *not run* and ``--resume`` runs it again; a reader that
went away (``| head -2``) costs nothing but the console output.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.commands import cli
from compat.harness.config.matrix import Matrix
from compat.harness.execute import cell_runner
from compat.harness.results import model

from .test_signals import living

ROOT = Path(__file__).resolve().parents[2]
CELLS = ["torch2.8.0-torch.ao-py3.11", "torch2.9.0-torch.ao-py3.11"]


def document(run: Path) -> dict[str, object]:
    return json.loads((run / "results.json").read_text(encoding="utf-8"))


def statuses(run: Path) -> dict[str, tuple[str, str | None]]:
    return {c["cell_id"]: (c["status"], c["reason"]) for c in document(run)["cells"]}  # type: ignore[attr-defined]


@pytest.fixture
def world(
    cell_world: Callable[..., Matrix], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Matrix:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(tmp_path / "envs"))
    monkeypatch.setenv("UV_OFFLINE", "1")
    return cell_world("plain")


def test_a_full_disk_while_a_result_is_written_is_not_a_verdict_and_resume_reruns_it(
    world: Matrix,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each cell's first result write meets a full disk (space comes back later): the
    cells are not run with the path named, exit 3, and --resume runs them again."""
    real_write = model.atomic_write_text
    failed: set[str] = set()

    def full_once(path: Path, text: str) -> None:
        if path.name == "result.json" and path.parent.name not in failed:
            failed.add(path.parent.name)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, text)

    monkeypatch.setattr(model, "atomic_write_text", full_once)
    out = tmp_path / "out"
    code = cli.main(["matrix", "--matrix", str(world.path), "--out", str(out)])
    console = capsys.readouterr().out
    assert code == 3, console
    for cell_id, (status, reason) in statuses(out).items():
        assert status == "not-run"
        assert reason is not None
        assert reason.startswith("harness fault: OSError: [Errno 28]")
        assert str(out / "cells" / cell_id / "result.json") in reason
        assert f"{cell_id}: not-run: harness fault" in console  # the path, on one line
    assert document(out)["exit_code"] == 3

    resumed = tmp_path / "resumed"
    code = cli.main(
        ["matrix", "--matrix", str(world.path), "--out", str(resumed), "--resume", str(out)]
    )
    assert code == 0
    assert {s for s, _ in statuses(resumed).values()} == {"passed"}
    assert "resuming" not in capsys.readouterr().out  # nothing was kept: both ran again


def test_a_read_only_folder_met_by_a_cell_is_infrastructure(
    world: Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder turned read-only under a running harness (Errno 30): exit 3, not 1."""

    def read_only(plan: object, *, log: Path, timeout: float) -> object:
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "envs" / "x"))

    monkeypatch.setattr(cell_runner, "ensure_env", read_only)
    out = tmp_path / "out"
    assert cli.main(["matrix", "--matrix", str(world.path), "--out", str(out)]) == 3
    for status, reason in statuses(out).values():
        assert status == "not-run"
        assert "[Errno 30] Read-only file system" in (reason or "")


@pytest.mark.parametrize("kind", ["file", "under-a-file", "read-only"])
def test_an_envs_folder_that_cannot_be_one_is_refused_before_anything_is_created(
    world: Matrix,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    read_only_folder: Path,
    kind: str,
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder\n", encoding="utf-8")
    envs = {
        "file": blocker,
        "under-a-file": blocker / "envs",
        "read-only": read_only_folder / "envs",
    }[kind]
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(envs))
    out = tmp_path / "out"
    code = cli.main(["matrix", "--matrix", str(world.path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not out.exists()
    assert not (tmp_path / "reports").exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"compat: error: COMPAT_ENVS_DIR {envs}: ")
    assert blocker.read_text(encoding="utf-8") == "not a folder\n"


def test_a_closed_stdout_costs_only_the_console(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    """``compat-matrix matrix | head -2``: the reader leaves after two lines; the cells
    still pass, results.json and the reports are written, exit 0, no traceback."""
    matrix = cell_world("plain")
    out = tmp_path / "out"
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COMPAT_PROGRESS": "lines",
        "COMPAT_ENVS_DIR": str(tmp_path / "envs"),
        "COMPAT_STUB_ENV": "1",
        "UV_OFFLINE": "1",
    }
    environ.pop("COMPAT_DEBUG", None)
    script = (
        f"{sys.executable} -m tests.harness.cli_stub matrix --matrix {matrix.path} "
        f"--out {out} 2>{tmp_path / 'stderr'} | head -2; exit ${{PIPESTATUS[0]}}"
    )
    proc = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=environ, capture_output=True, text=True
    )
    err = (tmp_path / "stderr").read_text(encoding="utf-8")
    assert proc.returncode == 0, err
    assert len(proc.stdout.splitlines()) == 2
    assert "Traceback" not in err, err
    assert "BrokenPipe" not in err, err
    assert {s for s, _ in statuses(out).values()} == {"passed"}
    assert set(statuses(out)) == set(CELLS)
    for name in ("results.json", "summary.md", "matrix.html", "junit.xml"):
        assert (out / name).is_file()


def test_nothing_a_passing_cell_started_outlives_it(
    world: Matrix, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A test that starts a process and passes (plain, and as a ``setsid`` daemon in a
    session of its own): once the cell's tests end, neither is alive."""
    marker = f"compat-test-straggler-{tmp_path.name}"
    sleeper = f"import time; time.sleep(301)  # {marker}"
    (tmp_path / "tests" / "core" / "test_fault.py").write_text(
        "import subprocess, sys\n"
        "def test_leaves_processes_behind():\n"
        f"    subprocess.Popen([sys.executable, '-c', {sleeper!r}])\n"
        f"    subprocess.Popen(['setsid', sys.executable, '-c', {sleeper!r}])\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    try:
        assert cli.main(["matrix", "--matrix", str(world.path), "--out", str(out)]) == 0
        assert {s for s, _ in statuses(out).values()} == {"passed"}
        assert living(marker) == []
    finally:
        for line in living(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
