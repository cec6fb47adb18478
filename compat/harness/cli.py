"""Command line of the harness; the nox sessions are thin wrappers around these commands.

``python -m compat matrix|cell|report|list`` works without nox as well, which is how
the sessions stay testable and how a CI job without nox can call the same code.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from compat.harness.applicability import STACKS
from compat.harness.baseline import diff_runs, load_baseline, render_diff
from compat.harness.bisect_run import BisectRequest, bisect, matrix_candidates, render_bisect
from compat.harness.disk import tree_bytes, uv_cache_dir
from compat.harness.envs import uv_bin
from compat.harness.errors import UsageError
from compat.harness.gate import (
    EXIT_INFRA,
    EXIT_INTERRUPTED,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    exit_code,
)
from compat.harness.gc import collect, parse_size
from compat.harness.history import collect_history, render_history
from compat.harness.matrix import Cell, Matrix, load_matrix
from compat.harness.merge import merge_runs, shard_of
from compat.harness.pipconfig import read_pip_config
from compat.harness.prefetch import MANIFEST, prefetch
from compat.harness.probe import probe_cells, render_probe
from compat.harness.progress import make_progress
from compat.harness.publish import write_reports
from compat.harness.report import render_console
from compat.harness.results import CellResult, CellStatus
from compat.harness.run import RunInterrupted, default_jobs, run_cells
from compat.harness.runs import RunManifest, load_run, new_run_dir, update_latest

__all__ = ["main"]

DEFAULT_MATRIX = "matrix.toml"


def envs_root() -> Path:
    """Where cell environments live: ``$COMPAT_ENVS_DIR`` or ``.envs`` in the working dir."""
    return Path(os.environ.get("COMPAT_ENVS_DIR") or ".envs").resolve()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="compat", description="torch compatibility matrix")
    sub = parser.add_subparsers(dest="command", required=True)
    with_matrix = argparse.ArgumentParser(add_help=False)
    with_matrix.add_argument("--matrix", default=DEFAULT_MATRIX, help="matrix file (matrix.toml)")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[with_matrix], help=text)

    def add_run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", default=None,
                       help="run folder (default reports/<run-id>, with reports/latest)")
        p.add_argument("-j", "--jobs", type=int, default=None,
                       help="cells at once (default: what cores and memory allow)")
        p.add_argument("--baseline", default=None,
                       help="a previous results.json: name regressions and fixes, gate on them")
        p.add_argument("--offline", nargs="?", const="wheelhouse", default=None,
                       metavar="WHEELHOUSE",
                       help="build envs only from a prefetched wheelhouse (default ./wheelhouse)")
        p.add_argument("--reruns", type=int, default=None, metavar="N",
                       help="rerun a failed test up to N times (overrides the matrix's "
                            "`reruns`); a later pass is reported as flaky")

    p_matrix = command("matrix", "run every cell, then report")
    add_run_options(p_matrix)
    p_matrix.add_argument("--cells", nargs="+", default=None,
                          help="only these cells: ids or globs ('torch2.8*', '*py3.12')")
    p_matrix.add_argument("--shard", default=None, help="only shard I/N of the cells")
    p_matrix.add_argument("--resume", nargs="?", const="reports/latest", default=None,
                          help="keep the finished cells of a run (default reports/latest)")

    p_cell = command("cell", "run one cell")
    add_run_options(p_cell)
    p_cell.add_argument("cell_id")

    p_report = sub.add_parser("report", help="rebuild the report of a run from its cell folders")
    p_report.add_argument("run", nargs="?", default="reports/latest", help="run folder")
    p_report.add_argument("--baseline", default=None, help="a previous results.json")
    p_report.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                          help="fold the run folders under these DIRs (CI shards) into one run")
    p_report.add_argument("--out", default=None, help="merged run folder (default: RUN)")

    p_plan = command("plan", "the cells as a CI matrix (GitHub Actions JSON)")
    p_plan.add_argument("--shard", default=None, help="only shard I/N")
    p_plan.add_argument("--ids", action="store_true", help="cell ids, one per line")

    p_probe = command("probe", "capability grid of every cell, no tests")
    add_run_options(p_probe)

    p_prefetch = command("prefetch", "download every cell's wheels, with hashes")
    p_prefetch.add_argument("--wheelhouse", default="wheelhouse")

    p_bisect = command("bisect", "first bad torch release or nightly for a test (--good "
                                 "newer than --bad: the first good one, the fix)")
    p_bisect.add_argument("test", help="test name or node id")
    p_bisect.add_argument("--good", required=True, help="a version (or date on a nightly channel)")
    p_bisect.add_argument("--bad", required=True, help="a version (or date on a nightly channel)")
    p_bisect.add_argument("--stack", choices=STACKS, default="torch.ao")
    p_bisect.add_argument("--torchao", default=None, help="torchao version for --stack torchao")
    p_bisect.add_argument("--python", default=None, help="CPython (default: the matrix's first)")
    p_bisect.add_argument("--channel", default="release", help="a channel of the matrix")
    p_bisect.add_argument("--versions", choices=("index", "matrix"), default="index",
                          help="candidates: every release on the index (default), or only the "
                               "torch versions the matrix declares (envs usually built)")
    p_bisect.add_argument("--out", default=None, help="default reports/bisect/<key>")

    p_gc = command("gc", "remove envs not in the matrix; trim the uv cache")
    p_gc.add_argument("--cache-budget", default=None, help="e.g. 40G: prune the uv cache above it")
    p_gc.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")

    p_history = sub.add_parser("history", help="a test (or every cell) across the kept runs, "
                                                "and between which runs it broke or was fixed")
    p_history.add_argument("test", nargs="?", default=None, help="test name or node id")
    p_history.add_argument("--reports", default="reports", help="folder of kept runs")
    p_history.add_argument("--matrix-name", default=None,
                           help="runs of this matrix (default: the newest run's)")
    p_history.add_argument("--cells", nargs="+", default=(), help="ids or globs")

    p_list = command("list", "list the matrix's cells")
    p_list.add_argument("--json", action="store_true", help="as JSON")
    return parser


def _run(matrix: Matrix, cells: list[Cell], args: argparse.Namespace) -> int:
    baseline = _baseline(args)
    if args.reruns is not None:
        if args.reruns < 0:
            raise UsageError(f"--reruns {args.reruns}: expected a whole number >= 0")
        matrix = dataclasses.replace(matrix, reruns=args.reruns)
    if args.out:
        run_dir = Path(args.out).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        run_id, reports = run_dir.name, None
    else:
        reports = Path("reports").resolve()
        run_id, run_dir = new_run_dir(reports, matrix.name)
    RunManifest.for_matrix(run_id, matrix, cells, getattr(args, "shard", None)).write(run_dir)
    jobs = args.jobs if args.jobs and args.jobs > 0 else default_jobs()
    applicable = sum(c.applicable for c in cells)
    print(f"compat: {len(cells)} cells ({applicable} applicable) from {matrix.path}, "
          f"{jobs} at a time -> {run_dir}", flush=True)
    reused = _resumed(args, cells, run_dir)
    cache_size = _measure_cache_in_background()
    todo = [c for c in cells if c.id not in reused]
    try:
        progress = make_progress([c.id for c in todo])
        try:
            fresh = run_cells(todo, matrix, run_dir=run_dir, envs_root=envs_root(),
                              pip_config=read_pip_config(), jobs=jobs, progress=progress,
                              wheelhouse=_wheelhouse(args))
        finally:
            progress.close()
    except RunInterrupted as stop:
        by_id = {**reused, **{r.cell_id: r for r in stop.results}}
        _finish(run_dir, run_id, [by_id[c.id] for c in cells], RunManifest.read(run_dir),
                reports, baseline, cache_size())
        print("compat: interrupted; finished cells are kept (rerun with --resume)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    by_id = {**reused, **{r.cell_id: r for r in fresh}}
    results = [by_id[c.id] for c in cells]
    return _finish(run_dir, run_id, results, RunManifest.read(run_dir), reports, baseline,
                   cache_size())


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


def _wheelhouse(args: argparse.Namespace) -> Path | None:
    if not getattr(args, "offline", None):
        return None
    folder = Path(args.offline).resolve()
    if not (folder / MANIFEST).is_file():
        raise UsageError(f"{folder}: not a prefetched wheelhouse (run nox -s prefetch first)")
    return folder


def _prefetch(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    manifest = prefetch(matrix, wheelhouse=Path(args.wheelhouse).resolve(),
                        envs_root=envs_root(), pip_config=read_pip_config())
    failed = {k: v["error"] for k, v in manifest["cells"].items() if "error" in v}
    total = sum(f["size"] for f in manifest["files"].values())
    print(f"prefetch: {len(manifest['files'])} wheels, {total / 2**30:.2f} GiB in "
          f"{args.wheelhouse}; {len(failed)} cell(s) failed")
    for cell_id, error in failed.items():
        print(f"  {cell_id}: {error}")
    return EXIT_INFRA if failed else 0


def _bisect(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    if args.channel not in matrix.channels:
        raise UsageError(f"--channel {args.channel!r} is not a channel of {matrix.path}")
    python = args.python or next(iter(c.python for c in matrix.cells))
    request = BisectRequest(args.test, args.good, args.bad, args.stack, python, args.channel,
                            args.torchao)
    out = Path(args.out or f"reports/bisect/{request.key}").resolve()
    try:
        candidates = matrix_candidates(request, matrix) if args.versions == "matrix" else None
        record = bisect(request, matrix, out=out, envs_root=envs_root(),
                        pip_config=read_pip_config(), candidates=candidates)
    except KeyboardInterrupt:
        print(f"compat: interrupted; verdicts so far are in {out / 'bisect.json'} "
              "(rerun the same command to resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(render_bisect(record))
    return 0 if record["endpoints_hold"] else EXIT_UNEXPECTED


def _gc(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    budget = parse_size(args.cache_budget) if args.cache_budget else None
    report = collect(matrix, envs_root(), cache_budget=budget, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"gc: {verb} {len(report.removed)} env(s) not in {matrix.path.name}, "
          f"{report.freed_bytes / 2**20:.0f} MiB of their own files")
    for name in report.removed:
        print(f"  {name}")
    if report.cache_before is not None:
        print(f"gc: uv cache {report.cache_before / 2**30:.1f} GiB -> "
              f"{(report.cache_after or 0) / 2**30:.1f} GiB")
    for note in report.notes:
        print(f"gc: {note}")
    return 0


def _resumed(args: argparse.Namespace, cells: Sequence[Cell], run_dir: Path
             ) -> dict[str, CellResult]:
    """With ``--resume [RUN]``: finished cells of that run, copied into this one."""
    if not getattr(args, "resume", None):
        return {}
    source = Path(args.resume).resolve()
    if not source.is_dir():
        raise UsageError(f"{args.resume}: no such run folder to resume")
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


def _baseline(args: argparse.Namespace) -> tuple[str, dict[str, Any]] | None:
    if not getattr(args, "baseline", None):
        return None
    return str(args.baseline), load_baseline(args.baseline)


def console_width() -> int:
    """The terminal's width, ``$COLUMNS``, or 200 for a CI log (wide, yet one screen)."""
    return max(80, shutil.get_terminal_size((200, 24)).columns)


def _finish(run_dir: Path, run_id: str, results: Sequence[CellResult],
            manifest: RunManifest | None, reports: Path | None,
            baseline: tuple[str, dict[str, Any]] | None = None,
            disk: dict[str, Any] | None = None) -> int:
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


def _report(args: argparse.Namespace) -> int:
    baseline = _baseline(args)
    if args.merge:
        run_dir = Path(args.out or args.run).resolve()
        if run_dir.is_symlink() or run_dir.name == "latest":
            raise UsageError("--merge needs --out DIR for the merged run")
        loaded = merge_runs([Path(d) for d in args.merge], run_dir)
    else:
        run_dir = Path(args.run)
        if not run_dir.is_dir():
            raise UsageError(f"{run_dir}: no such run folder")
        run_dir = run_dir.resolve()
        loaded = load_run(run_dir)
    for problem in loaded.problems:
        print(f"compat: skipped {problem}", file=sys.stderr)
    if not loaded.results:
        raise UsageError(f"{run_dir}: no cell results to report")
    run_id = loaded.manifest.run_id if loaded.manifest else run_dir.name
    return _finish(run_dir, run_id, loaded.results, loaded.manifest, None, baseline)


def _plan(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    cells = [c for c in matrix.cells if c.applicable]
    if args.shard:
        cells = [cells[k] for k in shard_of(cells, args.shard)]
    if args.ids:
        print("\n".join(c.id for c in cells))
        return 0
    include = [{"cell": c.id, "session": f"cell({c.id})", "python": c.python, "torch": c.torch,
                "stack": c.stack, "torchao": c.torchao or "", "channel": c.channel,
                "gating": c.gating} for c in cells]
    print(json.dumps({"include": include}))
    return 0


def _probe(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    cells = list(matrix.cells)
    jobs = args.jobs if args.jobs and args.jobs > 0 else default_jobs()
    log_dir = Path(args.out or "reports/probe").resolve()
    found = probe_cells(cells, matrix, envs_root=envs_root(), pip_config=read_pip_config(),
                        log_dir=log_dir, jobs=jobs)
    print(render_probe(cells, found, width=console_width()))
    return 0


def _history(args: argparse.Namespace) -> int:
    history = collect_history(Path(args.reports), matrix_name=args.matrix_name)
    print(render_history(history, test=args.test, cell_patterns=args.cells,
                         width=console_width()))
    return 0


def _list(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    if args.json:
        print(json.dumps([{"id": c.id, "python": c.python, "torch": c.torch,
                           "torchao": c.torchao, "stack": c.stack, "channel": c.channel,
                           "not_applicable": c.not_applicable} for c in matrix.cells], indent=2))
        return 0
    for cell in matrix.cells:
        note = f"  (not applicable: {cell.not_applicable})" if cell.not_applicable else ""
        print(f"{cell.id}{note}")
    return 0


def _terminate_as_interrupt() -> None:
    """CI cancels with SIGTERM: stop cells and write the partial report, as for Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _terminate_as_interrupt()
    try:
        if args.command == "matrix":
            matrix = load_matrix(args.matrix)
            cells = list(matrix.cells)
            if args.cells:
                cells = matrix.cells_matching(args.cells)
            if args.shard:  # as `plan --shard`: applicable cells only; n/a ones need no runner
                cells = [c for c in cells if c.applicable]
                cells = [cells[k] for k in shard_of(cells, args.shard)]
            return _run(matrix, cells, args)
        if args.command == "cell":
            matrix = load_matrix(args.matrix)
            return _run(matrix, [matrix.cell(args.cell_id)], args)
        if args.command == "report":
            return _report(args)
        if args.command == "plan":
            return _plan(args)
        if args.command == "probe":
            return _probe(args)
        if args.command == "prefetch":
            return _prefetch(args)
        if args.command == "bisect":
            return _bisect(args)
        if args.command == "history":
            return _history(args)
        if args.command == "gc":
            return _gc(args)
        return _list(args)
    except UsageError as exc:
        print(f"compat: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
