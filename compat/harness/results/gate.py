"""The exit code of a run: one number a release pipeline can gate on.

=====  ==============================================================================
code   meaning
=====  ==============================================================================
0      every gating cell behaved as expected (passes, expected failures, n/a, skips)
1      an unexpected failure, a failure other than the expected one, an error, crash,
       timeout or import failure, a fixed expectation under strict, or a regression
       against the baseline
2      usage or configuration error (bad matrix file, bad option, unreadable baseline)
3      infrastructure only: some gating cell could not be installed or has no result
       (a lost CI shard, a corrupt result file), nothing else failed
130    interrupted (Ctrl-C); a partial report was written
=====  ==============================================================================

Non-gating cells (e.g. nightlies marked ``gating = false``) are reported but never
change the code.
"""

from __future__ import annotations

from collections.abc import Iterable

from compat.harness.results.model import CellResult

__all__ = ["EXIT_INFRA", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNEXPECTED", "EXIT_USAGE",
           "describe_exit_code", "exit_code"]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130

_MEANING = {
    EXIT_OK: "every gating cell as expected",
    EXIT_UNEXPECTED: "unexpected failures",
    EXIT_USAGE: "usage or configuration error",
    EXIT_INFRA: "infrastructure failures only",
    EXIT_INTERRUPTED: "interrupted",
}


def describe_exit_code(code: int) -> str:
    """The meaning of a harness exit code, as the README's table says it."""
    return _MEANING.get(code, "unknown exit code")


def exit_code(results: Iterable[CellResult], *, regressions: int = 0) -> int:
    gating = [r for r in results if r.gating]
    if regressions or any(r.status.unexpected for r in gating):
        return EXIT_UNEXPECTED
    if any(r.status.infrastructure for r in gating):
        return EXIT_INFRA
    return EXIT_OK
