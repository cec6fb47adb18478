"""``results.json``: versioned, self-describing, enough to redraw every other report."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compat.harness.files import atomic_write_text
from compat.harness.redact import redact
from compat.harness.reports.context import ReportContext, utc_now
from compat.harness.reports.grid import status_counts
from compat.harness.results.model import SCHEMA_VERSION, CellResult

__all__ = ["run_document", "write"]


def run_document(
    results: Sequence[CellResult],
    *,
    run_id: str,
    matrix: Mapping[str, Any],
    exit_code: int,
    created: str | None = None,
) -> dict[str, Any]:
    """The run's ``results.json`` as a dict (``created``: now, unless given)."""
    return {
        "schema": SCHEMA_VERSION,
        "run_id": run_id,
        "created": created or utc_now(),
        "matrix": matrix,
        "host": {"platform": platform.platform(), "python": platform.python_version()},
        "exit_code": exit_code,
        "summary": status_counts(results),
        "cells": [r.to_dict() for r in results],
    }


def write(run_dir: Path, report: ReportContext) -> Path:
    doc = run_document(
        report.results,
        run_id=report.run_id,
        matrix=report.matrix,
        exit_code=report.exit_code,
        created=report.created,
    )
    if report.diff is not None:
        doc["baseline_diff"] = report.diff.to_dict()
    if report.disk is not None and report.disk.to_dict():
        doc["disk"] = report.disk.to_dict()
    path = run_dir / "results.json"
    atomic_write_text(path, redact(json.dumps(doc, indent=2, sort_keys=True)) + "\n")
    return path
