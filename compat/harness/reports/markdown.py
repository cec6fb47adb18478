"""``summary.md``: the grid as one Markdown table, every list under it; also CI's step summary.

The step summary is the same document published where CI shows it: appended to
``$GITHUB_STEP_SUMMARY`` when that is set (the one file not written atomically: it is
CI's, and other steps append to it too).
"""

from __future__ import annotations

import os
from pathlib import Path

from tabulate import tabulate

from compat.harness.files import atomic_write_text
from compat.harness.redact import redact
from compat.harness.reports.context import ReportContext
from compat.harness.reports.findings import (
    DRIFT_SHOWN,
    DRIFT_TITLE,
    IR_TITLE,
    findings,
    not_applicable_evidence,
)
from compat.harness.reports.grid import LEGEND, Grid
from compat.harness.results.baseline import DIFF_LINES, render_diff
from compat.harness.results.drift import Finding, snapshot_classes
from compat.harness.results.gate import EXIT_OK
from compat.harness.results.model import CellStatus

__all__ = ["render_markdown", "summary", "write"]


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _finding(finding: Finding, *, group: bool, nodes: bool) -> list[str]:
    lines = [f"- {_md_escape(finding.headline(group=group))}"]
    lines += [f"  `{c}`" for c in finding.bisect]
    if nodes:
        lines += [f"  - `{_md_escape(o.text())}`" for o in finding.occurrences]
    return lines


def _drift(grid: Grid) -> list[str]:
    """The first findings, "and N more", then every finding node by node (collapsed), the
    IR-only findings (collapsed) and each test's snapshot classes (collapsed)."""
    results, found = grid.results, grid.drift_findings
    if not found:
        return []
    group = len({f.group for f in found}) > 1
    metadata = [f for f in found if f.metadata]
    ir_only = [f for f in found if not f.metadata]
    lines = ["", f"### {DRIFT_TITLE}", ""]
    for finding in metadata[:DRIFT_SHOWN]:
        lines += _finding(finding, group=group, nodes=False)
    if len(metadata) > DRIFT_SHOWN:
        lines.append(f"- and {len(metadata) - DRIFT_SHOWN} more (all below)")
    if ir_only:
        lines.append(f"- {len(ir_only)} IR-only finding(s) (op renames, graph order; below)")
    if metadata:
        lines += ["", "<details><summary>Every drift finding, node by node</summary>", ""]
        for finding in metadata:
            lines += _finding(finding, group=group, nodes=True)
        lines += ["", "</details>"]
    if ir_only:
        lines += ["", f"<details><summary>{_md_escape(IR_TITLE)}</summary>", ""]
        for finding in ir_only:
            lines += _finding(finding, group=group, nodes=True)
        lines += ["", "</details>"]
    lines += [
        "",
        "<details><summary>Snapshot classes (cells in which a test's porting is identical)"
        "</summary>",
        "",
    ]
    for test, classes in snapshot_classes(results).items():
        groups = "; ".join("[" + ", ".join(c.cells) + "]" for c in classes)
        lines.append(
            f"- {_md_escape(test.rsplit('::', 1)[-1])}: {len(classes)} class(es): "
            f"{_md_escape(groups)}"
        )
    return [*lines, "", "</details>"]


def render_markdown(grid: Grid, *, title: str, exit_code: int) -> str:
    """The whole grid in one table (every route spelled out), then the lists under it."""
    headers, rows = grid.table(sep="<br>")
    table = tabulate(
        [[_md_escape(c) for c in row] for row in rows],
        headers=["test", *headers],
        tablefmt="github",
        disable_numparse=True,
    )
    verdict = "all cells as expected" if exit_code == EXIT_OK else f"exit code {exit_code}"
    lines = [f"## torch-compat-matrix: {title}", "", f"**{verdict}**", "", table, "", f"_{LEGEND}_"]
    for heading, items in findings(grid.results):
        lines += ["", f"### {heading}", "", *(f"- {_md_escape(i)}" for i in items)]
    lines += _drift(grid)
    na = [r for r in grid.results if r.status is CellStatus.NOT_APPLICABLE]
    if na:
        lines += [
            "",
            "### Not applicable, and the evidence",
            "",
            *(
                f"- {_md_escape(r.cell_id)}: {_md_escape(r.reason or '')}; "
                f"{_md_escape(not_applicable_evidence(r))}"
                for r in na
            ),
        ]
    return "\n".join(lines) + "\n"


def summary(report: ReportContext) -> str:
    """The run's summary: the appendix (if any), the grid, the baseline diff (if any)."""
    text = render_markdown(report.grid, title=report.title, exit_code=report.exit_code)
    if report.diff is not None:
        text += "\n" + render_diff(report.diff, markdown=True, limit=DIFF_LINES) + "\n"
    for line in report.disk_lines:
        text += f"\n{line}\n"
    if report.appendix is not None:
        text = report.appendix.markdown + "\n" + text
    return text


def write(run_dir: Path, report: ReportContext) -> Path:
    path = run_dir / "summary.md"
    text = redact(summary(report))
    atomic_write_text(path, text)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:  # appended to, not replaced
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(text)
    return path
