"""Faults through the real harness: a segfault, an abort, a hang, unbounded memory, a torch
that will not import, Ctrl-C. Only the uv install is stood in for (the cell runs in this
interpreter, with a stand-in ``torch`` package on its path); everything after it is real:
the process group, the timeout, the streamed events, the classification, the report.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compat.harness.commands import cli
from compat.harness.config.matrix import Matrix
from compat.harness.execute import cell_runner
from compat.harness.install.pipconfig import PipIndexConfig
from compat.harness.locations import timings_file
from compat.harness.results.gate import EXIT_INTERRUPTED, EXIT_UNEXPECTED
from compat.harness.results.model import CellStatus, Outcome
from compat.harness.results.run_folder import load_run


def run_all(matrix: Matrix, run_dir: Path) -> dict[str, object]:
    results = cell_runner.run_cells(
        list(matrix.cells),
        matrix,
        run_dir=run_dir,
        envs_root=run_dir / "envs",
        pip_config=PipIndexConfig(),
        jobs=2,
    )
    return {r.cell_id: r for r in results}


def outcomes(result: object) -> dict[str, str]:
    return {t.nodeid.rsplit("::", 1)[-1]: t.outcome.value for t in result.tests}  # type: ignore[attr-defined]


def test_segfault_in_one_cell_keeps_the_others(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    results = run_all(cell_world("segfault"), tmp_path / "run")
    ok, crashed = results["torch2.8.0-torch.ao-py3.11"], results["torch2.9.0-torch.ao-py3.11"]
    assert ok.status is CellStatus.PASSED
    assert outcomes(ok) == {
        "test_before": "passed",
        "test_segfault": "passed",
        "test_after": "passed",
    }
    assert crashed.status is CellStatus.CRASHED
    assert crashed.reason == "killed by SIGSEGV in tests/core/test_fault.py::test_segfault"
    assert outcomes(crashed) == {"test_before": "passed", "test_segfault": "error"}
    assert crashed.fingerprint["torch"] == "2.8.0+cpu"
    assert crashed.isolation == "file"
    assert [r.get("signal") for r in crashed.file_runs] == ["SIGSEGV"]


def test_abort_is_a_crash_with_finished_tests(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    result = run_all(cell_world("abort", versions=("2.8.0",)), tmp_path / "run")[
        "torch2.8.0-torch.ao-py3.11"
    ]
    assert result.status is CellStatus.CRASHED
    assert result.reason == "killed by SIGABRT in tests/core/test_fault.py::test_abort"
    assert outcomes(result)["test_before"] == "passed"


def test_hang_is_timed_out_and_killed(cell_world: Callable[..., Matrix], tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_all(cell_world("hang", timeout=8, versions=("2.8.0",)), tmp_path / "run")[
        "torch2.8.0-torch.ao-py3.11"
    ]
    assert time.monotonic() - started < 60
    assert result.status is CellStatus.TIMED_OUT
    assert result.reason == (
        "timed out (the cell's timeout ran out) in tests/core/test_fault.py::test_hang"
    )
    assert outcomes(result)["test_quick"] == "passed"


def test_unbounded_memory_under_a_limit(cell_world: Callable[..., Matrix], tmp_path: Path) -> None:
    result = run_all(cell_world("memory", memory=600, versions=("2.8.0",)), tmp_path / "run")[
        "torch2.8.0-torch.ao-py3.11"
    ]
    assert result.status in (CellStatus.FAILED, CellStatus.CRASHED)
    assert "out of memory" in (result.reason or "")
    assert "memory limit 600 MiB" in (result.reason or "")
    assert outcomes(result)["test_quick"] == "passed"


def test_torch_that_will_not_import(cell_world: Callable[..., Matrix], tmp_path: Path) -> None:
    broken = 'raise ImportError("libcudnn.so.9: cannot open shared object file")\n'
    result = run_all(
        cell_world("plain", torch_source=broken, versions=("2.8.0",)), tmp_path / "run"
    )["torch2.8.0-torch.ao-py3.11"]
    assert result.status is CellStatus.IMPORT_FAILED
    assert result.reason == "ImportError: libcudnn.so.9: cannot open shared object file"


def test_ctrl_c_writes_a_partial_report_and_resume_keeps_it(
    cell_world: Callable[..., Matrix],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # torch2.7.0 finishes at once; torch2.8.0 hangs in test_hang until Ctrl-C.
    matrix = cell_world("hang", timeout=300, versions=("2.7.0", "2.8.0"))
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)

    def press_ctrl_c() -> None:
        events = out / "cells" / "torch2.8.0-torch.ao-py3.11" / "events.jsonl"
        deadline = time.monotonic() + 120
        finished = out / "cells" / "torch2.7.0-torch.ao-py3.11" / "result.json"
        while time.monotonic() < deadline:
            if (
                events.exists()
                and "test_hang" in events.read_text(encoding="utf-8")
                and finished.exists()
            ):
                break
            time.sleep(0.2)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)

    # A parent (nox, CI) may start us with SIGINT ignored; a terminal would not.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    try:
        code = cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(out), "-j", "2"])
    finally:
        signal.signal(signal.SIGINT, previous)
    presser.join()
    assert code == EXIT_INTERRUPTED
    loaded = load_run(out)
    by_id = {r.cell_id: r for r in loaded.results}
    stopped = by_id["torch2.8.0-torch.ao-py3.11"]
    assert stopped.status is CellStatus.NOT_RUN
    assert stopped.reason == "interrupted while testing"
    assert [(t.nodeid, t.outcome) for t in stopped.tests] == [
        ("tests/core/test_fault.py::test_quick", Outcome.PASSED)
    ]
    assert by_id["torch2.7.0-torch.ao-py3.11"].status is CellStatus.PASSED
    statuses = [
        c["status"] for c in json.loads((out / "results.json").read_text(encoding="utf-8"))["cells"]
    ]
    assert statuses == ["passed", "not-run"]

    # --resume: finished cells come back as they were, the interrupted ones run again.
    (tmp_path / "tests" / "core" / "test_fault.py").write_text(  # the same tests, no hang
        "def test_quick(): pass\ndef test_hang(): pass\n", encoding="utf-8"
    )
    out2 = tmp_path / "out2"
    code = cli.main(
        ["matrix", "--matrix", str(matrix.path), "--out", str(out2), "--resume", str(out)]
    )
    assert code == 0
    again = {r.cell_id: r for r in load_run(out2).results}
    assert again["torch2.8.0-torch.ao-py3.11"].status is CellStatus.PASSED
    assert outcomes(again["torch2.8.0-torch.ao-py3.11"]) == {
        "test_quick": "passed",
        "test_hang": "passed",
    }
    # the finished cell was taken over, not rerun: it still has the old test file's tests
    assert outcomes(again["torch2.7.0-torch.ao-py3.11"]) == {
        "test_quick": "passed",
        "test_hang": "passed",
    }
    assert "resuming 1 finished cell(s)" in capsys.readouterr().out


def test_unexpected_failure_gates(
    cell_world: Callable[..., Matrix], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = cell_world("segfault")
    monkeypatch.chdir(tmp_path)
    code = cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(tmp_path / "o")])
    assert code == EXIT_UNEXPECTED


def test_a_test_that_passes_on_a_rerun_is_flaky_not_failed(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    """`reruns = 2`: the cell runs pytest-rerunfailures; the grid says "~", the gate passes."""
    from compat.harness.reports.console import render_console
    from compat.harness.reports.grid import build_grid, status_label
    from compat.harness.results.gate import exit_code

    matrix = cell_world("flaky", versions=("2.8.0",), reruns=2)
    assert "pytest-rerunfailures" in matrix.cell_deps
    result = run_all(matrix, tmp_path / "run")["torch2.8.0-torch.ao-py3.11"]
    assert "--reruns" in result.command
    assert result.status is CellStatus.PASSED
    assert outcomes(result) == {"test_steady": "passed", "test_flaky": "flaky"}
    flaky = next(t for t in result.tests if t.outcome.value == "flaky")
    assert flaky.reruns == 1
    assert "the first attempt fails" in (flaky.message or "")
    assert status_label(result) == "PASS (1✓ 1~)"
    assert exit_code([result]) == 0
    text = render_console(build_grid([result]))
    assert "Flaky (failed, then passed on a rerun):" in text
    assert "torch2.8.0-torch.ao-py3.11: test_flaky passed after 1 failed attempt(s)" in text


def test_cells_start_longest_first_from_the_last_run(
    cell_world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow cell (torch 2.2.2's tests take 60 s) must not be the one left at the end."""
    import json as _json

    from compat.harness.execute import cell_runner
    from compat.harness.install.pipconfig import PipIndexConfig

    matrix = cell_world("plain", versions=("2.7.0", "2.8.0", "2.9.0"))
    envs = tmp_path / "envs"
    envs.mkdir()
    timings_file(envs).write_text(
        _json.dumps(
            {
                "torch2.7.0-torch.ao-py3.11": 5,
                "torch2.8.0-torch.ao-py3.11": 60,
                "torch2.9.0-torch.ao-py3.11": 20,
            }
        ),
        encoding="utf-8",
    )
    started: list[str] = []
    real = cell_runner.run_cell
    monkeypatch.setattr(
        cell_runner,
        "run_cell",
        lambda cell, *a, **k: started.append(cell.id) or real(cell, *a, **k),
    )
    results = cell_runner.run_cells(
        list(matrix.cells),
        matrix,
        run_dir=tmp_path / "run",
        envs_root=envs,
        pip_config=PipIndexConfig(),
        jobs=1,
    )
    assert started == [
        "torch2.8.0-torch.ao-py3.11",
        "torch2.9.0-torch.ao-py3.11",
        "torch2.7.0-torch.ao-py3.11",
    ]
    assert [r.cell_id for r in results] == [c.id for c in matrix.cells]  # report order kept
    remembered = _json.loads(timings_file(envs).read_text(encoding="utf-8"))
    assert remembered["torch2.8.0-torch.ao-py3.11"] < 60  # this run's time replaces it
