"""One matrix run, as ``matrix`` and ``cell`` do it; ``report`` finishes a kept one the same way.

The order matters for what survives a failure: the run folder and its manifest come
first (so a report can always be rebuilt), then the cells kept from ``--resume``, then
the cells themselves, and last the reports, the ``latest`` link and the exit code, on
Ctrl-C as well as on success.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from compat.harness.config.matrix import Cell, Matrix
from compat.harness.errors import UsageError
from compat.harness.execute.cell_runner import RunInterrupted, default_jobs, run_cells
from compat.harness.execute.progress import make_progress
from compat.harness.install.disk import tree_bytes, uv_cache_dir
from compat.harness.install.pipconfig import read_pip_config
from compat.harness.install.prefetch import MANIFEST as WHEELHOUSE_MANIFEST
from compat.harness.install.uv_cli import uv_bin
from compat.harness.locations import envs_root
from compat.harness.reports.documents import write_reports
from compat.harness.reports.grid import render_console
from compat.harness.results.baseline import diff_runs, load_baseline, render_diff
from compat.harness.results.classify import flag_missing_tests
from compat.harness.results.gate import EXIT_INTERRUPTED, exit_code
from compat.harness.results.merge import merge_runs
from compat.harness.results.model import CellResult, CellStatus
from compat.harness.results.run_folder import RunManifest, load_run, new_run_dir, update_latest

__all__ = ["RunOptions", "console_width", "finish_run", "load_baseline_option", "report_run",
           "run_matrix"]

Baseline = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class RunOptions:
    """What the command line may change about a run (``None``: the default)."""

    out: str | None = None
    jobs: int | None = None
    baseline: str | None = None
    resume: str | None = None
    offline: str | None = None
    reruns: int | None = None
    shard: str | None = None
    strict: bool | None = None


def console_width() -> int:
    """The terminal's width, ``$COLUMNS``, or 200 for a CI log (wide, yet one screen)."""
    return max(80, shutil.get_terminal_size((200, 24)).columns)


def load_baseline_option(path: str | None) -> Baseline | None:
    return None if not path else (str(path), load_baseline(path))


def run_matrix(matrix: Matrix, cells: Sequence[Cell], options: RunOptions) -> int:
    """Run ``cells`` of ``matrix`` into a new run folder; the exit code of the gate."""
    baseline = load_baseline_option(options.baseline)
    if options.reruns is not None:
        if options.reruns < 0:
            raise UsageError(f"--reruns {options.reruns}: expected a whole number >= 0")
        matrix = dataclasses.replace(matrix, reruns=options.reruns)
    if options.strict:
        matrix = dataclasses.replace(matrix, strict=True)
    wheelhouse = _wheelhouse(options.offline)
    if options.out:
        run_dir = Path(options.out).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        run_id, reports = run_dir.name, None
    else:
        reports = Path("reports").resolve()
        run_id, run_dir = new_run_dir(reports, matrix.name)
    RunManifest.for_matrix(run_id, matrix, list(cells), options.shard).write(run_dir)
    jobs = options.jobs if options.jobs and options.jobs > 0 else default_jobs()
    applicable = sum(c.applicable for c in cells)
    print(f"compat: {len(cells)} cells ({applicable} applicable) from {matrix.path}, "
          f"{jobs} at a time -> {run_dir}", flush=True)
    reused = _resumed(options.resume, cells, run_dir)
    cache_size = _measure_cache_in_background()
    todo = [c for c in cells if c.id not in reused]
    try:
        progress = make_progress([c.id for c in todo])
        try:
            fresh = run_cells(todo, matrix, run_dir=run_dir, envs_root=envs_root(),
                              pip_config=read_pip_config(), jobs=jobs, progress=progress,
                              wheelhouse=wheelhouse)
        finally:
            progress.close()
    except RunInterrupted as stop:
        by_id = {**reused, **{r.cell_id: r for r in stop.results}}
        finish_run(run_dir, run_id, [by_id[c.id] for c in cells], RunManifest.read(run_dir),
                   reports, baseline, cache_size())
        print("compat: interrupted; finished cells are kept (rerun with --resume)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    by_id = {**reused, **{r.cell_id: r for r in fresh}}
    return finish_run(run_dir, run_id, [by_id[c.id] for c in cells], RunManifest.read(run_dir),
                      reports, baseline, cache_size())


def finish_run(run_dir: Path, run_id: str, results: Sequence[CellResult],
               manifest: RunManifest | None, reports: Path | None,
               baseline: Baseline | None = None, disk: dict[str, Any] | None = None) -> int:
    """Write every report of a run, print the grid (and the diff), return the exit code."""
    for result in flag_missing_tests(results):
        result.write(run_dir / "cells" / result.cell_id / "result.json")
    diff = diff_runs(baseline[1], results, name=baseline[0]) if baseline else None
    code = exit_code(results, regressions=len(diff.regressions) if diff else 0)
    info = manifest.matrix_info() if manifest else {"name": run_id}
    paths = write_reports(run_dir, results, run_id=run_id, matrix=info, exit_code=code,
                          diff=diff, disk=disk)
    print()
    print(render_console(results, width=console_width()))
    if diff is not None:
        print()
        print(render_diff(diff))
    print()
    if disk and "uv_cache_bytes" in disk:
        own = sum(int(r.install.get("disk", {}).get("own_bytes", 0)) for r in results)
        print(f"disk: uv cache {disk['uv_cache_bytes'] / 2**30:.1f} GiB ({disk['uv_cache_dir']})"
              f"; envs' own files {own / 2**20:.0f} MiB (the rest is hardlinked from the cache)")
    if reports is not None:
        update_latest(reports, run_dir)
    print(f"reports: {', '.join(str(p) for p in paths.values())}")
    print(f"exit code {code}")
    return code


def report_run(run: str, *, merge: Sequence[str] | None = None, out: str | None = None,
               baseline: str | None = None) -> int:
    """``report``: rebuild a kept run's documents, or fold CI shards (``merge``) into ``out``."""
    loaded_baseline = load_baseline_option(baseline)
    if merge:
        run_dir = Path(out or run).resolve()
        if run_dir.is_symlink() or run_dir.name == "latest":
            raise UsageError("--merge needs --out DIR for the merged run")
        loaded = merge_runs([Path(d) for d in merge], run_dir)
    else:
        run_dir = Path(run)
        if not run_dir.is_dir():
            raise UsageError(f"{run_dir}: no such run folder")
        run_dir = run_dir.resolve()
        loaded = load_run(run_dir)
    for problem in loaded.problems:
        print(f"compat: skipped {problem}", file=sys.stderr)
    if not loaded.results:
        raise UsageError(f"{run_dir}: no cell results to report")
    run_id = loaded.manifest.run_id if loaded.manifest else run_dir.name
    return finish_run(run_dir, run_id, loaded.results, loaded.manifest, None, loaded_baseline)


def _resumed(resume: str | None, cells: Sequence[Cell], run_dir: Path) -> dict[str, CellResult]:
    """With ``--resume [RUN]``: finished cells of that run, copied into this one."""
    if not resume:
        return {}
    source = Path(resume).resolve()
    if not source.is_dir():
        raise UsageError(f"{resume}: no such run folder to resume")
    loaded = load_run(source)
    wanted = {c.id: c for c in cells}
    kept: dict[str, CellResult] = {}
    for result in loaded.results:
        cell = wanted.get(result.cell_id)
        if cell is None or result.status is CellStatus.NOT_RUN or result.cell != asdict(cell):
            continue
        if source != run_dir:
            shutil.copytree(source / "cells" / result.cell_id, run_dir / "cells" / result.cell_id,
                            dirs_exist_ok=True)
        kept[result.cell_id] = result
    if kept:
        print(f"compat: resuming {len(kept)} finished cell(s) from {source}", flush=True)
    return kept


def _measure_cache_in_background() -> Callable[[], dict[str, Any]]:
    """Size the shared uv cache while the cells run; the report says how big it is."""
    found: dict[str, Any] = {}

    def measure() -> None:
        with contextlib.suppress(Exception):
            folder = uv_cache_dir(uv_bin())
            if folder is not None and folder.is_dir():
                found.update(uv_cache_dir=str(folder), uv_cache_bytes=tree_bytes(folder))

    worker = threading.Thread(target=measure, daemon=True)
    worker.start()

    def result() -> dict[str, Any]:
        worker.join(timeout=60)
        return dict(found)

    return result


def _wheelhouse(offline: str | None) -> Path | None:
    if not offline:
        return None
    folder = Path(offline).resolve()
    if not (folder / WHEELHOUSE_MANIFEST).is_file():
        raise UsageError(f"{folder}: not a prefetched wheelhouse (run nox -s prefetch first)")
    return folder
