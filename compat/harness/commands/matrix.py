"""``matrix`` and ``cell``: a run of the matrix's cells; ``report``: a kept run finished again.

Both are the steps of :mod:`.pipeline`; this module chooses the cells and the steps.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from compat.harness.commands.options import RunOptions, load_baseline_option, writable_folder
from compat.harness.commands.pipeline import RUN_STEPS, Run, execute, judge, write_documents
from compat.harness.config.matrix import Cell, Matrix
from compat.harness.errors import ResultFileError, UsageError
from compat.harness.processes import file_lock
from compat.harness.results.merge import account_for_cell_folders, merge_runs
from compat.harness.results.run_folder import LOCK, RunManifest, holds_run, load_run

__all__ = ["report_run", "run_matrix"]


def run_matrix(matrix: Matrix, cells: Sequence[Cell], options: RunOptions) -> int:
    """Run ``cells`` of ``matrix`` into a new run folder; the exit code of the gate.

    Every option is checked before the run folder exists, so a mistake leaves nothing
    behind; from then on an interruption (Ctrl-C, SIGTERM) still writes the report.
    """
    return execute(RUN_STEPS, Run(matrix, list(cells), options))


def _merge_target(out: str | None, sources: Sequence[str]) -> Path:
    """Where ``--merge`` may write: a new or empty folder, or an earlier merge; never a run."""
    if not out:
        raise UsageError(
            "--merge needs --out DIR, a new folder for the merged run "
            "(a merge never writes into an existing run)"
        )
    if Path(out).is_symlink():
        raise UsageError(f"--out {out}: is a link (reports/latest?); give a new folder")
    run_dir = writable_folder(out, "--out")
    if holds_run(run_dir):
        try:
            manifest = RunManifest.read(run_dir)
        except ResultFileError:
            manifest = None
        if manifest is None or not manifest.merged_from:
            raise UsageError(
                f"--out {out}: holds a run that is not a merge; merging there "
                "would overwrite it (give a new folder)"
            )
    for source in sources:
        if Path(source).resolve() == run_dir:
            raise UsageError(f"--out {out}: is also a folder to merge")
    return run_dir


def report_run(
    run: str,
    *,
    merge: Sequence[str] | None = None,
    out: str | None = None,
    baseline: str | None = None,
    drift_detail: bool = False,
) -> int:
    """``report``: rebuild a kept run's documents, or fold CI shards (``merge``) into ``out``.

    A merge writes only into ``--out``, checked before ``run`` (``reports/latest`` by
    default) is even looked at. The run folder is locked while it is written, so two
    commands at once on one folder both finish. The documents are the last two steps of
    a run's (:func:`judge`, :func:`write_documents`), so they come out the same.
    """
    if merge:
        run_dir = _merge_target(out, merge)
    elif out:
        raise UsageError("--out goes with --merge (a report is rebuilt in its run folder)")
    else:
        folder = Path(run)
        if not folder.is_dir():
            raise UsageError(f"{run}: no such run folder")
        run_dir = writable_folder(folder, "run folder")
    loaded_baseline = load_baseline_option(baseline)
    with file_lock(run_dir / LOCK, exclusive=True):
        loaded = merge_runs([Path(d) for d in merge], run_dir) if merge else load_run(run_dir)
        account_for_cell_folders(loaded, run_dir)  # a cell folder never vanishes: not run
        for problem in loaded.problems:
            print(f"compat: skipped {problem}", file=sys.stderr)
        if not loaded.results:
            raise UsageError(f"{run_dir}: no cell results to report")
        manifest = loaded.manifest
        kept = Run(
            None,  # a report judges the results it finds
            [],
            RunOptions(drift_detail=drift_detail),
            check_expectations=False,
            started=True,
            run_dir=run_dir,
            run_id=manifest.run_id if manifest else run_dir.name,
            manifest=manifest,
            baseline=loaded_baseline,
            results=loaded.results,
        )
        return execute((judge, write_documents), kept)
