"""Write a run's documents: results.json, summary.md, matrix.html and the merged junit.xml.

All of them are drawn from the same list of :class:`CellResult`, so a local run, a
rebuilt report and a merge of CI shards produce the same files, and all of them are
written by ``files.atomic_write_text``: atomically, with one file mode, redacted.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compat.harness.results.baseline import DIFF_LINES, BaselineDiff, render_diff
from compat.harness.files import atomic_write_text
from compat.harness.reports.html import render_html
from compat.harness.reports.junit import merge_junit
from compat.harness.redact import redact
from compat.harness.reports.grid import render_markdown
from compat.harness.results.model import SCHEMA_VERSION, CellResult

__all__ = ["run_document", "write_reports"]


def run_document(results: Sequence[CellResult], *, run_id: str, matrix: dict[str, Any],
                 exit_code: int) -> dict[str, Any]:
    """The run's ``results.json``: versioned, self-describing, enough to redraw every report."""
    statuses: dict[str, int] = {}
    for result in results:
        statuses[result.status.value] = statuses.get(result.status.value, 0) + 1
    return {
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "matrix": matrix,
        "host": {"platform": platform.platform(), "python": platform.python_version()},
        "exit_code": exit_code,
        "summary": statuses,
        "cells": [r.to_dict() for r in results],
    }


def write_reports(run_dir: Path, results: Sequence[CellResult], *, run_id: str,
                  matrix: dict[str, Any], exit_code: int,
                  diff: BaselineDiff | None = None,
                  disk: dict[str, Any] | None = None,
                  appendix: tuple[str, str] | None = None) -> dict[str, Path]:
    """Write every document; append the summary to a CI step summary when that is set.

    ``appendix`` is (markdown, html) a command adds on top of the grid (qualification)."""
    doc = run_document(results, run_id=run_id, matrix=matrix, exit_code=exit_code)
    if diff is not None:
        doc["baseline_diff"] = diff.to_dict()
    if disk:
        doc["disk"] = disk
    paths = {"json": run_dir / "results.json", "markdown": run_dir / "summary.md"}
    atomic_write_text(paths["json"], redact(json.dumps(doc, indent=2, sort_keys=True)) + "\n")
    summary = render_markdown(results, title=str(matrix.get("name", run_id)),
                              exit_code=exit_code)
    if diff is not None:
        summary += "\n" + render_diff(diff, markdown=True, limit=DIFF_LINES) + "\n"
    if appendix is not None:
        summary = appendix[0] + "\n" + summary
    atomic_write_text(paths["markdown"], redact(summary))
    paths["html"] = run_dir / "matrix.html"
    atomic_write_text(paths["html"], render_html(results, title=str(matrix.get("name", run_id)),
                                                 exit_code=exit_code, created=doc["created"],
                                                 appendix=appendix[1] if appendix else ""))
    paths["junit"] = merge_junit(run_dir, results)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:  # appended to, not replaced: the one file not written atomically
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(redact(summary))
    return paths
