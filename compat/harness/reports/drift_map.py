"""``drift.svg``: the run's porting drift as one picture, also embedded in ``matrix.html``.

Rows are tests (then each metadata key lost or gained, where snapshots carry keys),
columns the version steps of each stack (then torch.ao against torchao at
each torch both ran); a square marks a (test, step) whose snapshot changed, coloured by
the kind of change that matters most there (tags before sources before the IR's own
renames and order), with a ``<title>`` tooltip naming every change of that square. No
script, no font or style from outside: it opens from a CI artifact. Every string that
came from a test or a matrix is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from compat.harness.files import atomic_write_text
from compat.harness.redact import redact
from compat.harness.reports.context import ReportContext
from compat.harness.results.drift import (
    ChangeKind,
    Drift,
    Finding,
    cross_stack_drifts,
    drift_findings,
    drifts,
)
from compat.harness.results.model import CellResult

__all__ = ["COLOURS", "render_drift_map", "write"]

# One colour per kind; metadata kinds strong, the IR's own changes pale.
COLOURS: dict[ChangeKind, str] = {
    ChangeKind.TAG_CHANGED: "#cf222e",
    ChangeKind.TAG_LOST: "#82071e",
    ChangeKind.TAG_GAINED: "#fa4549",
    ChangeKind.SOURCE_CHANGED: "#bf8700",
    ChangeKind.SOURCE_LOST: "#7d4e00",
    ChangeKind.SOURCE_GAINED: "#eac54f",
    ChangeKind.KEY_LOST: "#8250df",
    ChangeKind.KEY_GAINED: "#c297ff",
    ChangeKind.NODE_ADDED: "#0969da",
    ChangeKind.NODE_REMOVED: "#0a3069",
    ChangeKind.OP_RENAMED: "#8c959f",
    ChangeKind.GRAPH_ORDER: "#d0d7de",
}

_CELL, _GAP, _ROW_LABEL, _HEAD, _FONT = 18, 2, 300, 120, "11px sans-serif"


def _e(text: object) -> str:
    return escape(redact(str(text)), quote=True)


def _row_label(test: str, most: int = 42) -> str:
    """A test's row label within ``most`` characters; a parametrized test keeps its
    parameters, what tells its rows apart, before its name.

    >>> _row_label("test_quantization_tag_survives[export_nonstrict-reexport]")
    'test_quantizat…[export_nonstrict-reexport]'
    >>> _row_label("test_tag_survives[capture_pre_autograd_graph-run_decompositions]")
    '…[capture_pre_autograd_graph-run_decompos…'
    >>> _row_label("test_simple")
    'test_simple'
    """
    if len(test) <= most:
        return test
    name, bracket, params = test.partition("[")
    if not bracket:
        return test[: most - 1] + "\u2026"
    keep = most - len(params) - 2  # the characters of the name that still fit
    if keep > 0:
        return name[:keep] + "\u2026[" + params
    return ("\u2026[" + params)[: most - 1] + "\u2026"


def _column(drift: Drift) -> tuple[str, str]:
    """(group heading, step label) of a drift's column."""
    if drift.across:
        return (drift.line, drift.step[0])
    return (drift.line, f"{drift.step[0]} \u2192 {drift.step[1]}")


def render_drift_map(results: Sequence[CellResult], found: Sequence[Drift] | None = None) -> str:
    """The SVG document (no XML declaration: it is embedded in HTML as it is). ``found``:
    the run's drifts when the caller has them (``Grid.drifts``), else computed here."""
    if found is None:
        found = [*drifts(results), *cross_stack_drifts(results)]
    findings = drift_findings(found)
    # Which findings each (test, column) square belongs to, for its tooltip.
    by_square: dict[tuple[str, tuple[str, str]], list[Finding]] = {}
    for finding in findings:
        for occurrence in finding.occurrences:
            drift = next(
                d
                for d in found
                if d.test == occurrence.test
                and d.line == occurrence.line
                and d.after_cell == occurrence.after_cell
            )
            rows = [drift.test]
            if finding.kind in (ChangeKind.KEY_LOST, ChangeKind.KEY_GAINED):
                change = occurrence.change  # a key's own row, under the tests
                rows.append(f"metadata key {change.before or change.after}")
            for row in rows:
                square = by_square.setdefault((row, _column(drift)), [])
                if finding not in square:
                    square.append(finding)
    columns = list(dict.fromkeys(_column(d) for d in found if not d.across))
    columns += list(dict.fromkeys(_column(d) for d in found if d.across))
    tests = list(dict.fromkeys(d.test for d in found))
    tests += sorted({row for row, _ in by_square if row.startswith("metadata key ")} - set(tests))
    kinds = [k for k in ChangeKind if any(f.kind is k for f in findings)] or list(ChangeKind)
    step = _CELL + _GAP
    width = _ROW_LABEL + max(len(columns), 1) * step + 170  # the last group's heading
    legend_top = _HEAD + len(tests) * step + 16
    height = legend_top + (len(kinds) + 1) * step + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="drift-map" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="porting drift map" style="font:{_FONT}">',
        "<title>Porting drift: rows are tests, columns version steps; "
        "hover a square for its changes</title>",
    ]
    if not found:
        parts.append('<text x="8" y="20">no porting drift in this run</text>')
    # Column headings: the step, rotated; the line (stack, python) where it changes.
    last_group, groups = None, 0
    for j, (group, label) in enumerate(columns):
        x = _ROW_LABEL + j * step + _CELL // 2
        parts.append(
            f'<text class="step" x="{x}" y="{_HEAD - 6}" '
            f'transform="rotate(-60 {x} {_HEAD - 6})">{_e(label)}</text>'
        )
        if group != last_group:
            parts.append(
                f'<line x1="{x - _CELL // 2 - 1}" y1="14" x2="{x - _CELL // 2 - 1}" '
                f'y2="{_HEAD + len(tests) * step}" stroke="#8c959f"/>'
                f'<text class="line" x="{x - _CELL // 2 + 2}" y="{12 + 13 * (groups % 3)}">'
                f"{_e(group)}</text>"
            )
            last_group, groups = group, groups + 1
    for i, test in enumerate(tests):
        y = _HEAD + i * step
        shown = _row_label(test)
        parts.append(
            f'<text class="test" x="{_ROW_LABEL - 6}" y="{y + _CELL - 5}" '
            f'text-anchor="end"><title>{_e(test)}</title>{_e(shown)}</text>'
        )
        for j, column in enumerate(columns):
            square = by_square.get((test, column))
            if not square:
                continue
            top = min(square, key=lambda f: f.kind.rank)
            tip = "\n".join(
                f"{test} [{column[0]}] {column[1]}: {f.kind.value}: {f.what()}" for f in square
            )
            parts.append(
                f'<rect class="drift" data-kind="{_e(top.kind.name)}" '
                f'x="{_ROW_LABEL + j * step}" y="{y}" width="{_CELL}" height="{_CELL}" '
                f'fill="{COLOURS[top.kind]}"><title>{_e(tip)}</title></rect>'
            )
    parts.append(f'<g class="legend"><text x="8" y="{legend_top}">kind of change</text>')
    for k, kind in enumerate(kinds):
        y = legend_top + 6 + k * step
        parts.append(
            f'<rect class="legend-key" x="8" y="{y}" width="{_CELL}" height="{_CELL}" '
            f'fill="{COLOURS[kind]}"><title>{_e(kind.value)}</title></rect>'
            f'<text x="{8 + step + 4}" y="{y + _CELL - 5}">{_e(kind.value)}'
            f"{'' if kind.metadata else ' (IR only)'}</text>"
        )
    parts.append("</g></svg>")
    return "\n".join(parts) + "\n"


def write(run_dir: Path, report: ReportContext) -> Path:
    path = run_dir / "drift.svg"
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + render_drift_map(
        report.results, report.grid.drifts
    )
    atomic_write_text(path, text)
    return path
