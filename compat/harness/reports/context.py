"""What every report writer is handed: the one :class:`Grid`, and what the run says of itself.

A writer is ``write(run_dir, report) -> Path``: it writes one document into the run folder
(through ``files.atomic_write_text``, redacted) and returns its path. ``documents.WRITERS``
lists them; this module is what they share, so that no writer imports another.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from compat.harness.install.disk_budget import EnvsFootprint, RunDisk
from compat.harness.reports.grid import Grid
from compat.harness.results.baseline import BaselineDiff
from compat.harness.results.model import CellResult, DiskUsage

__all__ = ["Appendix", "ReportContext", "Writer", "envs_footprint", "utc_now"]


def utc_now() -> str:
    """The time a run's documents were written, as every one of them states it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Appendix(NamedTuple):
    """What a command adds on top of the grid (qualification), in each markup."""

    markdown: str
    html: str


@dataclass(frozen=True)
class ReportContext:
    grid: Grid
    run_id: str
    matrix: Mapping[str, Any]  # the run's matrix, as results.json records it
    exit_code: int
    created: str  # one timestamp for every document of the run
    diff: BaselineDiff | None = None
    disk: RunDisk | None = None
    appendix: Appendix | None = None

    @property
    def results(self) -> list[CellResult]:
        return self.grid.results

    @property
    def title(self) -> str:
        return str(self.matrix.get("name", self.run_id))

    @property
    def disk_lines(self) -> list[str]:
        """The disk budget's account of the run (peak, what it freed), when it had one, and
        this run's envs apart from the shared uv cache."""
        return self.disk.lines(envs_footprint(self.results)) if self.disk is not None else []


def envs_footprint(results: Iterable[CellResult]) -> EnvsFootprint:
    """The envs the run's cells used (each once: cells may share one), as measured."""
    seen: dict[str, DiskUsage] = {}
    for result in results:
        disk = result.install.disk
        if disk is not None and disk.apparent_bytes is not None:
            seen.setdefault(result.install.key or result.cell_id, disk)
    return EnvsFootprint(
        len(seen),
        sum(d.apparent_bytes or 0 for d in seen.values()),
        sum(d.own_bytes or 0 for d in seen.values()),
    )


Writer = Callable[[Path, ReportContext], Path]
