"""The grid for a terminal or a CI log: bands of cells that fit the width, lists under it."""

from __future__ import annotations

from compat.harness.reports.bands import render_banded
from compat.harness.reports.findings import (
    DRIFT_TITLE,
    drift_lines,
    findings,
    not_applicable_lines,
)
from compat.harness.reports.grid import (
    FILE_FAILED,
    LEGEND,
    LINE_TEXT,
    NOT_IN_SCOPE,
    SYMBOLS,
    Grid,
    RowKind,
    fit,
)
from compat.harness.reports.terminal import colour, wrap
from compat.harness.results.model import CellResult, CellStatus, Outcome

__all__ = ["render_console"]


def _with_check(result: CellResult) -> str:
    verdict = result.applicability.check_verdict if result.applicability else None
    return f"{result.reason or ''}" + (f" [rule {verdict}]" if verdict else "")


# The colour of each symbol of a test row, and of each status on the status row.
_SYMBOL_COLOUR = {
    SYMBOLS[Outcome.PASSED.value]: "green",
    SYMBOLS[Outcome.FAILED.value]: "red",
    SYMBOLS[Outcome.ERROR.value]: "red",
    SYMBOLS[Outcome.FAILED_DIFFERENTLY.value]: "red",
    SYMBOLS[Outcome.XFAILED.value]: "magenta",
    SYMBOLS[Outcome.XPASSED.value]: "cyan",
    SYMBOLS[Outcome.FLAKY.value]: "yellow",
    SYMBOLS[Outcome.NOT_RUN.value]: "yellow",
    FILE_FAILED: "red",
    SYMBOLS[Outcome.SKIPPED.value]: "dim",
    NOT_IN_SCOPE: "dim",
    SYMBOLS[CellStatus.NOT_APPLICABLE.value]: "dim",
}


def _status_colour(status: CellStatus) -> str | None:
    if status is CellStatus.PASSED:
        return "green"
    if status.unexpected:
        return "red"
    return "yellow" if status.infrastructure else None


def _coloured(grid: Grid, columns: list[int], rows: list[list[str]]) -> list[list[str]]:
    """The table's rows with each test symbol and each status in its colour."""
    out = []
    for row, texts in zip(grid.rows, rows, strict=True):
        if row.kind is RowKind.TEST:
            texts = [texts[0], *(colour(t, _SYMBOL_COLOUR.get(t)) for t in texts[1:])]
        elif row.kind is RowKind.STATUS:
            statuses = [grid.columns[j].status for j in columns]
            texts = [
                texts[0],
                *(colour(t, _status_colour(s)) for t, s in zip(texts[1:], statuses, strict=True)),
            ]
        out.append(texts)
    return out


def render_console(
    grid: Grid,
    *,
    width: int | None = None,
    detail: bool = False,
    colour_on: bool = False,
    wrap_width: int | None = None,
) -> str:
    """The grid in bands of cells at most ``width`` wide, long routes as lettered codes;
    ``colour_on``: each symbol and status in its colour (a terminal); ``wrap_width``: the
    lines under the grid wrapped at word boundaries to that width (a terminal's).

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
    if colour_on:
        rows = _coloured(grid, shown, rows)
    table = render_banded(["test", *headers], rows, width=width)
    lines = [LEGEND]
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
    drift = grid.drift_findings
    if drift:
        text = drift_lines(drift, detail=detail)
        lines += ["", f"{DRIFT_TITLE}:", *(f"  {fit(line, LINE_TEXT)}" for line in text)]
    wrapped = [part for line in lines for part in wrap(line, wrap_width)]
    return "\n".join([table, "", *wrapped])
