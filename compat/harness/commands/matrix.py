"""One matrix run, as ``matrix`` and ``cell`` do it; ``report`` finishes a kept one the same way.

The order matters for what survives a failure: every option is checked before anything is
created (a mistake leaves no folder behind), then the run folder and its manifest (so a
report can always be rebuilt), then the cells kept from ``--resume``, then the cells
themselves, and last the reports, the ``latest`` link and the exit code, on Ctrl-C or
SIGTERM as well as on success.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from compat.harness.config.matrix import Cell, Matrix
from compat.harness.config.sizes import format_size
from compat.harness.errors import ConfigError, InfraError, ResultFileError, UsageError
from compat.harness.execute.cell_runner import RunInterrupted, default_jobs, run_cells
from compat.harness.execute.progress import make_progress
from compat.harness.files import atomic_write_text, read_json_object
from compat.harness.install.disk import footprint, tree_bytes
from compat.harness.install.disk_budget import DiskBudget, RunDisk
from compat.harness.install.disk_estimate import (
    UNPACK_RATIO,
    DiskEstimate,
    estimate_growth,
    free_bytes,
    reusable,
    uv_cache_guess,
)
from compat.harness.install.garbage import parse_size
from compat.harness.install.install_plan import plan_for
from compat.harness.install.pipconfig import PipIndexConfig, read_pip_config
from compat.harness.install.prefetch import MANIFEST as WHEELHOUSE_MANIFEST
from compat.harness.install.resolve import ResolutionFailed
from compat.harness.install.uv_cli import uv_bin
from compat.harness.locations import envs_root
from compat.harness.preflight import check_envs_root
from compat.harness.processes import file_lock
from compat.harness.redact import redact
from compat.harness.reports.console import render_console
from compat.harness.reports.documents import write_reports
from compat.harness.reports.grid import build_grid
from compat.harness.results.baseline import (
    DIFF_LINES,
    BaselineCell,
    diff_runs,
    load_baseline,
    render_diff,
)
from compat.harness.results.classify import flag_missing_tests
from compat.harness.results.gate import EXIT_INTERRUPTED, EXIT_USAGE, exit_code
from compat.harness.results.merge import account_for_cell_folders, merge_runs
from compat.harness.results.model import CellResult, CellStatus
from compat.harness.results.run_folder import (
    LOCK,
    MANIFEST,
    RunManifest,
    copy_cell_folder,
    load_run,
    new_run_dir,
    read_cell_result,
    update_latest,
)

__all__ = [
    "RunOptions",
    "console_width",
    "finish_run",
    "load_baseline_option",
    "offline_wheelhouse",
    "report_run",
    "run_matrix",
    "unmatched_expectations",
    "writable_folder",
]

Baseline = tuple[str, dict[str, BaselineCell]]  # its name, its cells by id


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
    disk_budget: str | None = None  # a size such as 30G; else the matrix's disk-budget


def console_width() -> int:
    """The terminal's width, ``$COLUMNS``, or 200 for a CI log (wide, yet one screen)."""
    return max(80, shutil.get_terminal_size((200, 24)).columns)


def load_baseline_option(path: str | None) -> Baseline | None:
    return None if not path else (str(path), load_baseline(path))


def writable_folder(path: str | Path, option: str) -> Path:
    """``path`` as a folder the command may write into, made if missing; a file, or a
    folder that cannot be written (read-only, no permission), is a usage error."""
    try:
        folder = Path(path).resolve()
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{option} {path}: is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".compat-write-check."):
            pass
    except (OSError, ValueError, RuntimeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{option} {path}: cannot write there ({why})") from None
    return folder


def _holds_run(folder: Path) -> bool:
    return (folder / MANIFEST).exists() or (folder / "cells").is_dir()


def _cell_record(cell: Cell) -> Cell:
    """A cell as its result file records it (credentials redacted), to compare on --resume."""
    return Cell.from_dict(json.loads(redact(json.dumps(cell.to_dict()))))


def _resume_source(resume: str | None) -> Path | None:
    """The run ``--resume`` names: checked before anything is created."""
    if not resume:
        return None
    source = Path(resume)
    if not source.is_dir():
        raise UsageError(f"--resume {resume}: no such run folder to resume")
    source = source.resolve()
    if not (source / MANIFEST).is_file():
        raise UsageError(f"--resume {resume}: not a run folder (no {MANIFEST})")
    return source


def run_matrix(matrix: Matrix, cells: Sequence[Cell], options: RunOptions) -> int:
    """Run ``cells`` of ``matrix`` into a new run folder; the exit code of the gate.

    Every option is checked before the run folder exists, so a mistake leaves nothing
    behind; from then on an interruption (Ctrl-C, SIGTERM) still writes the report.
    """
    check_envs_root()  # a file, or not writable: exit 2 before anything is created
    if options.reruns is not None:
        if options.reruns < 0:
            raise UsageError(f"--reruns {options.reruns}: expected a whole number >= 0")
        matrix = dataclasses.replace(matrix, reruns=options.reruns)
    if options.strict:
        matrix = dataclasses.replace(matrix, strict=True)
    if options.jobs is not None and options.jobs < 1:
        raise UsageError(f"-j {options.jobs}: expected a whole number of cells at once, 1 or more")
    if not cells:
        raise UsageError(
            f"{'--shard ' + options.shard if options.shard else '--cells'}: "
            "selects no applicable cell of the matrix"
        )
    baseline = load_baseline_option(options.baseline)
    wheelhouse = offline_wheelhouse(options.offline)
    limit = (
        parse_size(options.disk_budget, "--disk-budget")
        if options.disk_budget
        else matrix.disk_budget
    )
    if limit is not None and limit < 2**20:
        raise UsageError(f"--disk-budget {options.disk_budget!r}: expected a size such as 30G")
    estimate = None
    pip_config = read_pip_config(remember=envs_root() / PIP_CONFIG)
    if wheelhouse is None:
        estimate = _check_disk(matrix, [c for c in cells if c.applicable], pip_config, limit)
    source = _resume_source(options.resume)
    if options.out:
        run_dir = writable_folder(options.out, "--out")
        if _holds_run(run_dir) and run_dir != source:
            raise UsageError(
                f"--out {options.out}: holds a run already; give a new folder "
                f"(or --resume {options.out} to continue that run)"
            )
        run_id, reports = run_dir.name, None
    else:
        reports = writable_folder("reports", "reports folder")
        run_id, run_dir = new_run_dir(reports, matrix.name)
    jobs = options.jobs or default_jobs()
    reused: dict[str, CellResult] = {}
    fresh: list[CellResult] = []
    cache_size = _measure_cache_in_background()
    budget: DiskBudget | None = None
    interrupted = False
    try:
        RunManifest.for_matrix(run_id, matrix, list(cells), options.shard).write(run_dir)
        applicable = sum(c.applicable for c in cells)
        print(
            f"compat: {len(cells)} cells ({applicable} applicable) from {matrix.path}, "
            f"{jobs} at a time -> {run_dir}",
            flush=True,
        )
        reused = _resumed(source, cells, run_dir)
        todo = [c for c in cells if c.id not in reused]
        progress = make_progress([c.id for c in todo])
        if limit is not None or estimate is not None:  # envs to build: watch the disk
            budget = DiskBudget(
                limit,
                cache=uv_cache_guess(),
                envs_root=envs_root(),
                estimate=estimate or DiskEstimate(),
                prune=[uv_bin()],
                cells=[c.id for c in todo if c.applicable],
            )
        try:
            fresh = run_cells(
                todo,
                matrix,
                run_dir=run_dir,
                envs_root=envs_root(),
                pip_config=pip_config,
                jobs=jobs,
                progress=progress,
                wheelhouse=wheelhouse,
                budget=budget,
            )
        finally:
            progress.close()
    except KeyboardInterrupt as stop:  # RunInterrupted carries the cells' results
        interrupted = True
        if isinstance(stop, RunInterrupted):
            fresh = stop.results
    by_id = {**reused, **{r.cell_id: r for r in fresh}}
    results = [by_id.get(c.id) or _not_started(c, run_dir) for c in cells]
    disk = cache_size(wait=not interrupted, again=budget is not None)
    if budget is not None:
        disk.budget = budget.close()
    code = finish_run(
        run_dir,
        run_id,
        results,
        RunManifest.read(run_dir),
        reports,
        baseline,
        disk,
        interrupted=interrupted,
        config_errors=[] if interrupted else unmatched_expectations(matrix, results),
    )
    if interrupted:
        print("compat: interrupted; finished cells are kept (rerun with --resume)", file=sys.stderr)
    return code


def _not_started(cell: Cell, run_dir: Path) -> CellResult:
    """A cell an interruption reached before its result came back: the result it wrote, if
    it got that far, else not run."""
    with contextlib.suppress(ResultFileError):
        return read_cell_result(run_dir / "cells" / cell.id / "result.json")
    result = CellResult(
        cell.id,
        cell,
        CellStatus.NOT_RUN,
        gating=cell.gating,
        reason="interrupted before it started",
    )
    result.write(run_dir / "cells" / cell.id / "result.json")
    return result


def unmatched_expectations(matrix: Matrix, results: Sequence[CellResult]) -> list[str]:
    """``[[expect]]`` entries that match no test of any cell they select that ran tests:
    a renamed test, or a typo, that would otherwise hide nothing and say nothing."""
    cells = {c.id: c for c in matrix.cells}
    errors = []
    for number, expectation in enumerate(matrix.expectations):
        ran = [
            r
            for r in results
            if r.tests and r.cell_id in cells and expectation.where.matches(cells[r.cell_id])
        ]
        if not ran:
            continue  # no cell it selects ran any test: nothing to judge by
        if not any(expectation.matches(cells[r.cell_id], t.nodeid) for r in ran for t in r.tests):
            errors.append(
                str(
                    ConfigError(
                        matrix.path,
                        f"expect[{number}].test",
                        f"{expectation.test!r} matches no test of the {len(ran)} cell(s) it "
                        "selects that ran tests (renamed or misspelt?)",
                    )
                )
            )
    return errors


def _check_disk(
    matrix: Matrix, cells: Sequence[Cell], pip_config: PipIndexConfig, limit: int | None = None
) -> DiskEstimate | None:
    """Before anything is downloaded: what the envs to build will add to uv's cache, and a
    refusal (exit 3, one line) when that exceeds the free disk. Warm runs print nothing.

    Under a disk budget (``limit`` bytes for the cache and the envs together) the growth is
    at most what the budget leaves, or the largest single env, whichever is more.
    """
    root = envs_root()
    plans = []
    for cell in cells:
        if matrix.channel(cell.channel).is_nightly:
            continue  # resolving a nightly reads its index: the run does that once
        try:
            plans.append(plan_for(cell, matrix, envs_root=root, pip_config=pip_config)[1])
        except ResolutionFailed:
            continue  # the cell reports it itself, as install-failed
    if not any(not reusable(plan) for plan in plans):
        return None
    cache = uv_cache_guess()
    estimate = estimate_growth(plans, root, uv_cache=cache)
    free = free_bytes(cache)
    growth = estimate.cache_bytes
    unknown = f"; not sized: {len(estimate.unknown)} cell(s)" if estimate.unknown else ""
    kept = ""
    if limit is not None:
        held = footprint([root, cache])
        largest = int(max(estimate.cell_download.values(), default=0) * UNPACK_RATIO)
        growth = min(growth, max(limit - held, largest))
        kept = (
            f"; budget {format_size(limit)} for the cache and envs (they hold "
            f"{format_size(held)}): at most {format_size(growth)} more"
        )
    print(
        f"compat: disk: {len(estimate.cells)} env(s) to build: about "
        f"{format_size(estimate.download_bytes)} to download, "
        f"{format_size(estimate.cache_bytes)} of uv cache{kept}; {format_size(free)} free"
        f"{unknown}",
        flush=True,
    )
    if growth > free:
        raise InfraError(
            f"disk: the {len(estimate.cells)} env(s) to build need about "
            f"{format_size(growth)} of uv cache and "
            f"{cache} has {format_size(free)} free; free space "
            "(nox -s gc), set --disk-budget, or run fewer cells (--cells)"
        )
    return estimate


def finish_run(
    run_dir: Path,
    run_id: str,
    results: Sequence[CellResult],
    manifest: RunManifest | None,
    reports: Path | None,
    baseline: Baseline | None = None,
    disk: RunDisk | None = None,
    *,
    interrupted: bool = False,
    config_errors: Sequence[str] = (),
) -> int:
    """Write every report of a run, print the grid (and the diff), return the exit code.

    The code written into results.json is the one the command exits with: 130 for an
    interrupted run, 2 for a configuration error found by the run, else the gate's.
    """
    for result in flag_missing_tests(results):
        result.write(run_dir / "cells" / result.cell_id / "result.json")
    diff = diff_runs(baseline[1], results, name=baseline[0]) if baseline else None
    code = exit_code(results, regressions=len(diff.regressions) if diff else 0)
    if interrupted:
        code = EXIT_INTERRUPTED
    elif config_errors:
        code = EXIT_USAGE
    info = manifest.matrix_info() if manifest else {"name": run_id}
    grid = build_grid(results)
    paths = write_reports(
        run_dir, grid, run_id=run_id, matrix=info, exit_code=code, diff=diff, disk=disk
    )
    print()
    print(render_console(grid, width=console_width()))
    if diff is not None:
        print()
        print(render_diff(diff, limit=DIFF_LINES))
    print()
    if disk is not None:
        for line in disk.lines(sum(_own_bytes(r) for r in results)):
            print(line)
    if reports is not None:
        update_latest(reports, run_dir)
    print(f"reports: {', '.join(str(p) for p in paths.values())}")
    for error in config_errors:
        print(f"compat: error: {error}", file=sys.stderr)
    print(f"exit code {code}", flush=True)
    return code


def _own_bytes(result: CellResult) -> int:
    disk = result.install.disk
    return (disk.own_bytes or 0) if disk else 0


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
    if _holds_run(run_dir):
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
) -> int:
    """``report``: rebuild a kept run's documents, or fold CI shards (``merge``) into ``out``.

    A merge writes only into ``--out``, checked before ``run`` (``reports/latest`` by
    default) is even looked at. The run folder is locked while it is written, so two
    commands at once on one folder both finish.
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
        run_id = loaded.manifest.run_id if loaded.manifest else run_dir.name
        return finish_run(run_dir, run_id, loaded.results, loaded.manifest, None, loaded_baseline)


def _resumed(source: Path | None, cells: Sequence[Cell], run_dir: Path) -> dict[str, CellResult]:
    """With ``--resume [RUN]``: finished cells of that run, copied into this one."""
    if source is None:
        return {}
    loaded = load_run(source)
    wanted = {c.id: c for c in cells}
    kept: dict[str, CellResult] = {}
    for result in loaded.results:
        cell = wanted.get(result.cell_id)
        if cell is None or result.status is CellStatus.NOT_RUN or result.cell != _cell_record(cell):
            continue
        if source != run_dir:
            copy_cell_folder(source / "cells" / result.cell_id, run_dir / "cells" / result.cell_id)
        kept[result.cell_id] = result
    if kept:
        print(f"compat: resuming {len(kept)} finished cell(s) from {source}", flush=True)
    return kept


CACHE_SIZE = ".uv-cache-size.json"  # in the envs root: the last measurement of uv's cache
PIP_CONFIG = ".pip-config.json"  # in the envs root: pip's last answer (see read_pip_config)


def _measure_cache_in_background() -> Callable[..., RunDisk]:
    """The shared uv cache's size for the report. ``du`` of a cache of CUDA builds costs
    seconds of disk reads, beside a cell's tests on a small machine; a warm run builds
    nothing and so reuses the last figure (with its time), and a run that built envs
    measures again at its end. With no figure yet, it is measured while the cells run."""
    stored = envs_root() / CACHE_SIZE
    last = read_json_object(stored)
    found = RunDisk()
    if (
        isinstance(last.get("bytes"), int)
        and isinstance(last.get("measured"), str)
        and last.get("dir") == str(uv_cache_guess())
    ):
        found = RunDisk(str(last["dir"]), last["bytes"], last["measured"])

    def measure() -> None:
        with contextlib.suppress(Exception):
            folder = uv_cache_guess()
            if folder.is_dir():
                size, when = tree_bytes(folder), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                found.uv_cache_dir, found.uv_cache_bytes = str(folder), size
                found.uv_cache_measured = when
                atomic_write_text(
                    stored, json.dumps({"dir": str(folder), "bytes": size, "measured": when})
                )

    worker = threading.Thread(target=measure, daemon=True)
    if found.uv_cache_bytes is None:
        worker.start()

    def result(*, wait: bool = True, again: bool = False) -> RunDisk:
        """What was measured; ``again``: the run built envs, so measure the cache anew."""
        if worker.is_alive():
            worker.join(timeout=60 if wait else 0)  # interrupted: what is known, at once
        if again and wait:
            measure()
        return dataclasses.replace(found)

    return result


def offline_wheelhouse(offline: str | None) -> Path | None:
    if not offline:
        return None
    folder = Path(offline).resolve()
    if not (folder / WHEELHOUSE_MANIFEST).is_file():
        raise UsageError(f"{folder}: not a prefetched wheelhouse (run nox -s prefetch first)")
    return folder
