from __future__ import annotations

import itertools

from compat.harness.reports.console import render_console
from compat.harness.reports.grid import RowKind, build_grid
from compat.harness.reports.markdown import render_markdown
from compat.harness.results.model import CellStatus, Outcome

from .factories import cell_result

P, F = Outcome.PASSED, Outcome.FAILED


def results() -> list:
    return [
        cell_result(
            "2.8.0",
            outcomes={"test_a": P, "test_b": F},
            status=CellStatus.FAILED,
            reason="1 test(s) failed unexpectedly",
            routes={"capture": "export(strict=True)"},
        ),
        cell_result(
            "2.13.0",
            "torchao",
            torchao="0.18.0",
            outcomes={"test_a": P, "test_b": Outcome.XFAILED},
            routes={"capture": "export(strict=True)", "from_node": "nodesource"},
        ),
        cell_result(
            "2.13.0",
            status=CellStatus.NOT_APPLICABLE,
            reason="torch.ao pt2e was removed in torch 2.11",
        ),
        cell_result(
            "2.9.0",
            status=CellStatus.INSTALL_FAILED,
            reason="index-unreachable: Failed to fetch https://***@x.invalid",
        ),
    ]


def test_grid_rows_columns_and_symbols() -> None:
    grid = build_grid(results())
    assert [(row.label, row.texts) for row in grid.rows if row.kind is RowKind.TEST] == [
        ("test_a", ["✓", "✓", "n/a", "·"]),
        ("test_b", ["✗", "x", "n/a", "·"]),
    ]
    assert grid.row(RowKind.STATUS).texts == [
        "FAIL (1✓ 1✗)",
        "PASS (1✓ 1x)",
        "n/a",
        "INSTALL-FAILED",
    ]
    assert grid.row(RowKind.TORCH_BUILD).texts == ["2.8.0+cpu", "2.13.0+cpu", "", ""]
    assert grid.row(RowKind.ROUTE, "from_node").texts == ["", "nodesource", "", ""]
    assert grid.row(RowKind.ROUTE, "from_node").label == "route: from_node"
    assert grid.row(RowKind.INSTALL_TIME).texts[0] == "1.5s"
    assert grid.columns[1].header() == "2.13.0\nao 0.18.0\npy3.11"
    # the rows every rendering draws, in order: tests, then what explains each column
    assert [row.label for row in grid.rows] == [
        "test_a",
        "test_b",
        "status",
        "torch build",
        "install",
        "tests",
        "env disk",
        "env health",
        "deps as of",
        "route: capture",
        "route: from_node",
    ]


def test_console_lists_cells_not_passing() -> None:
    text = render_console(build_grid(results()))
    assert "test_a" in text
    assert "torch2.8.0-torch.ao-py3.11: failed: 1 test(s) failed unexpectedly" in text
    assert "torch2.9.0-torch.ao-py3.11: install-failed: index-unreachable" in text
    assert "torch2.13.0-torchao0.18.0-py3.11" not in text.split("Cells not passing:")[1]


def test_wide_grids_are_banded_to_the_width() -> None:
    rs = results() * 5  # 20 cells, 5 of them not applicable: listed, not given columns
    text = render_console(build_grid(rs), width=100)
    assert "Not applicable (not installed, not run):" in text
    tables = [block for block in text.split("\n\n") if block.startswith("cells ")]
    assert len(tables) > 1
    spans = []
    for block in tables:
        title, *body = block.split("\n")
        first, _, last = title.split()[1].partition("-")
        spans.append((int(first), int(last or first)))
        assert title.endswith("of 15")
        assert max(len(line) for line in body) <= 100
        assert body[4].startswith("test_a")  # every band repeats the test column
    assert spans[0][0] == 1
    assert spans[-1][1] == 15
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(spans))
    assert "cells 1-" not in render_console(build_grid(rs))  # no width: one table


def test_markdown_is_one_table_with_escaped_cells() -> None:
    rs = results()
    rs[0].routes["capture"] = "a|b"
    text = render_markdown(build_grid(rs), title="default", exit_code=1)
    table = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert len({ln.count("|") - ln.count("\\|") for ln in table}) == 1
    assert "a\\|b" in text
    assert "**exit code 1**" in text
    assert "2.13.0<br>ao 0.18.0<br>py3.11" in text


def test_long_routes_become_codes_with_a_legend() -> None:
    rs = results()
    rs[0].routes["capture"] = "export_for_training(strict=True).module()"
    rs[1].routes["capture"] = "export(strict=True).module(check_guards=False)"
    grid = build_grid(rs, route_width=14)
    assert [v.short for v in grid.row(RowKind.ROUTE, "capture").values] == ["A", "B", "", ""]
    assert grid.row(RowKind.ROUTE, "capture").texts[0] == rs[0].routes["capture"]  # Markdown
    assert grid.route_legend == [
        "capture: A = export_for_training(strict=True).module()",
        "capture: B = export(strict=True).module(check_guards=False)",
    ]
    assert [v.short for v in grid.row(RowKind.ROUTE, "from_node").values] == [
        "",
        "nodesource",
        "",
        "",
    ]
    assert "capture: A = export_for_training" in render_console(grid)


def test_short_message_is_pytests_error_line() -> None:
    from compat.harness.reports.grid import short_message

    text = "def test():\n>       assert x == 1\nE       assert 2 == 1\nE        +  where ...\n"
    assert short_message(text) == "assert 2 == 1"
    assert short_message("RuntimeError: boom\n") == "RuntimeError: boom"
    assert short_message(None) == ""


def test_failed_differently_fixed_broken_env_and_adaptations_are_listed() -> None:
    differs = cell_result(
        "2.2.2",
        outcomes={"test_a": Outcome.FAILED_DIFFERENTLY},
        status=CellStatus.FAILED,
        reason="1 failed differently than expected",
    )
    differs.tests[0].expected_failure = "ValueError matching 'has tag'"
    differs.tests[0].exc_types = ["AssertionError", "builtins.AssertionError"]
    differs.tests[0].message = "E   AssertionError: assert {'a'} == {'b'}"
    differs.fingerprint["torch_import_warnings"] = [
        "UserWarning: Failed to initialize NumPy: _ARRAY_API not found"
    ]
    differs.adaptations = {"capture": "upstream calls capture_pre_autograd_graph"}
    differs.routes = {"capture": "capture_pre_autograd_graph(strict=True)"}
    fixed = cell_result("2.4.1", outcomes={"test_a": Outcome.XPASSED, "test_b": Outcome.SKIPPED})
    fixed.tests[0].expected_failure = "ValueError"
    fixed.tests[0].expected_reason = "walks back through any op"
    text = render_console(build_grid([differs, fixed]), width=200)
    assert (
        "torch2.2.2-torch.ao-py3.11: test_a: expected ValueError matching 'has tag'; got "
        "AssertionError: assert {'a'} == {'b'}"
    ) in text
    assert (
        "torch2.4.1-torch.ao-py3.11: test_a passes (fixed upstream in torch 2.4.1); "
        "retire the expectation (ValueError): walks back through any op"
    ) in text
    assert "torch2.2.2-torch.ao-py3.11: NumPy ABI: UserWarning: Failed to initialize NumPy" in text
    assert "capture (1 cell(s): torch2.2.2-torch.ao-py3.11): upstream calls" in text
    grid = build_grid([differs, fixed])
    assert grid.row(RowKind.STATUS).texts == ["FAIL (1≠)", "PASS (1s 1X)"]
    assert grid.row(RowKind.ENV_HEALTH).texts == ["⚠ NumPy ABI", "ok"]
    assert grid.row(RowKind.ROUTE, "capture").texts[0].endswith(" adapted")
    markdown = render_markdown(grid, title="t", exit_code=1)
    assert "### Fixed (an expected failure passes: retire its expectation)" in markdown
    assert "### Failed differently than expected" in markdown
