"""The grid for a terminal or a CI log: bands of cells that fit the width, lists under it."""

from __future__ import annotations

from compat.harness.reports.bands import render_banded
from compat.harness.reports.findings import (
    DRIFT_TITLE,
    drift_lines,
    drift_report,
    findings,
    not_applicable_lines,
)
from compat.harness.reports.grid import LEGEND, LINE_TEXT, Grid, fit
from compat.harness.results.model import CellResult, CellStatus

__all__ = ["render_console"]


def _with_check(result: CellResult) -> str:
    verdict = result.applicability.check_verdict if result.applicability else None
    return f"{result.reason or ''}" + (f" [rule {verdict}]" if verdict else "")


def render_console(grid: Grid, *, width: int | None = None, detail: bool = False) -> str:
    """The grid in bands of cells at most ``width`` wide, long routes as lettered codes.

    Cells that cannot exist get no column here (they would be a column of "n/a"); they
    are listed under the grid with their reason. summary.md and matrix.html keep them.

    Porting drift comes last: at most ten findings then "and N more", IR-only findings
    (op renames, graph order) as a count; ``detail`` (``--drift-detail``) lists every
    finding, with each node under it.
    """
    shown = [j for j, c in enumerate(grid.columns) if c.status is not CellStatus.NOT_APPLICABLE]
    folded = [r for r in grid.results if r.status is CellStatus.NOT_APPLICABLE]
    if not shown:  # nothing applicable at all: the n/a columns are the news
        shown, folded = list(range(len(grid.columns))), []
    headers, rows = grid.table(short=True, columns=shown)
    lines = [render_banded(["test", *headers], rows, width=width), "", LEGEND]
    if grid.route_legend:
        lines += ["", "Routes:", *(f"  {line}" for line in grid.route_legend)]
    if folded:
        lines += [
            "",
            "Not applicable (not installed, not run):",
            *not_applicable_lines((r.cell_id, _with_check(r)) for r in folded),
        ]
    for title, items in findings(grid.results):
        lines += ["", f"{title}:", *(f"  {item}" for item in items)]
    drift = drift_report(grid.results)
    if drift:
        text = drift_lines(drift, detail=detail)
        lines += ["", f"{DRIFT_TITLE}:", *(f"  {fit(line, LINE_TEXT)}" for line in text)]
    return "\n".join(lines)
