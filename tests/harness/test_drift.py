"""Porting drift: snapshot classes, neighbour diffs along the torch axis, baseline changes."""

from __future__ import annotations

from typing import Any

from compat.harness.reports.console import render_console
from compat.harness.reports.grid import build_grid
from compat.harness.reports.html import render_html
from compat.harness.reports.markdown import render_markdown
from compat.harness.results.baseline import baseline_cells, diff_runs, render_diff
from compat.harness.results.drift import diff_snapshots, drifts, snapshot_classes
from compat.harness.results.model import Outcome

from .factories import cell_result

TEST = "test_no_metadata_porting_through_unknown_ops"
KEY = f"test_metadata_porting.py::TestMetaDataPorting::{TEST}"  # baseline's key


def entry(op: str, after: str | None, tag: str | None, source: str | None = None) -> dict[str, Any]:
    return {"op": op, "after": after, "tag": tag, "source": source}


WALKS_BACK = {
    "converted": [
        entry("dequantize_per_tensor", "matmul", "aten.matmul.default"),
        entry("add.Tensor", "matmul", "aten.add.Tensor", "add"),
    ]
}
STOPS = {
    "converted": [
        entry("dequantize_per_tensor", "matmul", "aten.add.Tensor"),
        entry("add.Tensor", "matmul", "aten.add.Tensor", "add"),
    ]
}


def with_snapshots(torch: str, snaps: dict[str, Any], **kw: Any) -> Any:
    result = cell_result(torch, outcomes={TEST: Outcome.PASSED}, **kw)
    result.tests[0].snapshots = snaps
    return result


def test_a_tag_change_is_one_readable_node_level_line() -> None:
    assert diff_snapshots(WALKS_BACK, STOPS) == [
        "converted: dequantize_per_tensor after matmul: tag 'aten.matmul.default' -> "
        "'aten.add.Tensor'"
    ]
    gone = {"converted": WALKS_BACK["converted"][:1]}
    assert diff_snapshots(WALKS_BACK, gone) == [
        "converted: add.Tensor after matmul: removed (tag 'aten.add.Tensor')"
    ]
    assert diff_snapshots({"converted": []}, {"converted": [], "reexported": []}) == [
        "reexported: recorded only in the newer (0 nodes)"
    ]
    tagless = {"converted": [entry("dequantize_per_tensor", "add.Tensor", None)]}
    tagged = {"converted": [entry("dequantize_per_tensor", "add.Tensor", "BackendA_add_1")]}
    assert diff_snapshots(tagged, tagless) == [
        "converted: dequantize_per_tensor after add.Tensor: tag 'BackendA_add_1' -> none"
    ]


def test_neighbours_along_each_stack_and_classes() -> None:
    cells = [
        with_snapshots("2.4.1", STOPS),
        with_snapshots("2.2.2", WALKS_BACK),
        with_snapshots("2.3.1", WALKS_BACK),
        with_snapshots("2.5.1", STOPS),
        with_snapshots("2.13.0", STOPS, stack="torchao", torchao="0.18.0"),
    ]
    found = drifts(cells)
    assert [(d.before, d.after, d.line) for d in found] == [
        ("2.3.1", "2.4.1", "torch.ao py3.11")
    ]  # sorted by version; torchao is its own line
    assert (
        found[0]
        .headline()
        .startswith(
            f"{TEST} [torch.ao py3.11] 2.3.1 -> 2.4.1: "
            "converted: dequantize_per_tensor after matmul"
        )
    )
    (classes,) = snapshot_classes(cells).values()
    assert [c.cells for c in classes] == [
        [
            "torch2.4.1-torch.ao-py3.11",
            "torch2.5.1-torch.ao-py3.11",
            "torch2.13.0-torchao0.18.0-py3.11",
        ],
        ["torch2.2.2-torch.ao-py3.11", "torch2.3.1-torch.ao-py3.11"],
    ]


def test_drift_is_listed_in_every_report_and_never_fails_the_gate() -> None:
    cells = [with_snapshots("2.3.1", WALKS_BACK), with_snapshots("2.4.1", STOPS)]
    grid = build_grid(cells)
    console = render_console(grid, width=200)
    assert "Porting drift (the porting snapshot changed between neighbouring versions" in console
    assert "2.3.1 -> 2.4.1" in console
    markdown = render_markdown(grid, title="t", exit_code=0)
    assert "### Porting drift (the porting snapshot changed" in markdown
    assert "<summary>Every drift finding, node by node</summary>" in markdown
    assert "tag 'aten.matmul.default' -> 'aten.add.Tensor'" in markdown
    html = render_html(grid, title="t", exit_code=0)
    assert '<details id="drift--' in html
    assert "2.3.1 &rarr; 2.4.1" in html


def test_the_baseline_names_a_behaviour_change_apart_from_regressions() -> None:
    old = with_snapshots("2.4.1", WALKS_BACK)
    new = with_snapshots("2.4.1", STOPS)
    diff = diff_runs(baseline_cells({"cells": [old.to_dict()]}), [new])
    assert diff.regressions == []
    assert diff.behaviour_changed == [
        f"torch2.4.1-torch.ao-py3.11: {KEY}: converted: dequantize_per_tensor "
        "after matmul: tag 'aten.matmul.default' -> 'aten.add.Tensor'"
    ]
    assert "behaviour changed (porting snapshot; not a failure): 1" in render_diff(diff)


def test_an_expected_failure_that_now_fails_differently_is_a_regression() -> None:
    old = cell_result("2.2.2", outcomes={TEST: Outcome.XFAILED})
    new = cell_result("2.2.2", outcomes={TEST: Outcome.FAILED_DIFFERENTLY})
    diff = diff_runs(baseline_cells({"cells": [old.to_dict()]}), [new])
    assert diff.regressions == [f"torch2.2.2-torch.ao-py3.11: {KEY}: xfailed -> failed-differently"]
