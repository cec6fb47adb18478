"""``matrix.html``: the grid as one self-contained page, colour-coded, every failure a click away.

No scripts, no external assets: it opens from a CI artifact or a mail attachment. Every
piece of text that came from a test, a log or a matrix file goes through ``html.escape``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

from compat.harness.files import atomic_write_text
from compat.harness.redact import redact
from compat.harness.reports.context import ReportContext
from compat.harness.reports.drift_map import render_drift_map
from compat.harness.reports.findings import (
    DRIFT_TITLE,
    IR_TITLE,
    findings,
    not_applicable_evidence,
)
from compat.harness.reports.grid import (
    LEGEND,
    SYMBOLS,
    Column,
    Grid,
    Row,
    RowKind,
    Value,
    short_message,
    status_counts,
)
from compat.harness.results.baseline import BaselineDiff, diff_sections
from compat.harness.results.drift import Finding, snapshot_classes
from compat.harness.results.gate import EXIT_INFRA, EXIT_OK, describe_exit_code
from compat.harness.results.model import CellResult, CellStatus

__all__ = ["render_html", "write"]

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
.verdict{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600}
.ok{background:#dafbe1;color:#116329}.bad{background:#ffebe9;color:#a40e26}
.infra{background:#fff8c5;color:#7d4e00}
table.grid{border-collapse:separate;border-spacing:0;margin-top:12px;
  border-top:1px solid #d0d7de;border-left:1px solid #d0d7de}
.grid th,.grid td{border-right:1px solid #d0d7de;border-bottom:1px solid #d0d7de;padding:4px 8px;
  text-align:center;white-space:nowrap}
.grid th.row,.grid td.row{text-align:left;font-family:ui-monospace,monospace;font-size:12px}
.scroll{overflow-x:auto;max-width:100%}
.grid .row{position:sticky;left:0;background:#fff;z-index:1}
.grid thead th.row{background:#f6f8fa}
.grid thead th{background:#f6f8fa;font-weight:600;vertical-align:bottom}
.grid a{color:inherit;text-decoration:none;display:block}
.o-passed{background:#dafbe1}.o-failed{background:#ff8182;font-weight:700}
.o-error{background:#ffb077;font-weight:700}.o-skipped{background:#eaeef2}
.o-xfailed{background:#d8b9ff}.o-xpassed{background:#9fd5ff;font-weight:700}
.o-flaky{background:#fff1a8;font-weight:700}
.o-failed-differently{background:#ff8182;font-weight:700}
.o-not-run{background:#fff8c5}.cached{opacity:.55}.o-na{background:#f6f8fa;color:#8c959f}
.info td{font-size:12px;color:#57606a}
.s-passed{color:#116329;font-weight:600}.s-bad{color:#a40e26;font-weight:700}
.s-infra{color:#7d4e00;font-weight:700}.s-na{color:#8c959f}
details{border:1px solid #d0d7de;border-radius:6px;margin:8px 0;padding:6px 10px}
details:target{outline:3px solid #0969da}
summary{cursor:pointer;font-weight:600}
p.why{font-family:ui-monospace,monospace;font-size:12px;color:#a40e26;margin:6px 0}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:420px;font-size:12px}
ul.routes{font-size:12px;color:#57606a;margin:6px 0}
table.kv td{padding:1px 10px 1px 0;vertical-align:top;font-size:12px}
table.kv td:first-child{color:#57606a;white-space:nowrap}
"""

_VERDICT_CLASS = {EXIT_OK: "ok", EXIT_INFRA: "infra"}


def _e(text: object) -> str:
    return html.escape(redact(str(text)), quote=True)


def _anchor(*parts: str) -> str:
    """An id for a cell or test: made of its redacted name (a URL flattened into ``_``s would
    no longer be recognisable as one)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", "--".join(redact(p) for p in parts))


def _status_class(status: CellStatus) -> str:
    if status is CellStatus.PASSED:
        return "s-passed"
    if status in (CellStatus.NOT_APPLICABLE, CellStatus.SKIPPED):
        return "s-na"
    return "s-infra" if status.infrastructure else "s-bad"


def _test_cell(column: Column, row: Row, value: Value) -> str:
    """A test's symbol, coloured by its outcome; a click away from its message."""
    test = value.test
    if test is None:
        return f'<td class="o-na">{_e(value.short)}</td>'
    title = test.outcome.value + (f": {test.expected_reason}" if test.expected_reason else "")
    cached = " cached" if test.cached else ""
    title += f" (cached {test.cached})" if test.cached else ""
    body = _e(value.short)
    if test.message or test.expected_reason:
        body = f'<a href="#{_anchor(column.cell_id, row.key)}">{body}</a>'
    return f'<td class="o-{test.outcome.value}{cached}" title="{_e(title)}">{body}</td>'


def _row(grid: Grid, row: Row) -> str:
    if row.kind is RowKind.TEST:
        cells = "".join(
            _test_cell(c, row, v) for c, v in zip(grid.columns, row.values, strict=True)
        )
        return f'<tr><td class="row" title="{_e(row.key)}">{_e(row.label)}</td>{cells}</tr>'
    if row.kind is RowKind.STATUS:
        cells = "".join(
            f'<td class="{_status_class(c.status)}">{_e(v.short)}</td>'
            for c, v in zip(grid.columns, row.values, strict=True)
        )
    else:  # a lettered route's title spells it out
        cells = "".join(f'<td title="{_e(v.title)}">{_e(v.short)}</td>' for v in row.values)
    return f'<tr class="info"><td class="row">{_e(row.label)}</td>{cells}</tr>'


def _grid(grid: Grid) -> str:
    heads = "".join(
        f'<th title="{_e(c.cell_id)}"><a href="#{_anchor(c.cell_id)}">'
        f"{'<br>'.join(_e(p) for p in c.header().splitlines())}</a></th>"
        for c in grid.columns
    )
    rows = "".join(_row(grid, row) for row in grid.rows)
    legend = "".join(f"<li>{_e(line)}</li>" for line in grid.route_legend)
    return (
        f'<div class="scroll"><table class="grid"><thead><tr><th class="row">test</th>'
        f"{heads}</tr></thead><tbody>{rows}</tbody></table></div>"
        + (f'<ul class="routes">{legend}</ul>' if legend else "")
    )


def _kv(pairs: Sequence[tuple[str, object]]) -> str:
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>"
        for k, v in pairs
        if v not in (None, "", [], {})
    )
    return f'<table class="kv">{rows}</table>'


def _cell_details(result: CellResult, column: Column) -> str:
    fp = result.fingerprint
    pairs: list[tuple[str, object]] = [
        ("status", f"{result.status.value}" + (f": {result.reason}" if result.reason else "")),
        ("torch", column.build if fp else ""),
        ("torch git_version", fp.get("torch_git_version")),
        ("torchao", fp.get("torchao")),
        ("numpy", fp.get("numpy")),
        ("deps as of", column.deps_cutoff),
        ("python", fp.get("python") or column.python),
        ("platform", fp.get("platform")),
        ("uv", column.uv_version),
        ("env reused", column.reused),
    ]
    for name, wheel in sorted(column.wheels.items()):
        pairs += [
            (f"{name} wheel", wheel.file),
            (f"{name} sha256", wheel.sha256),
            (f"{name} index", wheel.index),
        ]
    pairs += [
        (
            f"route {k}",
            v + (f" (adapted: {result.adaptations[k]})" if k in result.adaptations else ""),
        )
        for k, v in result.routes.items()
    ]
    pairs += [("torch import warnings", "; ".join(fp.get("torch_import_warnings") or []))]
    pairs += [("timings", ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))]
    parts = [_kv(pairs)]
    for test in result.tests:
        if not (test.message or test.expected_reason):
            continue
        note = (
            f"expected to fail with {test.expected_failure}: {test.expected_reason}\n\n"
            if test.expected_reason
            else ""
        )
        parts.append(
            f'<details id="{_anchor(result.cell_id, test.nodeid)}"'
            f"{' open' if test.outcome.unexpected else ''}>"
            f"<summary>{_e(SYMBOLS[test.outcome.value])} {_e(test.nodeid)} "
            f"({_e(test.outcome.value)})</summary>"
            f'<p class="why">{_e(short_message(test.message))}</p>'
            f"<pre>{_e(note + (test.message or ''))}</pre></details>"
        )
    if result.warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in result.warnings)
        parts.append(
            f"<details><summary>warnings recorded ({len(result.warnings)})</summary>"
            f"<ul>{items}</ul></details>"
        )
    if result.log_excerpt:
        parts.append(
            f"<details><summary>log excerpt</summary><pre>{_e(result.log_excerpt)}</pre></details>"
        )
    if column.freeze:
        parts.append(
            f"<details><summary>resolved packages ({len(column.freeze)})</summary>"
            f"<pre>{_e(chr(10).join(column.freeze))}</pre></details>"
        )
    return (
        f'<details id="{_anchor(result.cell_id)}" '
        f"{'open' if result.status.unexpected else ''}>"
        f'<summary class="{_status_class(result.status)}">{_e(result.cell_id)}: '
        f"{_e(result.status.value)}</summary>{''.join(parts)}</details>"
    )


def _finding(finding: Finding, *, group: bool) -> str:
    """One finding: its headline; a click shows the bisect commands and every node."""
    anchor = _anchor("drift", finding.group, *finding.step, finding.kind.name, *finding.stacks)
    headline = _e(finding.headline(group=group)).replace(" -&gt; ", " &rarr; ")
    commands = "".join(f"<pre>{_e(c)}</pre>" for c in finding.bisect)
    nodes = "".join(f"<li><code>{_e(o.text())}</code></li>" for o in finding.occurrences)
    return (
        f'<details id="{anchor}" class="drift-finding">'
        f"<summary>{headline}</summary>{commands}<ul>{nodes}</ul></details>"
    )


def _drift_section(grid: Grid) -> str:
    """The drift map, each finding (click it for its nodes), IR-only findings collapsed."""
    found = grid.drift_findings
    if not found:
        return ""
    group = len({f.group for f in found}) > 1
    metadata = "".join(_finding(f, group=group) for f in found if f.metadata)
    ir_only = [f for f in found if not f.metadata]
    ir = (
        f"<details><summary>{_e(IR_TITLE)}: {len(ir_only)} finding(s)</summary>"
        + "".join(_finding(f, group=group) for f in ir_only)
        + "</details>"
        if ir_only
        else ""
    )
    classes = "".join(
        f"<li>{_e(test.rsplit('::', 1)[-1])}: "
        f"{_e('; '.join('[' + ', '.join(c.cells) + ']' for c in groups))}</li>"
        for test, groups in snapshot_classes(grid.results).items()
    )
    return (
        f"<h2>{_e(DRIFT_TITLE)}</h2>"
        f'<div class="scroll">{render_drift_map(grid.results, grid.drifts)}</div>{metadata}{ir}'
        f"<details><summary>Snapshot classes (cells in which a test's porting is identical)"
        f"</summary><ul>{classes}</ul></details>"
    )


_DIFF_CLASS = {"regressions": "bad", "fixed": "ok", "still failing": "bad"}


def _diff_section(diff: BaselineDiff | None) -> str:
    """The baseline diff summary.md shows, section by section: regressions first and open,
    each empty section a count; every line (summary.md cuts at DIFF_LINES)."""
    if diff is None:
        return ""
    parts = []
    empty = [label for label, items in diff_sections(diff) if not items]
    for label, items in diff_sections(diff):
        if not items:
            continue
        klass = _DIFF_CLASS.get(label, "")
        counted = f'<span class="verdict {klass}">{_e(label)}: {len(items)}</span>'
        opened = " open" if label == "regressions" else ""
        lines = "".join(f"<li><code>{_e(item)}</code></li>" for item in items)
        parts.append(f"<details{opened}><summary>{counted}</summary><ul>{lines}</ul></details>")
    if empty:
        parts.append(f"<p><small>none: {_e(', '.join(empty))}</small></p>")
    heading = f"<h2>Against {_e(diff.baseline)}</h2>"
    return f'<section id="baseline-diff">{heading}{"".join(parts)}</section>'


def render_html(
    grid: Grid,
    *,
    title: str,
    exit_code: int,
    created: str = "",
    appendix: str = "",
    diff: BaselineDiff | None = None,
) -> str:
    """The page: verdict and counts, the grid, the baseline diff (if any), the lists, then
    every cell in detail."""
    results = grid.results
    klass, verdict = _VERDICT_CLASS.get(exit_code, "bad"), describe_exit_code(exit_code)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(status_counts(results).items()))
    details = "".join(
        _cell_details(r, c)
        for r, c in zip(results, grid.columns, strict=True)
        if r.status is not CellStatus.NOT_APPLICABLE
    )
    na = [r for r in results if r.status is CellStatus.NOT_APPLICABLE]
    na_list = "".join(
        f"<li>{_e(r.cell_id)}: {_e(r.reason)}<br><small>"
        f"{_e(not_applicable_evidence(r))}</small></li>"
        for r in na
    )
    sections = "".join(
        f"<h2>{_e(title)}</h2><ul>{''.join(f'<li>{_e(item)}</li>' for item in items)}</ul>"
        for title, items in findings(results)
        if title != DRIFT_TITLE
    )
    sections += _drift_section(grid)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>torch-compat-matrix: {_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>torch-compat-matrix: {_e(title)}</h1>
<div><span class="verdict {klass}">exit {exit_code}: {_e(verdict)}</span>
&nbsp; {_e(summary)} &nbsp; <small>{_e(created)}</small></div>
{appendix}
{_grid(grid)}
<p><small>{_e(LEGEND)}. Click a symbol for its failure message, a column for its cell.</small></p>
{_diff_section(diff)}
{sections}
<h2>Cells</h2>
{details}
{f"<h2>Not applicable</h2><ul>{na_list}</ul>" if na else ""}
</body></html>
"""


def _disk_note(lines: Sequence[str]) -> str:
    return "".join(f'<p class="disk">{_e(line)}</p>' for line in lines)


def write(run_dir: Path, report: ReportContext) -> Path:
    path = run_dir / "matrix.html"
    atomic_write_text(
        path,
        render_html(
            report.grid,
            title=report.title,
            exit_code=report.exit_code,
            created=report.created,
            appendix=(report.appendix.html if report.appendix else "")
            + _disk_note(report.disk_lines),
            diff=report.diff,
        ),
    )
    return path
