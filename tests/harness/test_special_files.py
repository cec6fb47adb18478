"""FIFOs, devices and endless files where the harness reads its JSON state, through the
real command line in a process of its own (so a read that blocks shows as a timeout, not
a hung test run): ``report``, ``history``, ``report --merge`` and ``--baseline`` read only
regular files, and never more than ``files.STATE_LIMIT`` bytes of one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.commands import cli
from compat.harness.config.matrix import Matrix
from compat.harness.files import STATE_LIMIT, NotARegularFile, read_regular

ROOT = Path(__file__).resolve().parents[2]
CELL = "torch2.8.0-torch.ao-py3.11"
WITHIN = 30.0  # seconds: a read that blocks is a failure, not a hang


def compat(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "COMPAT_ENVS_DIR": str(tmp_path / "envs")}
    environ.pop("COMPAT_DEBUG", None)
    try:
        return subprocess.run(
            [sys.executable, "-m", "tests.harness.cli_stub", *args],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=WITHIN,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{' '.join(args)}: still reading after {WITHIN} s") from None


@pytest.fixture
def run(cell_world: Callable[..., Matrix], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``reports/<run>``: a finished run of two passing cells."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(tmp_path / "envs"))
    matrix = cell_world("plain")
    out = tmp_path / "reports" / "20261204-120000-plain"
    assert cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(out)]) == 0
    return out


def fifo_in_place_of(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def test_the_reader_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFile, match="not a regular file"):
        read_regular(fifo)
    with pytest.raises(NotARegularFile):
        read_regular("/dev/zero")
    big = tmp_path / "big"
    with open(big, "wb") as handle:
        handle.truncate(2000)  # sparse
    with pytest.raises(OSError, match="larger than 1000 bytes"):
        read_regular(big, limit=1000)
    assert read_regular(big, limit=2000) == b"\0" * 2000


@pytest.mark.parametrize("kind", ["fifo", "endless"])
def test_a_cell_result_that_is_no_file_is_named_and_not_run(
    run: Path, tmp_path: Path, kind: str
) -> None:
    shard = tmp_path / "shards" / "one"
    shutil.copytree(run, shard)
    result = run / "cells" / CELL / "result.json"
    for path in (result, shard / "cells" / CELL / "result.json"):
        if kind == "fifo":
            fifo_in_place_of(path)
        else:
            with open(path, "r+b") as handle:  # sparse: no disk used
                handle.truncate(STATE_LIMIT + 1)
    merged = tmp_path / "merged"
    done = compat(tmp_path, "report", "--merge", str(tmp_path / "shards"), "--out", str(merged))
    assert done.returncode == 3, done.stderr
    done = compat(tmp_path, "report", str(run))
    assert done.returncode == 3, done.stderr
    why = "not a regular file" if kind == "fifo" else f"larger than {STATE_LIMIT} bytes"
    assert f"compat: skipped {result}: unreadable or truncated" in done.stderr
    assert why in done.stderr
    assert "Traceback" not in done.stderr
    done = compat(tmp_path, "history", "--reports", str(tmp_path / "reports"))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("baseline", ["fifo", "/dev/zero"])
def test_a_baseline_that_is_no_file_is_a_usage_error(
    run: Path, tmp_path: Path, baseline: str
) -> None:
    if baseline == "fifo":
        baseline = str(tmp_path / "baseline.json")
        os.mkfifo(baseline)
    done = compat(tmp_path, "report", str(run), "--baseline", baseline)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"compat: error: --baseline {baseline}: not a regular file (a FIFO, a device or a socket)"
    )


def test_a_manifest_that_is_a_fifo_blocks_nothing(run: Path, tmp_path: Path) -> None:
    fifo_in_place_of(run / "run.json")
    done = compat(tmp_path, "report", str(run))
    assert done.returncode == 0, done.stderr
    assert "not a regular file" in done.stderr
