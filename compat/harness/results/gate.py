"""The exit code of a command: one number a release pipeline can gate on.

Two tables, the only places codes are decided: :data:`EXIT_CODES` (each code and its
meaning, word for word the README's "Exit codes" table; a test holds them equal) and
:data:`ERROR_KINDS` (each kind of error a command can end with, and its code), read by
``cli.main`` for every exception it catches. A run that ends normally gets its code from
:func:`exit_code`. When more than one applies, the first of 130, 2, 1, 3 wins.

Non-gating cells (e.g. nightlies marked ``gating = false``) are reported but never
change the code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from compat.harness.errors import InfraError, UsageError, one_line
from compat.harness.processes import Stopped
from compat.harness.results.model import CellResult

__all__ = [
    "ERROR_KINDS",
    "EXIT_CODES",
    "EXIT_INFRA",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "ExitCode",
    "describe_exit_code",
    "error_line",
    "exit_code",
    "exit_code_for",
]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class ExitCode:
    code: int
    short: str  # in a sentence: "exit code 2 (usage or configuration error)"
    meaning: str  # the README's row


EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(
        EXIT_OK,
        "every gating cell as expected",
        "every gating cell behaved as expected (passes, expected failures that failed "
        "the expected way, not applicable)",
    ),
    ExitCode(
        EXIT_UNEXPECTED,
        "unexpected failures",
        "an unexpected failure, a failure other than the expected one (`≠`), an error "
        "(including a cell whose tests all skipped, or that lacks a test other cells "
        "ran), crash, timeout or import failure, a fixed expectation under `strict`, a "
        "contradicted applicability rule, or a regression against `--baseline`; also "
        "an internal error of the harness (one line; `COMPAT_DEBUG=1` shows the "
        "traceback)",
    ),
    ExitCode(
        EXIT_USAGE,
        "usage or configuration error",
        "usage or configuration error: one line naming the file, the key and the value "
        "(a matrix file, an option, a baseline, an `--out` that is a file or cannot be "
        "written); also an `[[expect]]` that matches no test any cell ran, found after "
        "the run (the report is written)",
    ),
    ExitCode(
        EXIT_INFRA,
        "infrastructure failures only",
        "infrastructure only: some gating cell could not be installed (index "
        "unreachable, no such version or wheel, no interpreter for its Python unless "
        "`skip-missing-interpreters = true`) or has no result (a lost CI shard, a "
        "corrupt result file), nothing else failed; also a file the harness could not "
        "read or write (a full disk)",
    ),
    ExitCode(
        EXIT_INTERRUPTED,
        "interrupted",
        "interrupted (Ctrl-C, SIGTERM, or SIGHUP from a closed terminal or a dropped ssh, "
        "to the harness or its whole process group): "
        "every child process is stopped within seconds, the partial report is written "
        "(with this code; interrupted cells are not run), `--resume` continues",
    ),
)

# Each kind of error a command can end with, and its code; the first that matches wins.
ERROR_KINDS: tuple[tuple[type[BaseException], int], ...] = (
    (KeyboardInterrupt, EXIT_INTERRUPTED),  # Ctrl-C; the command line turns SIGTERM into it
    (Stopped, EXIT_INTERRUPTED),  # a child, read or lock given up because of a stop
    (UsageError, EXIT_USAGE),  # ConfigError is one
    (InfraError, EXIT_INFRA),
    (OSError, EXIT_INFRA),  # a file that cannot be read or written, a full disk
    (Exception, EXIT_UNEXPECTED),  # a bug of the harness
)

_SHORT = {c.code: c.short for c in EXIT_CODES}


def describe_exit_code(code: int) -> str:
    """The meaning of a harness exit code, in a few words."""
    return _SHORT.get(code, "unknown exit code")


def exit_code_for(error: BaseException) -> int:
    """The exit code of a command that ended with ``error``."""
    return next((code for kind, code in ERROR_KINDS if isinstance(error, kind)), EXIT_UNEXPECTED)


def error_line(error: BaseException) -> str:
    """What the command line prints for ``error``: one line, redacted."""
    code = exit_code_for(error)
    if code == EXIT_INTERRUPTED:
        return "compat: interrupted"
    if code == EXIT_UNEXPECTED:
        return one_line(
            f"compat: internal error: {type(error).__name__}: {error} "
            "(a bug; COMPAT_DEBUG=1 prints the traceback)"
        )
    return one_line(f"compat: error: {error}")


def exit_code(results: Iterable[CellResult], *, regressions: int = 0) -> int:
    gating = [r for r in results if r.gating]
    if regressions or any(r.status.unexpected for r in gating):
        return EXIT_UNEXPECTED
    if any(r.status.infrastructure for r in gating):
        return EXIT_INFRA
    return EXIT_OK
