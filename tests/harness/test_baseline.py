from __future__ import annotations

import json
from pathlib import Path

import pytest

from compat.harness.errors import UsageError
from compat.harness.reports.results_json import run_document
from compat.harness.results.baseline import (
    BaselineCell,
    baseline_cells,
    diff_runs,
    load_baseline,
    render_diff,
)
from compat.harness.results.gate import EXIT_UNEXPECTED, exit_code
from compat.harness.results.model import CellStatus, Outcome

from .factories import NODE, cell_result

KEY = NODE.rsplit("/", 1)[-1]

P, F, X = Outcome.PASSED, Outcome.FAILED, Outcome.XFAILED


def as_baseline(results: list) -> dict[str, BaselineCell]:
    return baseline_cells(run_document(results, run_id="old", matrix={"name": "m"}, exit_code=0))


def test_regression_fix_still_failing_appeared_vanished() -> None:
    old = as_baseline(
        [
            cell_result("2.8.0", outcomes={"test_a": P, "test_b": F, "test_c": X}),
            cell_result("2.9.0", outcomes={"test_a": P}),
        ]
    )
    new = [
        cell_result(
            "2.8.0",
            outcomes={"test_a": F, "test_b": F, "test_c": Outcome.XPASSED},
            status=CellStatus.FAILED,
        ),
        cell_result("2.10.0", outcomes={"test_a": P}),
    ]
    diff = diff_runs(old, new, name="old.json")
    assert diff.regressions == [f"torch2.8.0-torch.ao-py3.11: {KEY}test_a: passed -> failed"]
    assert diff.fixes == [f"torch2.8.0-torch.ao-py3.11: {KEY}test_c: xfailed -> xpassed"]
    assert diff.still_failing == [f"torch2.8.0-torch.ao-py3.11: {KEY}test_b"]
    assert diff.appeared == ["torch2.10.0-torch.ao-py3.11"]
    assert diff.vanished == ["torch2.9.0-torch.ao-py3.11"]
    assert exit_code(new, regressions=len(diff.regressions)) == EXIT_UNEXPECTED
    text = render_diff(diff)
    assert "regressions: 1" in text
    assert "cells that vanished: 1" in text


def test_a_test_that_is_skipped_gone_or_new_is_named() -> None:
    old = as_baseline([cell_result("2.8.0", outcomes={"test_a": P, "test_b": P, "test_c": P})])
    new = [cell_result("2.8.0", outcomes={"test_a": Outcome.SKIPPED, "test_c": P, "test_d": P})]
    diff = diff_runs(old, new)
    assert diff.changed == [
        f"torch2.8.0-torch.ao-py3.11: {KEY}test_a: passed -> skipped",
        f"torch2.8.0-torch.ao-py3.11: {KEY}test_b: passed -> absent",
        f"torch2.8.0-torch.ao-py3.11: {KEY}test_d: absent -> passed",
    ]
    assert diff.regressions == []


def test_a_cell_that_crashes_is_one_regression() -> None:
    old = as_baseline([cell_result("2.8.0", outcomes={"test_a": P})])
    new = [
        cell_result(
            "2.8.0",
            status=CellStatus.CRASHED,
            reason="killed by SIGSEGV",
            outcomes={"test_a": Outcome.ERROR},
        )
    ]
    diff = diff_runs(old, new)
    assert diff.regressions[0] == "torch2.8.0-torch.ao-py3.11: cell passed -> crashed"


def test_identical_runs_have_no_diff() -> None:
    results = [cell_result("2.8.0", outcomes={"test_a": P, "test_b": X})]
    diff = diff_runs(as_baseline(results), results)
    assert not (diff.regressions)
    assert not (diff.fixes)
    assert not (diff.appeared)
    assert not (diff.vanished)
    assert not (diff.changed)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "baseline not found"),
        ("{", "not a results.json"),
        ("{}", "not a results.json"),
    ],
)
def test_bad_baseline_is_a_usage_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=message) as info:
        load_baseline(path)
    assert str(path) in str(info.value)


def test_load_baseline_round_trip(tmp_path: Path) -> None:
    results = [cell_result("2.8.0", outcomes={"test_a": P})]
    doc = run_document(results, run_id="r", matrix={"name": "m"}, exit_code=0)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert list(load_baseline(path)) == ["torch2.8.0-torch.ao-py3.11"]
