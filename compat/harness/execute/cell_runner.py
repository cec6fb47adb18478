"""Drive cells: build or reuse each env, run the test core in one pytest process, classify.

Every cell is independent and writes only under its own folder, so cells run in
parallel threads (each a child process) and a CI shard's folder merges like a local one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compat.harness.cache import reuse
from compat.harness.cache.reuse import CachePolicy, FilePlan
from compat.harness.config.applicability import checked_rule, not_applicable_reason
from compat.harness.config.matrix import Cell, Matrix
from compat.harness.config.suites import TestFile, test_files
from compat.harness.errors import ErrorKind, InstallError
from compat.harness.execute.progress import Progress
from compat.harness.execute.supervisor import Supervisor, memory_limited
from compat.harness.files import atomic_write_text, read_json_object, redact_file
from compat.harness.install.disk import tree_bytes
from compat.harness.install.disk_budget import DiskBudget
from compat.harness.install.envs import EnvRecord, ensure_env, env_lock
from compat.harness.install.index import Listings
from compat.harness.install.install_plan import InstallPlan, plan_for
from compat.harness.install.pipconfig import PipIndexConfig
from compat.harness.install.resolve import ResolvedCell
from compat.harness.locations import timings_file
from compat.harness.processes import Stopped
from compat.harness.redact import redact
from compat.harness.results import run_folder
from compat.harness.results.classify import Events, SessionEnd, classify, read_events
from compat.harness.results.model import (
    CellResult,
    CellStatus,
    DiskUsage,
    InstallRecord,
    ListedBuild,
    PlanRecord,
    ResolutionRecord,
    TestResult,
    WheelRecord,
)

__all__ = [
    "RunInterrupted",
    "cell_environment",
    "default_jobs",
    "rootdir_of",
    "run_cell",
    "run_cells",
    "scope_of",
]

CELL_INI = Path(__file__).resolve().parents[2] / "cell_pytest.ini"
INTERRUPTED_INSTALLING = "interrupted while installing"  # resolving, locking or building
INTERRUPTED_BEFORE_START = "interrupted before it started"
# Under per-file isolation the runner in the cell keeps the cell's time budget itself and
# ends a file at its own timeout; the harness's kill is the backstop, this much later.
RUNNER_GRACE = 30.0


def default_jobs(memory_per_cell_gb: float = 4.0) -> int:
    """As many cells as cores, but no more than memory allows (torch + a test ~ a few GB)."""
    cores = os.cpu_count() or 1
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        by_memory = max(1, int(pages / 2**30 / memory_per_cell_gb))
    except (ValueError, OSError):
        by_memory = cores
    return max(1, min(cores, by_memory))


BYTECODE_DIR = ".pycache"  # inside the env: compiled once, on first import, never in uv's cache


def cell_environment(
    cell: Cell, extra: Mapping[str, str] | None = None, *, env_dir: Path | None = None
) -> dict[str, str]:
    """The process environment of a cell: isolated from the host's Python settings.

    Bytecode is cached whatever the host says (``PYTHONDONTWRITEBYTECODE`` is dropped):
    without it every run recompiles torch from source, ~7 s per cell. It goes to the env's
    own ``.pycache`` (``PYTHONPYCACHEPREFIX``), never next to the sources, whose files are
    hardlinks into uv's shared cache.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "VIRTUAL_ENV",
            "PYTHONPATH",
            "PYTHONHOME",
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONPYCACHEPREFIX",
        )
    }
    env.update(extra or {})
    env.update(COMPAT_PT2E_STACK=cell.stack, COMPAT_CELL_ID=cell.id, PYTHONNOUSERSITE="1")
    if env_dir is not None:
        env["PYTHONPYCACHEPREFIX"] = str(env_dir / BYTECODE_DIR)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # no env of its own to keep bytecode in
    return env


def _tail(path: Path, limit: int = 3000) -> str | None:
    """The last lines of a log, at most ``limit`` bytes: whole lines only, so the cut never
    leaves ``er:token@host`` behind without the ``https://`` that marks it for redaction."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except OSError:
        return None
    if size > limit and b"\n" in data:
        data = data[data.index(b"\n") + 1 :]
    return redact(data.decode("utf-8", errors="replace")) or None


def _interrupted(
    cell: Cell, cell_dir: Path, reason: str, events: Events | None = None
) -> CellResult:
    """A cell stopped by Ctrl-C: not run, with whatever tests had finished kept."""
    tests = []
    if events is not None:
        _, _, tests = classify(events=events, returncode=0, timed_out=False, expected={})
        tests = [t for t in tests if t.nodeid in events.tests]
    result = CellResult(
        cell.id,
        cell,
        CellStatus.NOT_RUN,
        reason=reason,
        gating=cell.gating,
        tests=tests,
        fingerprint=events.fingerprint if events else {},
    )
    result.write(cell_dir / "result.json")
    return result


_OOM_MARKERS = ("MemoryError", "can't allocate memory", "std::bad_alloc")


def _memory_hint(
    status: CellStatus, reason: str | None, tests: Sequence[TestResult], limit_mb: int | None
) -> str | None:
    """Say "out of memory" when that is what the evidence shows."""
    oom = any(m in (t.message or "") for t in tests for m in _OOM_MARKERS)
    limit = f" (memory limit {limit_mb} MiB)" if limit_mb else ""
    if oom and status in (CellStatus.FAILED, CellStatus.ERROR):
        return f"{reason}; out of memory{limit}"
    if status is CellStatus.CRASHED and reason and "SIGKILL" in reason:
        return f"{reason}; out of memory?{limit}"
    return reason


def rootdir_of(matrix: Matrix) -> Path:
    """The folder node ids are relative to: the nearest common ancestor of the matrix and tests."""
    base = matrix.path.parent
    paths = [str((base / s.path.split("::", 1)[0]).resolve()) for s in matrix.all_suites()]
    return Path(os.path.commonpath([str(base), *paths]))


def run_cell(
    cell: Cell,
    matrix: Matrix,
    *,
    run_dir: Path,
    envs_root: Path,
    pip_config: PipIndexConfig,
    progress: Progress | None = None,
    supervisor: Supervisor | None = None,
    wheelhouse: Path | None = None,
    listings: Listings | None = None,
    budget: DiskBudget | None = None,
    cache: CachePolicy | None = None,
) -> CellResult:
    """Run one cell end to end and write ``cells/<id>/result.json``; never raises for the cell.
    ``cache``: reuse the definitive verdicts of files whose inputs did not change."""
    cell_dir = run_folder.cell_dir(run_dir, cell.id)
    cell_dir.mkdir(parents=True, exist_ok=True)
    say = (lambda text: progress.phase(cell.id, text)) if progress else (lambda text: None)

    supervisor = supervisor or Supervisor()

    def finish(status: CellStatus, reason: str | None, **extra: Any) -> CellResult:
        result = CellResult(cell.id, cell, status, reason, cell.gating, **extra)
        result.write(cell_dir / "result.json")
        return result

    if not cell.applicable:
        return _not_applicable(cell, envs_root, finish)
    scope = scope_of(matrix, cell)
    if not scope.files and scope.out_of_scope:  # every suite is for other cells: no env
        return finish(
            CellStatus.NOT_APPLICABLE,
            "no suite of the matrix is in scope for this cell",
            out_of_scope=list(scope.out_of_scope),
        )

    timings: dict[str, float] = {}
    prepared = _prepare_env(
        cell,
        matrix,
        cell_dir,
        envs_root=envs_root,
        pip_config=pip_config,
        wheelhouse=wheelhouse,
        listings=listings,
        budget=budget,
        supervisor=supervisor,
        timings=timings,
        say=say,
        finish=finish,
    )
    if isinstance(prepared, CellResult):
        return prepared
    plan, record, install = prepared
    return _run_tests(
        cell,
        matrix,
        scope,
        cell_dir=cell_dir,
        env_dir=plan.env_dir,
        python=record.python,
        install=install,
        timings=timings,
        supervisor=supervisor,
        say=say,
        finish=finish,
        cache=cache,
    )


def _prepare_env(
    cell: Cell,
    matrix: Matrix,
    cell_dir: Path,
    *,
    envs_root: Path,
    pip_config: PipIndexConfig,
    wheelhouse: Path | None,
    listings: Listings | None,
    budget: DiskBudget | None,
    supervisor: Supervisor,
    timings: dict[str, float],
    say: Callable[[str], None],
    finish: Callable[..., CellResult],
) -> tuple[InstallPlan, EnvRecord, InstallRecord] | CellResult:
    """Resolve the cell, then build or reuse its env: the plan, the env and the record of
    both; or the cell's result when it ends here (install failed, not applicable once
    resolved, interrupted). Every install error ends in the one ``except`` below."""
    started = time.monotonic()
    install = InstallRecord()
    if matrix.channel(cell.channel).is_nightly and not cell.url:
        say(f"resolving nightly {cell.torch}")
    try:
        resolved, plan = plan_for(
            cell,
            matrix,
            envs_root=envs_root,
            pip_config=pip_config,
            wheelhouse=wheelhouse,
            listings=listings,
        )
        # A nightly or "latest" resolves to a build the rules may rule out after all.
        if resolved.torch != cell.torch:
            say(
                f"resolved {cell.torch} to torch {resolved.torch}"
                + (f", torchao {resolved.torchao}" if resolved.torchao else "")
            )
            late = not_applicable_reason(
                python=cell.python,
                torch=resolved.torch,
                stack=cell.stack,
                declared=cell.declared,
                torchao=resolved.torchao,
            )
            if late:
                reason = f"{late} (resolved to torch {resolved.torch})"
                return finish(CellStatus.NOT_APPLICABLE, reason)
        install = InstallRecord(plan=plan_record(plan), resolution=resolution_record(resolved))
        with env_lock(plan.env_dir, exclusive=True):
            say("preparing environment")
            if budget is not None:
                budget.before_build(plan)
            try:
                record = ensure_env(
                    plan, log=cell_dir / "install.log", timeout=matrix.install_timeout
                )
            finally:
                if budget is not None:
                    budget.after_build(plan)
    except Stopped:
        return _interrupted(cell, cell_dir, INTERRUPTED_INSTALLING)
    except InstallError as exc:
        timings["install"] = round(time.monotonic() - started, 3)
        if supervisor.interrupted.is_set():  # the error is the interruption's doing
            return _interrupted(cell, cell_dir, INTERRUPTED_INSTALLING)
        skip = exc.kind is ErrorKind.NO_INTERPRETER and matrix.skip_missing_interpreters
        install.error_kind = exc.kind
        return finish(
            CellStatus.SKIPPED if skip else CellStatus.INSTALL_FAILED,
            f"{exc.kind}: {exc.message}",
            install=install,
            timings=timings,
            log_excerpt=exc.log or _tail(cell_dir / "install.log"),
        )
    record_env(install, record)
    for name, listed in resolved.nightly.items():
        wheel = (install.wheels or {}).get(name)
        if wheel is not None and not listed.sha256 and wheel.sha256_source is None:
            wheel.sha256_source = "computed (the index listing gives none)"
    timings["install"] = round(time.monotonic() - started, 3)
    say("reused environment" if record.reused else f"installed in {record.seconds:.1f}s")
    return plan, record, install


@dataclass(frozen=True)
class Scope:
    """The test files a cell runs, and those of suites written for other cells."""

    files: tuple[TestFile, ...]
    out_of_scope: tuple[str, ...]  # file node ids


def scope_of(matrix: Matrix, cell: Cell) -> Scope:
    """A file a ``[[suite]]`` names is that suite's, even inside a ``tests`` folder: it runs
    only where one of its suites is in scope (``tests = ["tests/core"]`` beside a suite
    for ``tests/core/test_numeric_debugger.py`` runs that file only where the suite
    applies, without listing the folder's other files one by one)."""
    base, root = matrix.path.parent, rootdir_of(matrix)
    inside, outside = matrix.scope(cell)

    def nodeids(paths: Sequence[str]) -> set[str]:
        return {f.nodeid for f in test_files(paths, base=base, rootdir=root)}

    claimed = nodeids([s.path for s in matrix.suites])
    own = nodeids([s.path for s in matrix.suites if s.in_scope(cell)])
    files = [
        f
        for f in test_files(inside, base=base, rootdir=root)
        if f.nodeid not in claimed or f.nodeid in own
    ]
    names = {f.nodeid for f in files}
    other = [f.nodeid for f in test_files(outside, base=base, rootdir=root)]
    return Scope(tuple(files), tuple(n for n in dict.fromkeys(other) if n not in names))


def _run_tests(
    cell: Cell,
    matrix: Matrix,
    scope: Scope,
    *,
    cell_dir: Path,
    env_dir: Path,
    python: Path,
    install: InstallRecord,
    timings: dict[str, float],
    supervisor: Supervisor,
    say: Callable[[str], None],
    finish: Callable[..., CellResult],
    cache: CachePolicy | None = None,
) -> CellResult:
    """The cell's tests in its env (one process per file, or one pytest), then the verdict.
    The files the verdict cache answers are not run; when it answers them all, the cell's
    Python does not even start."""
    events_path = cell_dir / "events.jsonl"
    events_path.unlink(missing_ok=True)
    (cell_dir / "junit.xml").unlink(missing_ok=True)
    if supervisor.interrupted.is_set():
        return _interrupted(cell, cell_dir, "interrupted before its tests started")
    plans: list[FilePlan] = []
    if cache is not None:
        plans = reuse.plan_cell(
            cache,
            matrix,
            cell,
            scope.files,
            env_dir,
            base=matrix.path.parent,
            rootdir=rootdir_of(matrix),
        )
    hits = [p for p in plans if p.entry is not None]
    hit_files = {p.test.nodeid for p in hits}
    to_run = [f for f in scope.files if f.nodeid not in hit_files]
    cmd: list[str] = []
    raw: dict[str, list[dict[str, Any]]] = {}
    fingerprint: dict[str, Any] = {}
    if to_run or not hits:
        cmd = _test_command(python, matrix, cell, cell_dir, events_path, to_run)
        timeout = matrix.timeout + (RUNNER_GRACE if matrix.isolation == "file" else 0.0)
        say(f"testing ({len(hits)} file(s) cached)" if hits else "testing")
        started = time.monotonic()
        try:
            with env_lock(env_dir, exclusive=False):
                returncode, timed_out = supervisor.run(
                    memory_limited(cmd, matrix.memory_limit_mb),
                    env=cell_environment(cell, matrix.env, env_dir=env_dir),
                    log=cell_dir / "pytest.log",
                    timeout=timeout,
                    cwd=matrix.path.parent,
                )
        except Stopped:
            returncode, timed_out = None, False
        timings["tests"] = round(time.monotonic() - started, 3)
        # pytest's own files, and any JUnit part a dead file runner left unmerged
        for written in ("pytest.log", "junit.xml", "events.jsonl", *_junit_parts(cell_dir)):
            redact_file(cell_dir / written)
        if cache is not None:
            raw, fingerprint = reuse.read_raw(events_path)
        if hits:
            reuse.replay(events_path, hits, alone=False)
    else:  # every file answered by the cache: nothing to start
        say("every file cached")
        returncode, timed_out = 0, False
        timings["tests"] = 0.0
        reuse.replay(events_path, hits, alone=True)
    events = read_events(events_path)
    if not supervisor.interrupted.is_set():  # a stopped run starts no more processes
        _count_bytecode(install, env_dir / BYTECODE_DIR)
    if supervisor.interrupted.is_set() and not timed_out:
        return _interrupted(cell, cell_dir, "interrupted while testing", events)
    expected = matrix.expectations_met(
        cell,
        [*events.tests, *events.started, *(str(c.get("nodeid")) for c in events.collect_errors)],
    )
    status, reason, tests = classify(
        events=events,
        returncode=returncode,
        timed_out=timed_out,
        expected=expected,
        strict=matrix.strict,
        local_names=_local_names(matrix, scope),
    )
    reason = _memory_hint(status, reason, tests, matrix.memory_limit_mb)
    if cache is not None:
        reuse.mark_cached(tests, plans)
        reuse.add_cached_junit(cell_dir / "junit.xml", tests, f"{cell.id} (cached)")
        if not timed_out and returncode is not None and returncode >= 0 and to_run:
            reuse.store_verdicts(
                cache,
                cell,
                plans,
                raw,
                fingerprint,
                tests,
                per_file=matrix.isolation == "file",
            )
    session = events.finish or SessionEnd()
    failing = next((t.nodeid for t in tests if t.outcome.unexpected), None)
    return finish(
        status,
        reason,
        tests=tests,
        fingerprint=events.fingerprint,
        routes=dict(session.routes),
        warnings=list(session.warnings),
        adaptations=dict(session.adaptations),
        install=install,
        timings=timings,
        command=[redact(c) for c in cmd],
        returncode=returncode,
        log_excerpt=None if status is CellStatus.PASSED else _tail(cell_dir / "pytest.log"),
        isolation=matrix.isolation,
        files=[f.nodeid for f in scope.files],
        out_of_scope=list(scope.out_of_scope),
        file_runs=[_file_run(r) for r in events.file_exits.values()],
        pytest_args=list(matrix.pytest_args),
        rerun_command=None
        if failing is None
        else rerun_command(matrix, cell, env_dir, python, failing),
        cache=reuse.cache_record(plans) if cache is not None else {},
    )


def _junit_parts(cell_dir: Path) -> list[str]:
    folder = cell_dir / "junit"
    return [f"junit/{p.name}" for p in folder.glob("*.xml")] if folder.is_dir() else []


def _file_run(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "nodeid",
        "returncode",
        "signal",
        "timed_out",
        "seconds",
        "not_run",
        "orphans_killed",
        "cached",  # replayed from the verdict cache: the run it comes from
    )
    return {k: record[k] for k in keys if record.get(k) is not None}


def _local_names(matrix: Matrix, scope: Scope) -> set[str]:
    """Top-level module names the user's tree provides (a failed import of one is the user's
    code failing, not a dependency to add): beside the matrix, the rootdir and each file."""
    root = rootdir_of(matrix)
    folders = {matrix.path.parent, root, *((root / f.nodeid).parent for f in scope.files)}
    names: set[str] = set()
    for folder in folders:
        with contextlib.suppress(OSError):
            for entry in folder.iterdir():
                if entry.suffix == ".py":
                    names.add(entry.stem)
                elif entry.is_dir() and not entry.name.startswith("."):
                    names.add(entry.name)
    return names


def rerun_command(matrix: Matrix, cell: Cell, env_dir: Path, python: Path, nodeid: str) -> str:
    """One copy-paste shell line that reruns ``nodeid`` alone in this cell's env, with the
    cell's environment variables and the pytest settings the cell ran under."""
    base, root = matrix.path.parent, rootdir_of(matrix)
    file, _, rest = nodeid.partition("::")
    arg = os.path.relpath(root / file, base) + (f"::{rest}" if rest else "")
    env = cell_environment(cell, matrix.env, env_dir=env_dir)
    shown = {
        k: env[k]
        for k in (
            *matrix.env,
            "COMPAT_PT2E_STACK",
            "COMPAT_CELL_ID",
            "PYTHONNOUSERSITE",
            "PYTHONPYCACHEPREFIX",
        )
        if k in env
    }
    argv = [
        str(python),
        "-m",
        "pytest",
        "-c",
        str(CELL_INI),
        "--rootdir",
        str(root),
        *matrix.pytest_args,
        arg,
    ]
    assignments = [f"{k}={shlex.quote(v)}" for k, v in shown.items()]
    return redact(f"cd {shlex.quote(str(base))} && env {' '.join(assignments)} {shlex.join(argv)}")


def plan_record(plan: InstallPlan) -> PlanRecord:
    """The plan as the result records it (what the env's stamp records of it, too)."""
    return PlanRecord(
        cell_id=plan.cell_id,
        python=plan.python,
        requirements=list(plan.requirements),
        index_args=list(plan.index_args),
        env_dir=str(plan.env_dir),
        source_args=list(plan.source_args),
        deps_cutoff=plan.deps_cutoff,
        cutoff_args=list(plan.cutoff_args),
        key=plan.key,
        project_digest=plan.project_digest,
    )


def resolution_record(resolved: ResolvedCell) -> ResolutionRecord:
    """What the request resolved to, with the nightly builds the listing named."""
    listing = {
        project: ListedBuild(build.version, build.filename, build.url, build.sha256, build.note)
        for project, build in resolved.nightly.items()
    }
    return ResolutionRecord(resolved.torch, resolved.torchao, list(resolved.notes), listing)


def record_env(install: InstallRecord, env: EnvRecord) -> None:
    """The env the cell ran in, built or reused, into the result's install record."""
    install.python = str(env.python)
    install.reused = env.reused
    install.seconds = round(env.seconds, 3)
    install.key = env.key
    install.freeze = list(env.freeze)
    install.uv_version = env.uv_version
    install.interpreter = env.interpreter
    install.wheels = {
        name: WheelRecord(w.version, w.file, w.sha256, w.url, w.index, w.size, w.sha256_source)
        for name, w in env.wheels.items()
    }
    install.disk = DiskUsage(env.disk.apparent, env.disk.own) if env.disk else DiskUsage()


def _count_bytecode(install: InstallRecord, pycache: Path) -> None:
    """The env's own disk includes the bytecode its runs compiled (measured after them)."""
    disk = install.disk
    if disk is None or not pycache.is_dir():
        return
    compiled = tree_bytes(pycache)
    disk.bytecode_bytes = compiled
    disk.own_bytes = (disk.own_bytes or 0) + compiled


def _not_applicable(cell: Cell, envs_root: Path, finish: Callable[..., CellResult]) -> CellResult:
    """A cell the rules rule out, with the evidence; an installed env that contradicts the
    rule turns it into an error, so a wrong rule is caught instead of trusted."""
    found = checked_rule(
        python=cell.python,
        torch=cell.torch,
        stack=cell.stack,
        torchao=cell.torchao,
        declared=cell.declared,
        envs_root=envs_root,
    )
    if found is None:  # the matrix was planned by other rules (an older result folder)
        return finish(CellStatus.NOT_APPLICABLE, cell.not_applicable)
    if found.contradicted:
        return finish(
            CellStatus.ERROR,
            f"applicability rule contradicted by an installed env: "
            f"{found.rule}; {found.check_detail}",
            applicability=found,
        )
    return finish(CellStatus.NOT_APPLICABLE, found.rule, applicability=found)


def _common_args(matrix: Matrix, cell: Cell) -> list[str]:
    """What every pytest of the cell is given: the cell's own ini and rootdir (the user's
    pytest configuration never decides what runs), the plugin, collection past a broken
    file, the reruns, and the user's own options last."""
    args = [
        "-c",
        str(CELL_INI),
        "--rootdir",
        str(rootdir_of(matrix)),
        "-p",
        "compat.pytest_plugin",
        "-o",
        f"junit_suite_name={cell.id}",
        "--continue-on-collection-errors",
    ]
    if matrix.select:
        args += ["-k", matrix.select]
    if matrix.reruns:
        args += ["--reruns", str(matrix.reruns)]  # pytest-rerunfailures, in cell_deps
        for expectation in matrix.expectations:
            if expectation.where.matches(cell):
                args += ["--compat-no-rerun", expectation.test]
    return [*args, *matrix.pytest_args]


def _test_command(
    python: Path,
    matrix: Matrix,
    cell: Cell,
    cell_dir: Path,
    events: Path,
    files: Sequence[TestFile],
) -> list[str]:
    """``isolation = "file"``: the cell's file runner (torch imported once, a process per
    file); ``"cell"``: one pytest over every file, as before."""
    common = _common_args(matrix, cell)
    if matrix.isolation == "cell":
        paths = [a for f in files for a in f.args]
        return [
            str(python),
            "-m",
            "pytest",
            *paths,
            *common,
            "--compat-events",
            str(events),
            "--junitxml",
            str(cell_dir / "junit.xml"),
        ]
    spec = {
        "files": [f.to_dict() for f in files],
        "events": str(events),
        "junit": str(cell_dir / "junit.xml"),
        "junit_dir": str(cell_dir / "junit"),
        "file_timeout": matrix.file_timeout or matrix.timeout,
        "budget": matrix.timeout,
        "preload": list(matrix.preload),
    }
    spec_path = cell_dir / "files.json"
    atomic_write_text(spec_path, json.dumps(spec, indent=1))
    return [str(python), "-m", "compat.file_runner", str(spec_path), "--", *common]


_TIMINGS_LOCK = threading.Lock()


def _remember_timing(envs_root: Path, cell_id: str, seconds: float) -> None:
    with _TIMINGS_LOCK:
        data = read_json_object(timings_file(envs_root))
        data[cell_id] = round(seconds, 2)
        with contextlib.suppress(OSError):
            atomic_write_text(timings_file(envs_root), json.dumps(data, indent=1, sort_keys=True))


def run_cells(
    cells: Sequence[Cell],
    matrix: Matrix,
    *,
    run_dir: Path,
    envs_root: Path,
    pip_config: PipIndexConfig,
    jobs: int,
    progress: Progress | None = None,
    wheelhouse: Path | None = None,
    budget: DiskBudget | None = None,
    cache: CachePolicy | None = None,
) -> list[CellResult]:
    """Run cells ``jobs`` at a time; results come back in matrix order.

    Longest first, by the last run's timings; under a disk ``budget``, the cells of one
    torch build together (so its wheels can be freed once they are done).

    On Ctrl-C every running cell is stopped and reported as not run (finished tests
    kept); :class:`RunInterrupted` then carries all results for a partial report.
    """
    progress = progress or Progress(len(cells))
    supervisor = Supervisor()  # the run's: Ctrl-C stops every cell's processes through it
    listings = Listings()  # one reading of each index page per run

    def one(cell: Cell) -> CellResult:
        if supervisor.interrupted.is_set():
            result = _interrupted(
                cell, run_folder.cell_dir(run_dir, cell.id), INTERRUPTED_BEFORE_START
            )
            progress.finished(result)
            return result
        try:
            result = run_cell(
                cell,
                matrix,
                run_dir=run_dir,
                envs_root=envs_root,
                pip_config=pip_config,
                progress=progress,
                supervisor=supervisor,
                wheelhouse=wheelhouse,
                listings=listings,
                budget=budget,
                cache=cache,
            )
        except Exception as exc:  # noqa: BLE001 - one broken cell never takes the run down
            # A stop, or a fault of the machine (a full disk, a read-only or missing folder:
            # any OSError) is no verdict on the cell: it is *not run* (infrastructure, exit 3;
            # --resume runs it again), its reason "harness fault: ..." naming the path. Only
            # a bug of the harness is an error. The result is written if the disk lets it;
            # if not, the run's report still has it, and a later report says "no result".
            if supervisor.interrupted.is_set():
                status, reason = CellStatus.NOT_RUN, "interrupted while installing"
            elif isinstance(exc, OSError):
                status, reason = CellStatus.NOT_RUN, f"harness fault: {type(exc).__name__}: {exc}"
            else:
                status, reason = CellStatus.ERROR, f"harness error: {type(exc).__name__}: {exc}"
            result = CellResult(
                cell.id,
                cell,
                status,
                gating=cell.gating,
                reason=reason,
                log_excerpt=redact(traceback.format_exc())[-3000:],
            )
            with contextlib.suppress(OSError):
                result.write(run_folder.result_path(run_dir, cell.id))
        progress.finished(result)
        return result

    last = read_json_object(timings_file(envs_root))

    def timed(cell: Cell) -> CellResult:
        try:
            result = one(cell)
        finally:
            if budget is not None:
                budget.finished(cell.id)
        seconds = sum(result.timings.values())
        cached = bool(result.cache.get("cached_files"))  # not what running it all costs
        if (
            result.status not in (CellStatus.NOT_APPLICABLE, CellStatus.NOT_RUN)
            and seconds
            and not cached
        ):
            _remember_timing(envs_root, cell.id, seconds)
        return result

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="cell")
    order = run_order(cells, last, by_build=budget is not None)
    submitted = {i: pool.submit(timed, cells[i]) for i in order}
    futures = [submitted[i] for i in range(len(cells))]
    try:
        results = [future.result() for future in futures]
    except KeyboardInterrupt:
        supervisor.interrupt()
        results = [future.result() for future in futures]
        raise RunInterrupted(results) from None
    finally:
        pool.shutdown(wait=True)
    return results


def run_order(
    cells: Sequence[Cell], last: Mapping[str, Any], *, by_build: bool = False
) -> list[int]:
    """Indexes of ``cells`` in the order to start them.

    Longest first (by the last run's timings; unknown cells count as long), so a slow cell
    such as torch 2.2.2 never finishes alone at the end of a parallel run. ``by_build``:
    the cells sharing a torch build (Python, torch, channel, URL) run one after another,
    the builds longest first, so a disk budget can free a build once its cells are done.
    """

    def seconds(i: int) -> float:
        value = last.get(cells[i].id, 1e9)
        return float(value) if isinstance(value, (int, float)) else 1e9

    longest = sorted(range(len(cells)), key=lambda i: -seconds(i))
    if not by_build:
        return longest
    groups: dict[tuple[str, str, str, str | None], list[int]] = {}
    for i in longest:  # a group's place is that of its longest cell
        cell = cells[i]
        groups.setdefault((cell.python, cell.torch, cell.channel, cell.url), []).append(i)
    return [i for group in groups.values() for i in group]


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``results`` holds every cell, the stopped ones as not run."""

    def __init__(self, results: list[CellResult]) -> None:
        super().__init__("interrupted")
        self.results = results
