"""Write a run's documents: one writer per format, all listed in :data:`WRITERS`.

Every writer draws on the same :class:`ReportContext` (one :class:`Grid`, built once), so
a local run, a rebuilt report and a merge of CI shards produce the same files, and each
writes through ``files.atomic_write_text``: atomically, with one file mode, redacted.
Adding a format is one module with a ``write(run_dir, report) -> Path`` and one entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compat.harness.install.disk_budget import RunDisk
from compat.harness.reports import drift_map, html, junit, markdown, results_json
from compat.harness.reports.context import Appendix, ReportContext, Writer, utc_now
from compat.harness.reports.grid import Grid
from compat.harness.results.baseline import BaselineDiff

__all__ = ["WRITERS", "write_reports"]

# Each format and its writer, in the order they are written (and listed after a run).
WRITERS: dict[str, Writer] = {
    "json": results_json.write,  # results.json
    "markdown": markdown.write,  # summary.md, also appended to CI's step summary
    "html": html.write,  # matrix.html
    "junit": junit.write,  # junit.xml, the cells' own merged
    "drift": drift_map.write,  # drift.svg, the porting drift map (also in matrix.html)
}


def write_reports(
    run_dir: Path,
    grid: Grid,
    *,
    run_id: str,
    matrix: Mapping[str, Any],
    exit_code: int,
    diff: BaselineDiff | None = None,
    disk: RunDisk | None = None,
    appendix: tuple[str, str] | None = None,
    writers: Mapping[str, Writer] | None = None,
) -> dict[str, Path]:
    """Write every document of :data:`WRITERS`, then ``writers``; return each one's path.

    ``appendix`` is (markdown, html) a command adds on top of the grid, ``writers`` the
    documents of its own (qualification's, from ``reports.qualification``)."""
    report = ReportContext(
        grid,
        run_id,
        matrix,
        exit_code,
        utc_now(),
        diff,
        disk,
        Appendix(*appendix) if appendix is not None else None,
    )
    every = {**WRITERS, **(writers or {})}
    return {name: write(run_dir, report) for name, write in every.items()}
