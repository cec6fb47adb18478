"""Kinds of porting drift, findings, and the drift map, on snapshots recorded from real cells.

``data/recorded/drift_snapshots.json`` holds snapshots of the test core recorded by
``python -m compat matrix`` in real cells (torch.ao 2.2.2, 2.5.1, 2.8.0, 2.10.0; torchao
0.13.0 with torch 2.8.0, 0.16.0 with 2.10.0). Kinds no real step shows (a tag lost or
gained, metadata keys) are built from a recorded snapshot with one field changed.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from compat.harness.reports.console import render_console
from compat.harness.reports.documents import WRITERS, write_reports
from compat.harness.reports.drift_map import render_drift_map
from compat.harness.reports.findings import DRIFT_LINES, drift_lines, drift_report
from compat.harness.reports.grid import build_grid
from compat.harness.reports.html import render_html
from compat.harness.reports.markdown import render_markdown
from compat.harness.results.drift import (
    ChangeKind,
    cross_stack_drifts,
    diff_snapshots,
    drift_findings,
    drifts,
    node_changes,
    skips_releases,
)
from compat.harness.results.model import Outcome

from .factories import cell_result

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "recorded" / "drift_snapshots.json").read_text("utf-8")
)
SIMPLE = "test_simple_metadata_porting"
UNKNOWN = "test_no_metadata_porting_through_unknown_ops"
NO_META = "test_no_metadata_porting"
SVG = "{http://www.w3.org/2000/svg}"


def snap(torch: str, test: str, stack: str = "torch.ao", ao: str = "") -> dict[str, Any]:
    cell = f"torch{torch}-{'torch.ao' if stack == 'torch.ao' else 'torchao' + ao}-py3.11"
    return copy.deepcopy(RECORDED[cell][test])


def kinds(before: dict[str, Any], after: dict[str, Any]) -> dict[ChangeKind, list[Any]]:
    found: dict[ChangeKind, list[Any]] = {}
    for change in node_changes(before, after):
        found.setdefault(change.kind, []).append(change)
    return found


def test_tag_changed_the_24_walk_back_change() -> None:
    found = kinds(snap("2.2.2", UNKNOWN), snap("2.5.1", UNKNOWN))
    assert set(found) == {ChangeKind.TAG_CHANGED}
    assert {(c.before, c.after) for c in found[ChangeKind.TAG_CHANGED]} == {
        ("aten.matmul.default", "aten.add.Tensor")
    }
    assert (
        "converted: dequantize_per_tensor after matmul: tag 'aten.matmul.default' -> "
        in (diff_snapshots(snap("2.2.2", UNKNOWN), snap("2.5.1", UNKNOWN))[0])
    )


def test_tag_lost_and_gained() -> None:
    before = snap("2.5.1", UNKNOWN)
    after = copy.deepcopy(before)
    node = next(e for e in after["converted"] if e["tag"] is not None)
    node_tag, node["tag"] = node["tag"], None
    lost = kinds(before, after)
    assert list(lost) == [ChangeKind.TAG_LOST]
    assert lost[ChangeKind.TAG_LOST][0].before == node_tag
    assert list(kinds(after, before)) == [ChangeKind.TAG_GAINED]


def test_source_changed_from_module_path_to_op_name() -> None:
    found = kinds(snap("2.8.0", SIMPLE), snap("2.10.0", SIMPLE))
    assert set(found) == {ChangeKind.SOURCE_CHANGED}
    pairs = {(c.before, c.after) for c in found[ChangeKind.SOURCE_CHANGED]}
    assert ("L__self___conv", "conv2d") in pairs


def test_source_lost_and_gained() -> None:
    lost = kinds(snap("2.5.1", SIMPLE), snap("2.8.0", SIMPLE))
    assert set(lost) == {ChangeKind.SOURCE_LOST}
    assert {c.op for c in lost[ChangeKind.SOURCE_LOST]} == {"get_attr"}
    gained = kinds(snap("2.8.0", SIMPLE), snap("2.5.1", SIMPLE))
    assert set(gained) == {ChangeKind.SOURCE_GAINED}


def test_metadata_key_lost_and_gained_where_snapshots_carry_keys() -> None:
    before = snap("2.8.0", SIMPLE)
    for entry in before["converted"]:
        entry["keys"] = ["from_node", "nn_module_stack", "quantization_tag"]
    after = copy.deepcopy(before)
    after["converted"][0]["keys"] = ["from_node", "quantization_tag", "stack_trace"]
    found = kinds(before, after)
    assert [c.before for c in found[ChangeKind.KEY_LOST]] == ["nn_module_stack"]
    assert [c.after for c in found[ChangeKind.KEY_GAINED]] == ["stack_trace"]
    assert set(found) == {ChangeKind.KEY_LOST, ChangeKind.KEY_GAINED}


def test_keys_never_change_which_nodes_match() -> None:
    """Nodes reordered and a key gained on all of them (2.4.1 -> 2.5.1 gained torch_fn on
    every call_function node): the order move and the keys, never a tag change from nodes
    matched wrongly (the alignment once saw BackendA_conv2d_0 -> BackendA_linear_0)."""
    before = snap("2.5.1", SIMPLE)
    for entries in before.values():
        for entry in entries:
            entry["keys"] = ["stack_trace"]
    after = copy.deepcopy(before)
    after["prepared"].reverse()
    for entries in after.values():
        for entry in entries:
            entry["keys"] = ["stack_trace", "torch_fn"]
    found = kinds(before, after)
    assert set(found) == {ChangeKind.GRAPH_ORDER, ChangeKind.KEY_GAINED}
    nodes = sum(len(entries) for entries in after.values())
    assert len(found[ChangeKind.KEY_GAINED]) == nodes
    assert {c.after for c in found[ChangeKind.KEY_GAINED]} == {"torch_fn"}


def test_node_removed_and_added_by_a_pass() -> None:
    found = kinds(snap("2.2.2", SIMPLE), snap("2.5.1", SIMPLE))
    (removed,) = found[ChangeKind.NODE_REMOVED]  # addmm became linear; its t is gone
    assert (removed.op, removed.stage, removed.before) == ("t", "reexported", "BackendA_linear_0")
    back = kinds(snap("2.5.1", SIMPLE), snap("2.2.2", SIMPLE))
    assert [c.op for c in back[ChangeKind.NODE_ADDED]] == ["t"]


def test_op_renames_are_one_node_that_changed_not_removed_and_added() -> None:
    found = kinds(snap("2.2.2", SIMPLE), snap("2.5.1", SIMPLE))
    renames = {(c.before, c.after) for c in found[ChangeKind.OP_RENAMED]}
    assert renames == {
        ("convolution", "conv2d"),
        ("mean.dim", "adaptive_avg_pool2d"),
        ("addmm", "linear"),
    }
    # The q/dq nodes after a renamed op follow it: no change of theirs is reported.
    assert not any(
        c.op.startswith(("quantize", "dequantize"))
        for c in found.get(ChangeKind.NODE_ADDED, []) + found.get(ChangeKind.NODE_REMOVED, [])
    )
    # A test whose snapshot has only the q/dq nodes sees the rename through their producer.
    plain = kinds(snap("2.2.2", NO_META), snap("2.5.1", NO_META))
    assert {(c.before, c.after) for c in plain[ChangeKind.OP_RENAMED]} == renames
    assert ChangeKind.NODE_ADDED not in plain
    assert ChangeKind.NODE_REMOVED not in plain


def test_graph_order_only() -> None:
    found = kinds(snap("2.2.2", SIMPLE), snap("2.5.1", SIMPLE))
    stages = {c.stage for c in found[ChangeKind.GRAPH_ORDER] if c.where.startswith("the same")}
    assert stages == {"prepared", "converted"}
    before = snap("2.5.1", SIMPLE)
    after = copy.deepcopy(before)
    after["prepared"].reverse()
    assert diff_snapshots(before, after) == ["prepared: the same nodes in another graph order"]
    assert not ChangeKind.GRAPH_ORDER.metadata
    assert not ChangeKind.OP_RENAMED.metadata


def test_an_op_rename_and_a_tag_change_on_one_node_are_both_reported() -> None:
    before, after = snap("2.2.2", SIMPLE), snap("2.5.1", SIMPLE)
    conv = next(e for e in after["reexported"] if e["op"] == "conv2d")
    conv["tag"] = "BackendB_conv2d_0"
    found = kinds(before, after)
    (rename,) = [c for c in found[ChangeKind.OP_RENAMED] if c.after == "conv2d"]
    (tag,) = found[ChangeKind.TAG_CHANGED]
    assert rename.where == tag.where == "conv2d after placeholder"
    assert (tag.before, tag.after) == ("BackendA_conv2d_0", "BackendB_conv2d_0")
    assert tag.kind.metadata  # the tag change is listed with the metadata, not hidden
    assert tag.text() == (
        "reexported: conv2d after placeholder: tag 'BackendA_conv2d_0' -> 'BackendB_conv2d_0'"
    )


# --- runs ----------------------------------------------------------------------------------


def cell(torch: str, stack: str = "torch.ao", ao: str | None = None, tests=(SIMPLE,)) -> Any:
    result = cell_result(torch, stack, outcomes=dict.fromkeys(tests, Outcome.PASSED), torchao=ao)
    for test in result.tests:
        test.snapshots = snap(torch, test.nodeid.rsplit("::", 1)[-1], stack, ao or "")
    return result


def run() -> list[Any]:
    return [
        cell("2.2.2", tests=(SIMPLE, UNKNOWN, NO_META)),
        cell("2.5.1", tests=(SIMPLE, UNKNOWN, NO_META)),
        cell("2.8.0"),
        cell("2.10.0"),
        cell("2.8.0", "torchao", "0.13.0"),
        cell("2.10.0", "torchao", "0.16.0"),
    ]


def test_one_finding_per_group_step_kind_merged_across_tests_and_stacks() -> None:
    found = drift_findings(drifts(run()))
    keys = [(f.step, f.kind, f.stacks) for f in found]
    assert len(keys) == len(set(keys))
    (source,) = [f for f in found if f.kind is ChangeKind.SOURCE_CHANGED]
    assert source.stacks == ("torch.ao", "torchao")  # the same change on both stacks
    assert source.headline().startswith(
        "2.8.0 -> 2.10.0, torch.ao and torchao: from_node source changed from module path "
        "to op name on conv2d"
    )
    (renamed,) = [f for f in found if f.kind is ChangeKind.OP_RENAMED]
    assert renamed.tests == (SIMPLE, NO_META)  # two tests, one finding
    assert [f.metadata for f in found] == sorted((f.metadata for f in found), reverse=True)


def test_the_same_change_seen_by_two_test_files_is_one_finding() -> None:
    """A second suite (another file) sees the 2.8.0 -> 2.10.0 source change on its own
    nodes: one finding over both files, counted, never one per file."""
    results = run()
    for result in results:
        twin = copy.deepcopy(result.tests[0])
        twin.nodeid = "tests/core/test_contracts.py::" + twin.nodeid.rsplit("::", 1)[-1] + "_2"
        result.tests.append(twin)
    found = drift_findings(drifts(results))
    (source,) = [f for f in found if f.kind is ChangeKind.SOURCE_CHANGED]
    assert len(source.files) == 2
    assert "(2 tests in 2 files, " in source.headline(group=True)
    assert not source.headline(group=True).startswith("test_")  # no single file to name
    lost = [f for f in found if f.kind is ChangeKind.SOURCE_LOST]
    assert all(len(f.files) == 2 for f in lost)


def test_a_change_no_failure_reports_comes_before_one_a_failing_test_shows() -> None:
    results = run()
    failing = next(t for t in results[3].tests if t.nodeid.endswith(SIMPLE))  # 2.10.0
    failing.outcome = Outcome.XFAILED
    found = [f for f in drift_findings(drifts(results)) if f.metadata]
    assert [f.green for f in found if f.kind is not ChangeKind.TAG_CHANGED] == sorted(
        (f.green for f in found if f.kind is not ChangeKind.TAG_CHANGED), reverse=True
    )
    assert any(not f.green for f in found)
    assert any(f.green for f in found)


def test_a_step_that_skips_releases_offers_the_bisect_command() -> None:
    assert skips_releases("2.5.1", "2.8.0")
    assert skips_releases("2.9.0", "2.10.1")
    assert not skips_releases("2.9.1", "2.10.0")
    assert not skips_releases("2.4.0", "2.4.1")
    found = drift_findings(drifts(run()))
    (tag,) = [f for f in found if f.kind is ChangeKind.TAG_CHANGED]
    assert tag.bisect == (
        f"python -m compat bisect {UNKNOWN} --good 2.2.2 --bad 2.5.1 --stack torch.ao "
        "--on snapshot",
    )
    (source,) = [f for f in found if f.kind is ChangeKind.SOURCE_CHANGED]
    assert [c.split("--stack ")[1] for c in source.bisect] == [
        "torch.ao --on snapshot",
        "torchao --on snapshot",
    ]


def test_across_stacks_at_one_torch() -> None:
    across = cross_stack_drifts(run())
    assert {(d.step[0], d.test) for d in across} == {("2.8.0", SIMPLE), ("2.10.0", SIMPLE)}
    found = drift_findings(across)
    assert all(f.across and ", torch.ao vs torchao" in f.where() for f in found)
    assert ChangeKind.SOURCE_GAINED in {f.kind for f in found}
    assert all(not f.bisect for f in found)
    # The same difference at 2.8.0 and 2.10.0 is one finding naming both torches.
    gained = [f for f in found if f.kind is ChangeKind.SOURCE_GAINED]
    assert len(gained) == 1
    assert gained[0].where().startswith("2.8.0, 2.10.0, torch.ao vs torchao")
    assert {o.after_cell for o in gained[0].occurrences} == {
        d.after_cell for d in across if any(n.kind is ChangeKind.SOURCE_GAINED for n in d.nodes)
    }


def test_console_shows_what_fits_in_its_lines_then_and_n_more_and_detail_on_demand() -> None:
    found = drift_report(run())
    many = found * 3  # more findings than a console shows
    lines = drift_lines(many)
    heads = [line for line in lines if not line.startswith(" ")]
    metadata = [f for f in many if f.metadata]
    shown = len(heads) - 2  # every finding headline, then "and N more", then the IR count
    assert len(lines) - 2 <= DRIFT_LINES  # with the title: at most 12 lines
    assert f"and {len(metadata) - shown} more (--drift-detail)" in heads
    assert heads[-1].endswith("(IR op renamed, graph order only; not metadata): --drift-detail")
    assert not any(line.startswith("  - ") for line in lines)  # nodes only with detail
    detail = drift_lines(found, detail=True)
    assert any(
        "reexported: conv2d after placeholder: op renamed convolution -> conv2d" in d
        for d in detail
    )
    grid = build_grid(run())
    console = render_console(grid, width=200)
    assert "2.8.0 -> 2.10.0, torch.ao and torchao: from_node source changed" in console
    assert "op renamed convolution" not in console
    assert "op renamed convolution" in render_console(grid, width=200, detail=True)


def test_summary_md_folds_the_full_list_and_html_is_one_click() -> None:
    grid = build_grid(run())
    markdown = render_markdown(grid, title="t", exit_code=0)
    assert "<details><summary>Every drift finding, node by node</summary>" in markdown
    assert "`python -m compat bisect " in markdown
    page = render_html(grid, title="t", exit_code=0)
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="drift-map"' in page
    assert "2.8.0 &rarr; 2.10.0, torch.ao and torchao" in page
    assert page.count('class="drift-finding"') == len(drift_report(run()))


def test_the_drift_map_is_xml_one_square_per_changed_test_step_and_a_legend() -> None:
    results = run()
    root = ET.fromstring(render_drift_map(results))
    squares = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "drift"]
    changed = {(d.test, d.line, d.step) for d in [*drifts(results), *cross_stack_drifts(results)]}
    assert len(squares) == len(changed)
    assert all(r.find(f"{SVG}title") is not None for r in squares)
    legend = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "legend-key"]
    kinds_shown = {r.find(f"{SVG}title").text for r in legend}
    assert {"tag changed", "IR op renamed", "source changed"} <= kinds_shown
    assert "<script" not in render_drift_map(results)
    assert "href" not in render_drift_map(results)


def test_the_drift_map_escapes_test_ids() -> None:
    older, newer = cell("2.2.2", tests=(UNKNOWN,)), cell("2.5.1", tests=(UNKNOWN,))
    for result in (older, newer):
        result.tests[0].nodeid = "t.py::test_x[<script>alert('&')</script>]"
    svg = render_drift_map([older, newer])
    ET.fromstring(svg)  # still well-formed
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_drift_svg_is_written_with_the_run(tmp_path: Path) -> None:
    assert "drift" in WRITERS
    paths = write_reports(
        tmp_path, build_grid(run()), run_id="r", matrix={"name": "m"}, exit_code=0
    )
    assert paths["drift"] == tmp_path / "drift.svg"
    ET.parse(paths["drift"])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (.ci/run installs it)")
def test_the_drift_map_renders_in_a_headless_browser(tmp_path: Path) -> None:
    write_reports(tmp_path, build_grid(run()), run_id="r", matrix={"name": "m"}, exit_code=0)
    shot = tmp_path / "drift.png"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=800,600",
            f"--screenshot={shot}",
            (tmp_path / "drift.svg").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_metadata_key_lost_has_its_own_row_in_the_map() -> None:
    older, newer = cell("2.8.0"), cell("2.10.0")
    for result, keys in ((older, ["from_node", "nn_module_stack"]), (newer, ["from_node"])):
        for entry in result.tests[0].snapshots["converted"]:
            entry["keys"] = keys
    found = drift_findings(drifts([older, newer]))
    (lost,) = [f for f in found if f.kind is ChangeKind.KEY_LOST]
    assert lost.headline().startswith(
        "2.8.0 -> 2.10.0, torch.ao: metadata key lost 'nn_module_stack'"
    )
    root = ET.fromstring(render_drift_map([older, newer]))
    labels = [t[0].tail for t in root.iter(f"{SVG}text") if t.get("class") == "test"]
    assert labels == [SIMPLE, "metadata key nn_module_stack"]


def test_any_two_snapshots_diff_without_error_and_a_snapshot_equals_itself() -> None:
    import random

    rng = random.Random(24)
    ops = ["conv2d", "linear", "quantize_per_tensor", "dequantize_per_tensor", "get_attr", "add"]
    for _ in range(200):
        snaps = [
            {
                "converted": [
                    {
                        "op": rng.choice(ops),
                        "after": rng.choice([None, *ops]),
                        "tag": rng.choice([None, "A", "B"]),
                        "source": rng.choice([None, "L__self___conv", "conv2d"]),
                    }
                    for _ in range(rng.randrange(8))
                ]
            }
            for _ in range(2)
        ]
        assert node_changes(snaps[0], snaps[0]) == []
        changes = node_changes(*snaps)
        assert (changes == []) == (snaps[0] == snaps[1])
