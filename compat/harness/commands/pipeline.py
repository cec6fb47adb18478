"""A run of cells as a short list of named steps, run in order by one driver.

``matrix``, ``cell``, ``qualify`` and ``report`` (and ``bisect``, with steps of its own)
are each a tuple of steps handed to :func:`execute`, as nox's ``_cli`` runs its
workflow: a step is a small function of the :class:`Run` with one job, and returns
``None`` to go on or an exit code to end there. The order is the contract:

1. :func:`check_options`, :func:`check_folders`: the cheap checks (options, ``--resume``,
   ``--out``), so a mistake is one line and leaves nothing behind;
2. :func:`check_disk`: the disk estimate, which plans every cell, only once those passed;
3. :func:`start`: the run folder and its manifest (a report can always be rebuilt from
   then on), and the cells kept from ``--resume``;
4. :func:`run_cells_step`: the cells themselves;
5. :func:`collect`, :func:`judge`: every cell's result, and the exit code;
6. :func:`write_documents`: the reports, the console, ``latest``, on Ctrl-C or SIGTERM as
   well as on success.

A command adds its own step where it needs one (``qualify`` its verdict after
:func:`judge`, which also hands its documents to the report writers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from compat.harness.cache.reuse import CachePolicy
from compat.harness.cache.store import Store
from compat.harness.commands.options import (
    Baseline,
    RunOptions,
    checked_jobs,
    console_width,
    load_baseline_option,
    offline_wheelhouse,
    writable_folder,
)
from compat.harness.config.matrix import Cell, Matrix, harness_owned
from compat.harness.errors import ConfigError, ResultFileError, UsageError
from compat.harness.execute.cell_runner import RunInterrupted, run_cells
from compat.harness.execute.progress import make_progress
from compat.harness.install.disk_budget import DiskBudget, RunDisk
from compat.harness.install.disk_check import check_disk as estimate_disk
from compat.harness.install.disk_check import measure_cache_in_background
from compat.harness.install.disk_estimate import DiskEstimate, uv_cache_guess
from compat.harness.install.garbage import parse_size
from compat.harness.install.pipconfig import PipIndexConfig, read_pip_config
from compat.harness.install.uv_cli import uv_bin
from compat.harness.locations import envs_root, pip_config_file, verdict_store
from compat.harness.preflight import check_envs_root
from compat.harness.redact import redact
from compat.harness.reports.console import render_console
from compat.harness.reports.context import Writer, envs_footprint
from compat.harness.reports.documents import write_reports
from compat.harness.reports.grid import build_grid
from compat.harness.reports.terminal import is_terminal, use_colour, wrap
from compat.harness.results.baseline import DIFF_LINES, BaselineDiff, diff_runs, render_diff
from compat.harness.results.classify import flag_missing_tests
from compat.harness.results.gate import EXIT_INTERRUPTED, EXIT_USAGE, exit_code
from compat.harness.results.model import CellResult, CellStatus
from compat.harness.results.run_folder import (
    MANIFEST,
    RunManifest,
    cell_dir,
    copy_cell_folder,
    holds_run,
    load_run,
    matrix_sha256,
    new_run_dir,
    read_cell_result,
    result_path,
    update_latest,
)

__all__ = [
    "RUN_STEPS",
    "Run",
    "Step",
    "check_disk",
    "check_folders",
    "check_options",
    "collect",
    "execute",
    "judge",
    "run_cells_step",
    "start",
    "unmatched_expectations",
    "write_documents",
]


class _Undoable(Protocol):
    def undo(self) -> None: ...


def execute(steps: Sequence[Callable[[Any], int | None]], state: _Undoable) -> int:
    """Run ``steps`` in order on ``state``; the first exit code one returns ends the run.

    When a step raises, ``state.undo()`` runs first (it removes what the checks made
    before the run started), so a refused command leaves nothing behind."""
    try:
        for step in steps:
            code = step(state)
            if code is not None:
                return code
    except BaseException:
        state.undo()
        raise
    raise AssertionError("the last step returns the exit code")


@dataclass
class Run:
    """What the steps of one run share: the request first, then what each step found."""

    matrix: Matrix | None  # None: a kept run's report (judge and write_documents only)
    cells: list[Cell]
    options: RunOptions
    name: str = ""  # the folder under reports/ (default: the matrix's name)
    latest: bool = True  # point reports/latest at the run
    headline: Callable[[Run], str] | None = None  # the line naming the run (default: cells)
    interrupted_note: str = "compat: interrupted; finished cells are kept (rerun with --resume)"
    check_expectations: bool = True  # an [[expect]] that matched no test is exit 2
    resumable: bool = True  # the command takes --resume (qualify does not)
    # check_options
    jobs: int = 1
    baseline: Baseline | None = None
    wheelhouse: Path | None = None
    limit: int | None = None  # the disk budget in bytes
    # check_folders
    source: Path | None = None  # the run --resume names
    run_dir: Path | None = None  # --out, or the new folder under reports/
    reports: Path | None = None  # the reports folder when the run makes its own folder
    created: list[Path] = field(default_factory=list)  # folders the checks made, deepest first
    # check_disk
    pip_config: PipIndexConfig | None = None
    estimate: DiskEstimate | None = None
    # start
    started: bool = False
    run_id: str = ""
    manifest: RunManifest | None = None
    measured: Callable[..., RunDisk] | None = None
    reused: dict[str, CellResult] = field(default_factory=dict)
    # run_cells_step
    budget: DiskBudget | None = None
    fresh: list[CellResult] = field(default_factory=list)
    interrupted: bool = False
    # collect, judge
    results: list[CellResult] = field(default_factory=list)
    disk: RunDisk | None = None
    diff: BaselineDiff | None = None
    code: int = 0
    config_errors: list[str] = field(default_factory=list)
    # added by a command's own step (qualify)
    matrix_info: Mapping[str, Any] | None = None
    appendix: tuple[str, str] | None = None  # (markdown, html) on top of the grid
    writers: dict[str, Writer] = field(default_factory=dict)  # documents of its own
    notes: list[str] = field(default_factory=list)  # printed after the grid

    def undo(self) -> None:
        """Before the run started: remove the (empty) folders the checks made."""
        if self.started:
            return
        for folder in self.created:
            with contextlib.suppress(OSError):
                folder.rmdir()

    @property
    def the_matrix(self) -> Matrix:
        assert self.matrix is not None, "a run of cells has its matrix"
        return self.matrix

    @property
    def folder(self) -> Path:
        assert self.run_dir is not None, "the run folder is chosen by check_folders"
        return self.run_dir


# --- 1. the cheap checks ----------------------------------------------------------------


def check_options(run: Run) -> None:
    """Every option's value, before any folder is looked at; the matrix file's warnings
    (an entry that yields no cell) are said first."""
    for warning in run.the_matrix.warnings:
        print(f"compat: warning: {warning}", file=sys.stderr)
    check_envs_root()  # a file, or not writable: exit 2 before anything is created
    options = run.options
    if options.reruns is not None:
        if options.reruns < 0:
            raise UsageError(f"--reruns {options.reruns}: expected a whole number >= 0")
        run.matrix = dataclasses.replace(run.the_matrix, reruns=options.reruns)
    if options.strict:
        run.matrix = dataclasses.replace(run.the_matrix, strict=True)
    if options.pytest_args:
        refused = harness_owned(options.pytest_args)
        if refused:
            raise UsageError(f"--pytest-args: {refused!r} is set by the harness for every cell")
        pytest_args = (*run.the_matrix.pytest_args, *options.pytest_args)
        run.matrix = dataclasses.replace(run.the_matrix, pytest_args=pytest_args)
    run.jobs = checked_jobs(options.jobs)
    if not run.cells:
        raise UsageError(
            f"{'--shard ' + options.shard if options.shard else '--cells'}: "
            "selects no applicable cell of the matrix"
        )
    if not any(c.applicable for c in run.cells):  # a green run of nothing is a trap
        reasons = sorted({str(c.not_applicable) for c in run.cells})
        raise UsageError(
            f"{run.the_matrix.path.name}: none of the {len(run.cells)} cell(s) chosen is "
            f"applicable, nothing would run: {'; '.join(reasons)}"
        )
    run.baseline = load_baseline_option(options.baseline)
    run.wheelhouse = offline_wheelhouse(options.offline)
    budget = options.disk_budget
    run.limit = parse_size(budget, "--disk-budget") if budget else run.the_matrix.disk_budget
    if run.limit is not None and run.limit < 2**20:
        raise UsageError(f"--disk-budget {budget!r}: expected a size such as 30G")


def check_folders(run: Run) -> None:
    """``--resume`` names a run of this matrix file; ``--out`` is a folder that can be
    written and holds no other run (the default, a new folder under ``reports/``)."""
    run.source = resume_source(run.options.resume, run.the_matrix)
    out = run.options.out
    if out:
        run.run_dir = _made_folder(run, out, "--out")
        if holds_run(run.run_dir) and run.run_dir != run.source:
            raise UsageError(
                f"--out {out}: holds a run already; give a new folder"
                + (f" (or --resume {out} to continue that run)" if run.resumable else "")
            )
    else:
        run.reports = _made_folder(run, "reports", "reports folder")


def _made_folder(run: Run, path: str, option: str) -> Path:
    """:func:`writable_folder`, noting the folders it made so that :meth:`Run.undo` can
    remove them if a later check refuses the run."""
    missing = []
    with contextlib.suppress(OSError, RuntimeError):
        folder = Path(path).resolve()
        while not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
    made = writable_folder(path, option)
    run.created += missing
    return made


def resume_source(resume: str | None, matrix: Matrix) -> Path | None:
    """The run ``--resume`` names, which must be a run of the same matrix file: another
    file's cells could match by id and carry results that answer another question."""
    if not resume:
        return None
    source = Path(resume)
    if not source.is_dir():
        raise UsageError(f"--resume {resume}: no such run folder to resume")
    source = source.resolve()
    if not (source / MANIFEST).is_file():
        raise UsageError(f"--resume {resume}: not a run folder (no {MANIFEST})")
    try:
        manifest = RunManifest.read(source)
    except ResultFileError as exc:
        raise UsageError(f"--resume {resume}: {exc}") from None
    assert manifest is not None
    digest = matrix_sha256(matrix)
    if manifest.matrix_sha256 != digest:
        if manifest.matrix_name != matrix.name:
            differs = f"matrix {manifest.matrix_name!r}, not {matrix.name!r}"
        else:
            differs = (
                f"another version of the matrix file (sha256 {manifest.matrix_sha256[:12]} "
                f"then, {digest[:12]} now)"
            )
        raise UsageError(
            f"--resume {resume}: a run of {differs}; only a run of the same matrix file resumes"
        )
    return source


# --- 2. the disk ------------------------------------------------------------------------


def check_disk(run: Run) -> None:
    """The disk the envs to build need, refused when it is not there (install/disk_check).
    An offline run installs from its wheelhouse and downloads nothing."""
    run.pip_config = read_pip_config(remember=pip_config_file(envs_root()))
    if run.wheelhouse is None:
        applicable = [c for c in run.cells if c.applicable]
        run.estimate = estimate_disk(run.the_matrix, applicable, run.pip_config, run.limit)


# --- 3. the run folder ------------------------------------------------------------------


def _cells_headline(run: Run) -> str:
    applicable = sum(c.applicable for c in run.cells)
    return (
        f"compat: {len(run.cells)} cells ({applicable} applicable) from {run.the_matrix.path}, "
        f"{run.jobs} at a time -> {run.folder}"
    )


def start(run: Run) -> None:
    """The run folder and its manifest, then the cells ``--resume`` keeps."""
    if run.run_dir is None:
        assert run.reports is not None
        run.run_id, run.run_dir = new_run_dir(run.reports, run.name or run.the_matrix.name)
    else:
        run.run_id = run.run_dir.name
    run.started = True  # from here on the folder is the run's: an interruption reports it
    run.measured = measure_cache_in_background()
    try:
        run.manifest = RunManifest.for_matrix(
            run.run_id, run.the_matrix, list(run.cells), run.options.shard
        )
        run.manifest.write(run.folder)
        print((run.headline or _cells_headline)(run), flush=True)
        run.reused = _resumed(run.source, run.cells, run.folder)
    except KeyboardInterrupt:
        run.interrupted = True


def _cell_record(cell: Cell) -> Cell:
    """A cell as its result file records it (credentials redacted), to compare on --resume."""
    return Cell.from_dict(json.loads(redact(json.dumps(cell.to_dict()))))


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
            copy_cell_folder(cell_dir(source, result.cell_id), cell_dir(run_dir, result.cell_id))
        kept[result.cell_id] = result
    if kept:
        print(f"compat: resuming {len(kept)} finished cell(s) from {source}", flush=True)
    return kept


# --- 4. the cells -----------------------------------------------------------------------


def run_cells_step(run: Run) -> None:
    """Every cell not kept from ``--resume``, under the disk budget when envs get built.
    Ctrl-C or SIGTERM ends this step with the results so far (RunInterrupted)."""
    if run.interrupted:
        return
    todo = [c for c in run.cells if c.id not in run.reused]
    try:
        progress = make_progress([c.id for c in todo])
        if run.limit is not None or run.estimate is not None:  # envs to build: watch the disk
            run.budget = DiskBudget(
                run.limit,
                cache=uv_cache_guess(),
                envs_root=envs_root(),
                estimate=run.estimate or DiskEstimate(),
                prune=[uv_bin()],
                cells=[c.id for c in todo if c.applicable],
            )
        try:
            run.fresh = run_cells(
                todo,
                run.the_matrix,
                run_dir=run.folder,
                envs_root=envs_root(),
                pip_config=run.pip_config or read_pip_config(),
                jobs=run.jobs,
                progress=progress,
                wheelhouse=run.wheelhouse,
                budget=run.budget,
                cache=cache_policy(run),
            )
        finally:
            progress.close()
    except KeyboardInterrupt as stop:  # RunInterrupted carries the cells' results
        run.interrupted = True
        if isinstance(stop, RunInterrupted):
            run.fresh = stop.results


def cache_policy(run: Run) -> CachePolicy | None:
    """The verdict cache as the matrix (``cache = false``: off) and the options say."""
    if not run.the_matrix.cache:
        return None
    return CachePolicy(
        Store(verdict_store(envs_root())),
        run.run_id,
        lookup=not run.options.no_cache,
        refresh=run.options.refresh,
    )


# --- 5. results and the exit code -------------------------------------------------------


def collect(run: Run) -> None:
    """A result for every cell (one an interruption reached first: not run), and the disk."""
    by_id = {**run.reused, **{r.cell_id: r for r in run.fresh}}
    run.results = [by_id.get(c.id) or _not_started(c, run.folder) for c in run.cells]
    if run.measured is not None:
        run.disk = run.measured(wait=not run.interrupted, again=run.budget is not None)
    if run.budget is not None and run.disk is not None:
        run.disk.budget = run.budget.close()


def _not_started(cell: Cell, run_dir: Path) -> CellResult:
    """A cell an interruption reached before its result came back: the result it wrote, if
    it got that far, else not run."""
    with contextlib.suppress(ResultFileError):
        return read_cell_result(result_path(run_dir, cell.id))
    result = CellResult(
        cell.id,
        cell,
        CellStatus.NOT_RUN,
        gating=cell.gating,
        reason="interrupted before it started",
    )
    result.write(result_path(run_dir, cell.id))
    return result


def judge(run: Run) -> None:
    """The exit code the run ends with (and its results.json records): 130 interrupted, 2
    for a configuration error the run found, else the gate's (with the baseline's diff)."""
    for result in flag_missing_tests(run.results):
        result.write(result_path(run.folder, result.cell_id))
    baseline = run.baseline
    run.diff = diff_runs(baseline[1], run.results, name=baseline[0]) if baseline else None
    run.code = exit_code(run.results, regressions=len(run.diff.regressions) if run.diff else 0)
    if run.check_expectations and not run.interrupted:
        run.config_errors = unmatched_expectations(run.the_matrix, run.results)
    if run.interrupted:
        run.code = EXIT_INTERRUPTED
    elif run.config_errors:
        run.code = EXIT_USAGE


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


# --- 6. the documents -------------------------------------------------------------------


def write_documents(run: Run) -> int:
    """Every report of the run, the grid (and the diff, the notes, the disk) on the
    console, ``reports/latest``; the exit code."""
    info = run.matrix_info
    if info is None:
        info = run.manifest.matrix_info() if run.manifest else {"name": run.run_id}
    grid = build_grid(run.results)
    paths = write_reports(
        run.folder,
        grid,
        run_id=run.run_id,
        matrix=info,
        exit_code=run.code,
        diff=run.diff,
        disk=run.disk,
        appendix=run.appendix,
        writers=run.writers,
    )
    # A terminal gets colour and lines wrapped to its width; a pipe or a log whole lines.
    width = console_width()
    wrap_width = width if is_terminal(sys.stdout) else None
    print()
    print(
        render_console(
            grid,
            width=width,
            detail=run.options.drift_detail,
            colour_on=use_colour(sys.stdout),
            wrap_width=wrap_width,
        )
    )

    def say(text: str) -> None:
        print("\n".join(part for line in text.splitlines() for part in wrap(line, wrap_width)))

    if run.diff is not None:
        print()
        say(render_diff(run.diff, limit=DIFF_LINES))
    for note in run.notes:
        print()
        say(note)
    print()
    if run.disk is not None:
        for line in run.disk.lines(envs_footprint(run.results)):
            say(line)
    if run.reports is not None and run.latest:
        update_latest(run.reports, run.folder)
    print(f"reports: {', '.join(str(p) for p in paths.values())}")
    for error in run.config_errors:
        print(f"compat: error: {error}", file=sys.stderr)
    print(f"exit code {run.code}", flush=True)
    if run.interrupted:
        print(run.interrupted_note, file=sys.stderr)
    return run.code


# The run of ``matrix`` and ``cell``; ``qualify`` inserts its verdict after ``judge``.
Step = Callable[[Run], int | None]
RUN_STEPS: tuple[Step, ...] = (
    check_options,
    check_folders,
    check_disk,
    start,
    run_cells_step,
    collect,
    judge,
    write_documents,
)
