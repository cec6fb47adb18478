"""Command line of the harness; the nox sessions are thin wrappers around these commands.

``python -m compat matrix|cell|report|probe|prefetch|bisect|history|plan|gc|list`` works
without nox as well, which is how the sessions stay testable and how a CI job without
nox can call the same code. Here: the arguments, and the commands whose work is one call
into a stage; a command with logic of its own has its module beside this one
(:mod:`.matrix` for ``matrix``, ``cell`` and ``report``, :mod:`.plan`, :mod:`.probe`,
:mod:`.bisect`, :mod:`.history`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from compat.harness.commands.bisect import BisectRequest, bisect, matrix_candidates, render_bisect
from compat.harness.commands.history import collect_history, render_history
from compat.harness.commands.init import write_start
from compat.harness.commands.matrix import (
    RunOptions,
    console_width,
    offline_wheelhouse,
    report_run,
    run_matrix,
    writable_folder,
)
from compat.harness.commands.plan import ci_matrix, ci_shards, plan_cells, shard_cells
from compat.harness.commands.probe import probe_cells, render_probe
from compat.harness.commands.qualify import QualifyRequest, run_qualification
from compat.harness.config.applicability import STACKS
from compat.harness.config.matrix import load_matrix
from compat.harness.errors import UsageError
from compat.harness.execute.cell_runner import default_jobs
from compat.harness.install.garbage import collect, parse_size
from compat.harness.install.pipconfig import read_pip_config
from compat.harness.install.prefetch import prefetch
from compat.harness.locations import envs_root
from compat.harness.processes import STOP_SIGNALS, wait_stopped
from compat.harness.processes import reset as reset_stop
from compat.harness.processes import stop as stop_children
from compat.harness.redact import RedactingStream
from compat.harness.results.gate import (
    EXIT_INFRA,
    EXIT_INTERRUPTED,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    error_line,
    exit_code_for,
)

__all__ = ["main"]

DEFAULT_MATRIX = "matrix.toml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torch-compat-matrix", description="torch compatibility matrix"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the HTTP and index libraries' debug logs"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_init = sub.add_parser(
        "init",
        help="write a commented matrix.toml for today's torch "
        "releases (and a starter test) in a repository",
    )
    p_init.add_argument("--dir", default=".", help="the repository (default: here)")
    p_init.add_argument("--noxfile", action="store_true", help="also a noxfile.py snippet")
    with_matrix = argparse.ArgumentParser(add_help=False)
    with_matrix.add_argument("--matrix", default=DEFAULT_MATRIX, help="matrix file (matrix.toml)")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[with_matrix], help=text)

    def add_env_options(p: argparse.ArgumentParser, out: str) -> None:
        p.add_argument("--out", default=None, help=out)
        p.add_argument(
            "-j",
            "--jobs",
            type=int,
            default=None,
            help="cells at once, 1 or more (default: what cores and memory allow)",
        )
        p.add_argument(
            "--offline",
            nargs="?",
            const="wheelhouse",
            default=None,
            metavar="WHEELHOUSE",
            help="build envs only from a prefetched wheelhouse (default ./wheelhouse)",
        )

    def add_run_options(p: argparse.ArgumentParser) -> None:
        add_env_options(
            p,
            "run folder: a new or empty folder, or a run to resume into "
            "(default reports/<run-id>, with reports/latest)",
        )
        p.add_argument(
            "--baseline",
            default=None,
            help="a previous results.json: name regressions and fixes, gate on them",
        )
        p.add_argument(
            "--reruns",
            type=int,
            default=None,
            metavar="N",
            help="rerun a failed test up to N times (overrides the matrix's "
            "`reruns`); a later pass is reported as flaky",
        )
        p.add_argument(
            "--strict",
            action="store_true",
            default=None,
            help="an expected failure that passes (fixed) fails the gate (the matrix's `strict`)",
        )
        p.add_argument(
            "--disk-budget",
            default=None,
            metavar="SIZE",
            help="keep the uv cache and the envs under SIZE (e.g. 30G) while the "
            "run builds envs: cells of one torch build run together, and "
            "what no remaining cell needs is freed (the matrix's `disk-budget`)",
        )

    p_matrix = command("matrix", "run every cell, then report")
    add_run_options(p_matrix)
    p_matrix.add_argument(
        "--cells",
        nargs="+",
        default=None,
        help="only these cells: ids or globs ('torch2.8*', '*py3.12')",
    )
    p_matrix.add_argument("--shard", default=None, help="only shard I/N of the cells")
    p_matrix.add_argument(
        "--resume",
        nargs="?",
        const="reports/latest",
        default=None,
        help="keep the finished cells of a run (default reports/latest)",
    )

    p_cell = command("cell", "run one cell")
    add_run_options(p_cell)
    p_cell.add_argument("cell_id")

    p_report = sub.add_parser("report", help="rebuild the report of a run from its cell folders")
    p_report.add_argument("run", nargs="?", default="reports/latest", help="run folder")
    p_report.add_argument("--baseline", default=None, help="a previous results.json")
    p_report.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="DIR",
        help="fold the run folders under these DIRs (CI shards) into one run",
    )
    p_report.add_argument(
        "--out",
        default=None,
        help="with --merge (required): the merged run folder, new, empty or "
        "an earlier merge; never an existing run",
    )

    p_plan = command("plan", "the cells as a CI matrix (GitHub Actions JSON)")
    p_plan.add_argument("--shard", default=None, help="only shard I/N")
    p_plan.add_argument("--ids", action="store_true", help="cell ids, one per line")
    p_plan.add_argument(
        "--shards",
        type=int,
        default=0,
        metavar="N",
        help="N jobs of `matrix --shard I/N` instead of one job per cell",
    )

    p_probe = command("probe", "capability grid of every cell, no tests")
    add_env_options(p_probe, "folder of the probes' install logs (default reports/probe)")

    p_prefetch = command("prefetch", "download every cell's wheels, with hashes")
    p_prefetch.add_argument("--wheelhouse", default="wheelhouse")

    p_qualify = command(
        "qualify",
        "a torch release candidate or nightly against a reference "
        "release: QUALIFIED or NOT QUALIFIED (exit 0/1/3)",
    )
    p_qualify.add_argument("--candidate", required=True, help="the torch version to qualify")
    p_qualify.add_argument("--reference", required=True, help="the release to compare with")
    p_qualify.add_argument(
        "--channel",
        default="release",
        help="the candidate's channel in the matrix (rc, nightly...)",
    )
    p_qualify.add_argument(
        "--out",
        default=None,
        help="run folder (default reports/qualify-<candidate>-vs-<reference>)",
    )
    p_qualify.add_argument("-j", "--jobs", type=int, default=None, help="cells at once")

    p_bisect = command(
        "bisect",
        "first bad torch release or nightly for a test (--good "
        "newer than --bad: the first good one, the fix)",
    )
    p_bisect.add_argument("test", help="test name or node id")
    p_bisect.add_argument("--good", required=True, help="a version (or date on a nightly channel)")
    p_bisect.add_argument("--bad", required=True, help="a version (or date on a nightly channel)")
    p_bisect.add_argument("--stack", choices=STACKS, default="torch.ao")
    p_bisect.add_argument("--torchao", default=None, help="torchao version for --stack torchao")
    p_bisect.add_argument("--python", default=None, help="CPython (default: the matrix's first)")
    p_bisect.add_argument("--channel", default="release", help="a channel of the matrix")
    p_bisect.add_argument(
        "--versions",
        choices=("index", "matrix"),
        default="index",
        help="candidates: every release on the index (default), or only the "
        "torch versions the matrix declares (envs usually built)",
    )
    p_bisect.add_argument("--out", default=None, help="default reports/bisect/<key>")
    p_bisect.add_argument(
        "--on",
        choices=("outcome", "snapshot"),
        default="outcome",
        help="bad means the test fails (outcome), or its porting snapshot "
        "differs from the good end's (snapshot)",
    )

    p_gc = command("gc", "remove envs not in the matrix; trim the uv cache")
    p_gc.add_argument("--cache-budget", default=None, help="e.g. 40G: prune the uv cache above it")
    p_gc.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")

    p_history = sub.add_parser(
        "history",
        help="a test (or every cell) across the kept runs, "
        "and between which runs it broke or was fixed",
    )
    p_history.add_argument("test", nargs="?", default=None, help="test name or node id")
    p_history.add_argument("--reports", default="reports", help="folder of kept runs")
    p_history.add_argument(
        "--matrix-name", default=None, help="runs of this matrix (default: the newest run's)"
    )
    p_history.add_argument("--cells", nargs="+", default=(), help="ids or globs")

    p_list = command("list", "list the matrix's cells")
    p_list.add_argument("--json", action="store_true", help="as JSON")
    return parser


def _jobs(jobs: int | None) -> int:
    if jobs is None:
        return default_jobs()
    if jobs < 1:
        raise UsageError(f"-j {jobs}: expected a whole number of cells at once, 1 or more")
    return jobs


def _options(args: argparse.Namespace) -> RunOptions:
    _jobs(args.jobs)
    return RunOptions(
        out=args.out,
        jobs=args.jobs,
        baseline=args.baseline,
        resume=getattr(args, "resume", None),
        offline=args.offline,
        reruns=args.reruns,
        shard=getattr(args, "shard", None),
        strict=args.strict,
        disk_budget=args.disk_budget,
    )


def _prefetch(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    wheelhouse = writable_folder(args.wheelhouse, "--wheelhouse")
    manifest = prefetch(
        matrix, wheelhouse=wheelhouse, envs_root=envs_root(), pip_config=read_pip_config()
    )
    wanted = {c.id for c in matrix.cells if c.applicable}
    failed = {k: v.error for k, v in manifest.cells.items() if k in wanted and v.error}
    total = sum(f.size for f in manifest.files.values())
    print(
        f"prefetch: {len(manifest.files)} wheels, {total / 2**30:.2f} GiB in "
        f"{args.wheelhouse}; {len(failed)} cell(s) failed"
    )
    for cell_id, error in failed.items():
        print(f"  {cell_id}: {error}")
    return EXIT_INFRA if failed else 0


def _qualify(args: argparse.Namespace) -> int:
    request = QualifyRequest(args.candidate, args.reference, args.channel, args.out, args.jobs)
    return run_qualification(load_matrix(args.matrix), request)


def _bisect(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    if args.channel not in matrix.channels:
        raise UsageError(f"--channel {args.channel!r} is not a channel of {matrix.path}")
    python = args.python or next(iter(c.python for c in matrix.cells))
    request = BisectRequest(
        args.test, args.good, args.bad, args.stack, python, args.channel, args.torchao, args.on
    )
    out = Path(args.out or f"reports/bisect/{request.key}").resolve()
    try:
        candidates = matrix_candidates(request, matrix) if args.versions == "matrix" else None
        record = bisect(
            request,
            matrix,
            out=out,
            envs_root=envs_root(),
            pip_config=read_pip_config(),
            candidates=candidates,
        )
    except KeyboardInterrupt:
        print(
            f"compat: interrupted; verdicts so far are in {out / 'bisect.json'} "
            "(rerun the same command to resume)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(render_bisect(record))
    return 0 if record.endpoints_hold else EXIT_UNEXPECTED


def _gc(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    budget = parse_size(args.cache_budget) if args.cache_budget else None
    report = collect(matrix, envs_root(), cache_budget=budget, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"gc: {verb} {len(report.removed)} env(s) not in {matrix.path.name}, "
        f"{report.freed_bytes / 2**20:.0f} MiB of their own files"
    )
    for name in report.removed:
        print(f"  {name}")
    if report.cache_before is not None:
        print(
            f"gc: uv cache {report.cache_before / 2**30:.1f} GiB -> "
            f"{(report.cache_after or 0) / 2**30:.1f} GiB"
        )
    for note in report.notes:
        print(f"gc: {note}")
    return 0


def _plan(args: argparse.Namespace) -> int:
    if args.shards < 0:
        raise UsageError(f"--shards {args.shards}: expected a whole number >= 0")
    if args.shards:
        print(json.dumps(ci_shards(load_matrix(args.matrix), args.shards)))
        return 0
    cells = plan_cells(load_matrix(args.matrix), args.shard)
    print("\n".join(c.id for c in cells) if args.ids else json.dumps(ci_matrix(cells)))
    return 0


def _probe(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    cells = list(matrix.cells)
    jobs = _jobs(args.jobs)
    wheelhouse = offline_wheelhouse(args.offline)
    log_dir = writable_folder(args.out or "reports/probe", "--out")
    found = probe_cells(
        cells,
        matrix,
        envs_root=envs_root(),
        pip_config=read_pip_config(),
        log_dir=log_dir,
        jobs=jobs,
        wheelhouse=wheelhouse,
    )
    print(render_probe(cells, found, width=console_width()))
    return 0


def _history(args: argparse.Namespace) -> int:
    history = collect_history(Path(args.reports), matrix_name=args.matrix_name)
    print(render_history(history, test=args.test, cell_patterns=args.cells, width=console_width()))
    return 0


def _init(args: argparse.Namespace) -> int:
    written = write_start(Path(args.dir), noxfile=args.noxfile)
    for path in written:
        print(f"wrote {path}")
    print("next: torch-compat-matrix matrix  (or --cells 'torch2.15*' for one column first)")
    return 0


def _quiet_libraries(verbose: bool) -> None:
    """Library loggers (urllib3's "Starting new HTTPS connection"...) stay at WARNING,
    even under nox, whose logging shows everything; ``-v`` lets them talk."""
    for name in ("urllib3", "requests", "pypi_simple", "filelock"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)


def _list(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": c.id,
                        "python": c.python,
                        "torch": c.torch,
                        "torchao": c.torchao,
                        "stack": c.stack,
                        "channel": c.channel,
                        "not_applicable": c.not_applicable,
                    }
                    for c in matrix.cells
                ],
                indent=2,
            )
        )
        return 0
    for cell in matrix.cells:
        note = f"  (not applicable: {cell.not_applicable})" if cell.not_applicable else ""
        print(f"{cell.id}{note}")
    return 0


class _Signals:
    """SIGINT and SIGTERM to the harness: the first stops every child at once and raises
    KeyboardInterrupt in the main thread (the partial report follows); later ones are
    noted and change nothing, so the report is still written and no traceback shows.

    A SIGINT the parent set to be ignored (a background job) stays ignored.
    """

    def __init__(self) -> None:
        self.signalled = False
        self.closing = False  # the command's work is done: stop children, raise nothing
        self.previous: dict[int, object] = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signalled:
            with contextlib.suppress(OSError):
                os.write(2, b"compat: already stopping; writing the partial report\n")
            return
        self.signalled = True
        stop_children()
        if not self.closing:
            raise KeyboardInterrupt(f"signal {signum}")

    @contextlib.contextmanager
    def installed(self, *, program: bool) -> Iterator[None]:
        """Handle the signals while the command runs. Afterwards the caller's handlers come
        back, except in a program (``python -m compat``) that was signalled: it is about to
        exit 130, and one more Ctrl-C must not turn that into a death by SIGINT."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        for signum in STOP_SIGNALS:
            current = signal.getsignal(signum)
            if signum == signal.SIGINT and current is signal.SIG_IGN:
                continue
            self.previous[signum] = current
            signal.signal(signum, self.handle)
        try:
            yield
        finally:
            for signum, handler in self.previous.items():
                # Ignored, not noted: the interpreter's exit resets Python-level handlers to
                # the default (a SIGINT then would end it as -2), but leaves SIG_IGN alone.
                signal.signal(signum, signal.SIG_IGN if program and self.signalled else handler)  # type: ignore[arg-type]


@contextlib.contextmanager
def _redacted_console() -> Iterator[None]:
    """Everything printed while a command runs passes through :func:`redact`."""
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)  # type: ignore[assignment]
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        sys.stdout, sys.stderr = saved


def _run(args: argparse.Namespace) -> int:
    _quiet_libraries(args.verbose)
    if args.command == "init":
        return _init(args)
    if args.command == "qualify":
        return _qualify(args)
    if args.command == "matrix":
        matrix = load_matrix(args.matrix)
        options = _options(args)
        cells = list(matrix.cells)
        if args.cells:
            cells = matrix.cells_matching(args.cells)
        if args.shard:  # the cells `plan --shard` lists
            cells = shard_cells(cells, args.shard)
        return run_matrix(matrix, cells, options)
    if args.command == "cell":
        matrix = load_matrix(args.matrix)
        options = _options(args)
        return run_matrix(matrix, [matrix.cell(args.cell_id)], options)
    if args.command == "report":
        return report_run(args.run, merge=args.merge, out=args.out, baseline=args.baseline)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every way it can end is an exit code of ``gate.ERROR_KINDS`` and at
    most one line on stderr, and everything it prints is redacted.

    Without ``argv`` (``sys.argv``) this is the program itself (``python -m compat``, the
    ``compat-matrix`` script), whose process ends with the command; with ``argv`` a caller
    (nox, a test) goes on, and gets its signal handlers back whatever happened.
    """
    signals = _Signals()
    reset_stop()
    with _redacted_console(), signals.installed(program=argv is None):
        try:
            try:
                args = _parser().parse_args(argv)
            except SystemExit as exc:  # --help (0), or a usage line from argparse (2)
                code = exc.code if isinstance(exc.code, int) else EXIT_USAGE
            else:
                code = _run(args)
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - each kind has its code
            signals.closing = True
            if os.environ.get("COMPAT_DEBUG"):
                traceback.print_exc()
            print(error_line(exc), file=sys.stderr)
            code = exit_code_for(exc)
        signals.closing = True
        if signals.signalled:
            wait_stopped()  # every signalled process group has had its SIGKILL
        reset_stop()
    return code
