"""Command line of the harness; the nox sessions are thin wrappers around these commands.

``python -m compat matrix|cell|report|probe|prefetch|bisect|history|plan|gc|list`` works
without nox as well, which is how the sessions stay testable and how a CI job without
nox can call the same code. Here: the arguments (one ``_add_<command>`` per subcommand,
naming its function with ``set_defaults(func=...)``), and the commands whose work is one
call into a stage; a command with logic of its own has its module beside this one
(:mod:`.matrix` for ``matrix``, ``cell`` and ``report``, :mod:`.qualify`, :mod:`.plan`,
:mod:`.probe`, :mod:`.bisect`, :mod:`.history`), and a run of cells is the steps of
:mod:`.pipeline`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

from compat import __version__
from compat.harness.cache.store import Store
from compat.harness.cache.store import prune as prune_verdicts
from compat.harness.commands.bisect import BisectRequest, bisect, matrix_candidates, render_bisect
from compat.harness.commands.history import collect_history, render_history
from compat.harness.commands.init import write_start
from compat.harness.commands.matrix import report_run, run_matrix
from compat.harness.commands.options import (
    RunOptions,
    checked_jobs,
    console_width,
    offline_wheelhouse,
    writable_folder,
)
from compat.harness.commands.plan import (
    cache_forecast,
    ci_matrix,
    ci_shards,
    plan_cells,
    shard_cells,
)
from compat.harness.commands.probe import probe_cells, render_probe
from compat.harness.commands.qualify import QualifyRequest, run_qualification
from compat.harness.config.applicability import STACKS
from compat.harness.config.matrix import load_matrix
from compat.harness.errors import UsageError
from compat.harness.install.garbage import collect, parse_size
from compat.harness.install.pipconfig import read_pip_config
from compat.harness.install.prefetch import prefetch
from compat.harness.locations import envs_root, verdict_store
from compat.harness.preflight import check_envs_root
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


_Sub = argparse._SubParsersAction  # what add_subparsers returns

_HELP_OUT = (
    "run folder: a new or empty folder, or a run to resume into "
    "(default reports/<run-id>, with reports/latest)"
)


def _parser() -> argparse.ArgumentParser:
    """The command line: one ``_add_<command>`` per subcommand, each naming the function
    that runs it (``set_defaults(func=...)``)."""
    parser = argparse.ArgumentParser(
        prog="torch-compat-matrix", description="torch compatibility matrix"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the HTTP and index libraries' debug logs"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    with_matrix = argparse.ArgumentParser(add_help=False)
    with_matrix.add_argument(
        "--matrix",
        default=None,
        help="matrix file (default: matrix.toml here or in the nearest folder above, "
        "as pytest and ruff find their configuration)",
    )
    for add in (
        _add_init,
        _add_matrix,
        _add_cell,
        _add_report,
        _add_plan,
        _add_probe,
        _add_prefetch,
        _add_qualify,
        _add_bisect,
        _add_gc,
        _add_history,
        _add_list,
    ):
        add(sub, with_matrix)
    return parser


def _add_jobs(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("-j", "--jobs", type=int, default=None, help=text)


def _add_env_options(p: argparse.ArgumentParser, out: str) -> None:
    p.add_argument("--out", default=None, help=out)
    _add_jobs(p, "cells at once, 1 or more (default: what cores and memory allow)")
    p.add_argument(
        "--offline",
        nargs="?",
        const="wheelhouse",
        default=None,
        metavar="WHEELHOUSE",
        help="build envs only from a prefetched wheelhouse (default ./wheelhouse)",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
    _add_env_options(p, _HELP_OUT)
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
    _add_drift_detail(p)
    p.add_argument(
        "--pytest-args",
        default=None,
        metavar="ARGS",
        help='pytest options for every test file of every cell, e.g. "-k porting -x" '
        "(after the matrix's `pytest-args`); also anything after a second `--`",
    )
    p.add_argument(
        "--disk-budget",
        default=None,
        metavar="SIZE",
        help="keep the uv cache and the envs under SIZE (e.g. 30G) while the "
        "run builds envs: cells of one torch build run together, and "
        "what no remaining cell needs is freed (the matrix's `disk-budget`)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="run every test file, reusing no cached verdict (the fresh ones are stored)",
    )
    p.add_argument(
        "--refresh",
        action="append",
        default=None,
        metavar="TEST-GLOB",
        help="run again the files of the tests this glob names (a node id, a test or file "
        "name), cached or not; repeatable",
    )


def _add_init(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "init",
        help="write a commented matrix.toml for today's torch "
        "releases (and a starter test) in a repository",
    )
    p.add_argument("--dir", default=".", help="the repository (default: here)")
    p.add_argument("--noxfile", action="store_true", help="also a noxfile.py snippet")
    p.set_defaults(func=_init)


def _add_matrix(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser("matrix", parents=[with_matrix], help="run every cell, then report")
    _add_run_options(p)
    p.add_argument(
        "--cells",
        nargs="+",
        default=None,
        help="only these cells: ids or globs ('torch2.8*', '*py3.12')",
    )
    p.add_argument("--shard", default=None, help="only shard I/N of the cells")
    p.add_argument(
        "--resume",
        nargs="?",
        const="reports/latest",
        default=None,
        help="keep the finished cells of a run of the same matrix file (default reports/latest)",
    )
    p.set_defaults(func=_matrix)


def _add_cell(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser("cell", parents=[with_matrix], help="run one cell")
    _add_run_options(p)
    p.add_argument("cell_id")
    p.set_defaults(func=_cell)


def _add_drift_detail(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--drift-detail",
        action="store_true",
        help="under each drift finding, its nodes; and the IR-only findings (op renamed, "
        "graph order) the console otherwise folds",
    )


def _add_report(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser("report", help="rebuild the report of a run from its cell folders")
    p.add_argument("run", nargs="?", default="reports/latest", help="run folder")
    p.add_argument("--baseline", default=None, help="a previous results.json")
    p.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="DIR",
        help="fold the run folders under these DIRs (CI shards) into one run",
    )
    p.add_argument(
        "--out",
        default=None,
        help="with --merge (required): the merged run folder, new, empty or "
        "an earlier merge; never an existing run",
    )
    _add_drift_detail(p)
    p.set_defaults(func=_report)


def _add_plan(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "plan", parents=[with_matrix], help="the cells as a CI matrix (GitHub Actions JSON)"
    )
    p.add_argument("--shard", default=None, help="only shard I/N")
    p.add_argument("--ids", action="store_true", help="cell ids, one per line")
    p.add_argument(
        "--shards",
        type=int,
        default=0,
        metavar="N",
        help="at most N jobs of `matrix --shard I/M` instead of one job per cell "
        "(M: N, or the applicable cells when there are fewer)",
    )
    p.add_argument(
        "--cache",
        action="store_true",
        help="say which cells the verdict cache answers (their Python will not start)",
    )
    p.set_defaults(func=_plan)


def _add_probe(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "probe", parents=[with_matrix], help="capability grid of every cell, no tests"
    )
    _add_env_options(p, "folder of the probes' install logs (default reports/probe)")
    p.set_defaults(func=_probe)


def _add_prefetch(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "prefetch", parents=[with_matrix], help="download every cell's wheels, with hashes"
    )
    p.add_argument("--wheelhouse", default="wheelhouse")
    p.set_defaults(func=_prefetch)


def _add_qualify(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "qualify",
        parents=[with_matrix],
        help="a torch release candidate or nightly against a reference "
        "release: QUALIFIED or NOT QUALIFIED (exit 0/1/3)",
    )
    p.add_argument("--candidate", required=True, help="the torch version to qualify")
    p.add_argument("--reference", required=True, help="the release to compare with")
    p.add_argument(
        "--channel",
        default="release",
        help="the candidate's channel in the matrix (rc, nightly...)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="run folder, new or empty (default: a new reports/<stamp>-qualify-"
        "<candidate>-vs-<reference> per run)",
    )
    _add_jobs(p, "cells at once, 1 or more")
    p.set_defaults(func=_qualify)


def _add_bisect(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "bisect",
        parents=[with_matrix],
        help="first bad torch release or nightly for a test (--good "
        "newer than --bad: the first good one, the fix)",
    )
    p.add_argument("test", help="test name or node id")
    p.add_argument("--good", required=True, help="a version (or date on a nightly channel)")
    p.add_argument("--bad", required=True, help="a version (or date on a nightly channel)")
    p.add_argument("--stack", choices=STACKS, default="torch.ao")
    p.add_argument("--torchao", default=None, help="torchao version for --stack torchao")
    p.add_argument("--python", default=None, help="CPython (default: the matrix's first)")
    p.add_argument("--channel", default="release", help="a channel of the matrix")
    p.add_argument(
        "--versions",
        choices=("index", "matrix"),
        default="index",
        help="candidates: every release on the index (default), or only the "
        "torch versions the matrix declares (envs usually built)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="default reports/bisect/<key>; rerunning the same bisection there resumes it",
    )
    p.add_argument(
        "--on",
        choices=("outcome", "snapshot"),
        default="outcome",
        help="bad means the test fails (outcome), or its porting snapshot "
        "differs from the good end's (snapshot)",
    )
    p.set_defaults(func=_bisect)


def _add_gc(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "gc", parents=[with_matrix], help="remove envs not in the matrix; trim the uv cache"
    )
    p.add_argument("--cache-budget", default=None, help="e.g. 40G: prune the uv cache above it")
    p.add_argument(
        "--verdicts-budget",
        default="2G",
        help="keep the verdict cache under this size, least recently used out first (2G)",
    )
    p.add_argument(
        "--verdicts-max-age",
        type=float,
        default=30.0,
        metavar="DAYS",
        help="drop cached verdicts unused for this many days (30)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    p.set_defaults(func=_gc)


def _add_history(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "history",
        help="a test (or every cell) across the kept runs, "
        "and between which runs it broke or was fixed",
    )
    p.add_argument("test", nargs="?", default=None, help="test name or node id")
    p.add_argument("--reports", default="reports", help="folder of kept runs")
    p.add_argument(
        "--matrix-name", default=None, help="runs of this matrix (default: the newest run's)"
    )
    p.add_argument("--cells", nargs="+", default=(), help="ids or globs")
    p.set_defaults(func=_history)


def _add_list(sub: _Sub, with_matrix: argparse.ArgumentParser) -> None:
    p = sub.add_parser("list", parents=[with_matrix], help="list the matrix's cells")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=_list)


def _options(args: argparse.Namespace) -> RunOptions:
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
        pytest_args=_pytest_args(args),
        drift_detail=getattr(args, "drift_detail", False),
        no_cache=getattr(args, "no_cache", False),
        refresh=tuple(getattr(args, "refresh", None) or ()),
    )


def _pytest_args(args: argparse.Namespace) -> tuple[str, ...]:
    """``--pytest-args "-k x -x"`` (split as a shell would) and what followed ``--``."""
    given = getattr(args, "pytest_args", None)
    try:
        split = shlex.split(given) if given else []
    except ValueError as exc:
        raise UsageError(f"--pytest-args {given!r}: {exc}") from None
    return (*split, *getattr(args, "after_dashes", ()))


def _matrix(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    cells = list(matrix.cells)
    if args.cells:
        cells = matrix.cells_matching(args.cells)
    if args.shard:  # the cells `plan --shard` lists
        cells = shard_cells(cells, args.shard)
    return run_matrix(matrix, cells, _options(args))


def _cell(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.matrix)
    return run_matrix(matrix, [matrix.cell(args.cell_id)], _options(args))


def _report(args: argparse.Namespace) -> int:
    return report_run(
        args.run,
        merge=args.merge,
        out=args.out,
        baseline=args.baseline,
        drift_detail=args.drift_detail,
    )


def _prefetch(args: argparse.Namespace) -> int:
    check_envs_root()  # a file, or not writable: exit 2, nothing made
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
            versions=args.versions,
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
    check_envs_root()  # a file, or not writable: exit 2, nothing made
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
    if args.verdicts_max_age < 0:
        raise UsageError(f"--verdicts-max-age {args.verdicts_max_age}: expected days >= 0")
    pruned = prune_verdicts(
        verdict_store(envs_root()),
        budget_bytes=parse_size(args.verdicts_budget, "--verdicts-budget"),
        max_age_days=args.verdicts_max_age,
        dry_run=args.dry_run,
    )
    print(
        f"gc: verdict cache: {verb} {pruned.removed} entr(ies), "
        f"{pruned.freed_bytes / 2**20:.1f} MiB; kept {pruned.kept}, "
        f"{pruned.kept_bytes / 2**20:.1f} MiB"
    )
    return 0


def _plan(args: argparse.Namespace) -> int:
    if args.shards < 0:
        raise UsageError(f"--shards {args.shards}: expected a whole number >= 0")
    if args.shards:
        print(json.dumps(ci_shards(load_matrix(args.matrix), args.shards)))
        return 0
    matrix = load_matrix(args.matrix)
    cells = plan_cells(matrix, args.shard)
    if args.cache:
        store = Store(verdict_store(envs_root()))
        print("\n".join(cache_forecast(matrix, cells, envs_root(), store)))
        return 0
    print("\n".join(c.id for c in cells) if args.ids else json.dumps(ci_matrix(cells)))
    return 0


def _probe(args: argparse.Namespace) -> int:
    check_envs_root()  # a file, or not writable: exit 2, nothing made
    matrix = load_matrix(args.matrix)
    cells = list(matrix.cells)
    jobs = checked_jobs(args.jobs)
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
    written = write_start(writable_folder(args.dir, "--dir"), noxfile=args.noxfile)
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
    """SIGINT, SIGTERM and SIGHUP to the harness: the first stops every child at once and raises
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


class _ClosedPipe:
    """Standard output whose reader may go away (``history | head -1``): from the first
    broken pipe on, what is printed is dropped and the command goes on to its own exit
    code, so a closed pipe neither fails a command nor hides its gate. The program's own
    stdout is pointed at /dev/null then, so the interpreter's last flush is quiet too."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.closed_pipe = False

    def _closed(self) -> None:
        self.closed_pipe = True
        if self.stream is sys.__stdout__:
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.stream.fileno())
                os.close(devnull)

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._closed()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._closed()

    def __getattr__(self, name: str) -> object:  # isatty, fileno, encoding ...
        return getattr(self.stream, name)


@contextlib.contextmanager
def _redacted_console() -> Iterator[None]:
    """Everything printed while a command runs passes through :func:`redact`; a closed
    stdout is no error (:class:`_ClosedPipe`)."""
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(_ClosedPipe(sys.stdout))  # type: ignore[assignment]
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
    return int(args.func(args))


def find_matrix(start: Path) -> Path | None:
    """``matrix.toml`` in ``start`` or the nearest folder above it, not past the top of a
    git work tree (a folder holding ``.git``)."""
    for folder in (start, *start.parents):
        candidate = folder / DEFAULT_MATRIX
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def _split_dashes(argv: Sequence[str]) -> tuple[list[str], tuple[str, ...]]:
    """``matrix -j 2 -- -k porting``: the harness's own options, then pytest's (nox passes
    everything after its own ``--`` on, so ``nox -s matrix -- -j 2 -- -k porting`` works)."""
    items = list(argv)
    if "--" in items:
        at = items.index("--")
        return items[:at], tuple(items[at + 1 :])
    return items, ()


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
                given, after = _split_dashes(sys.argv[1:] if argv is None else argv)
                args = _parser().parse_args(given)
                args.after_dashes = after
                if hasattr(args, "matrix") and args.matrix is None:
                    args.matrix = str(find_matrix(Path.cwd()) or DEFAULT_MATRIX)
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
