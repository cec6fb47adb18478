"""From what a cell's pytest left behind to a verdict: its events read back, each test's
outcome against the matrix's expectations, and the cell's status with the reason.

Only evidence counts: the events the plugin streamed (tolerant of a truncated last line,
refused when another plugin version wrote them), the exit code or signal, the clock.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from compat.events import (
    COLLECT_ERROR,
    EVENTS_SCHEMA,
    SESSION_FINISH,
    SESSION_START,
    TEST,
    TEST_START,
)
from compat.harness.redact import redact
from compat.harness.results.model import CellResult, CellStatus, Outcome, TestResult

__all__ = [
    "Events",
    "Expected",
    "SessionEnd",
    "classify",
    "failure_text",
    "flag_missing_tests",
    "read_events",
]


@dataclass
class SessionEnd:
    """The plugin's ``session_finish``: pytest got to the end, and what the shims did."""

    exitstatus: int | None = None
    routes: dict[str, str] = field(default_factory=dict)  # route key -> the route taken
    adaptations: dict[str, str] = field(default_factory=dict)  # route -> how it departs
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_event(cls, record: Mapping[str, Any]) -> SessionEnd:
        def mapping(key: str) -> dict[str, str]:
            value = record.get(key)
            return dict(value) if isinstance(value, dict) else {}

        warnings = record.get("warnings")
        return cls(
            record.get("exitstatus"),
            mapping("routes"),
            mapping("adaptations"),
            list(warnings) if isinstance(warnings, list) else [],
        )


@dataclass
class Events:
    """What the plugin streamed, tolerant of a truncated last line (the process died)."""

    fingerprint: dict[str, Any] = field(default_factory=dict)
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    collect_errors: list[dict[str, Any]] = field(default_factory=list)
    finish: SessionEnd | None = None
    corrupt_lines: int = 0
    foreign_schema: object = None  # the schema a plugin of another version wrote


def read_events(path: Path) -> Events:
    events = Events()
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return events
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            events.corrupt_lines += 1
            continue
        if not isinstance(record, dict):
            events.corrupt_lines += 1
            continue
        kind = record.get("event")
        if kind == SESSION_START:
            if record.get("schema") != EVENTS_SCHEMA:
                events.foreign_schema = record.get("schema")
                return events  # another plugin version: its fields cannot be trusted
            events.fingerprint = dict(record.get("fingerprint") or {})
        elif kind == TEST_START:
            events.started.append(str(record.get("nodeid")))
        elif kind == TEST:
            events.tests[str(record.get("nodeid"))] = record
        elif kind == COLLECT_ERROR:
            events.collect_errors.append(record)
        elif kind == SESSION_FINISH:
            events.finish = SessionEnd.from_event(record)
    return events


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class Expected(Protocol):
    """What classification needs of an expectation (``matrix.Expectation``)."""

    reason: str
    link: str | None

    def explains(self, exc_types: Sequence[str], message: str) -> bool: ...

    def describe(self) -> str: ...


def failure_text(record: Mapping[str, Any]) -> str:
    """The text an expectation's ``match`` is searched in: the exception's own message.

    Never the whole pytest report: its source listing would contain the very string a
    ``match`` looks for. Without an exception (an old event stream), pytest's ``E`` lines.
    """
    if record.get("exc_message") is not None:
        return str(record["exc_message"])
    lines = str(record.get("message") or "").splitlines()
    return "\n".join(ln[1:].strip() for ln in lines if ln.startswith("E "))


def _expected_outcome(
    outcome: Outcome, expectation: Expected | None, record: Mapping[str, Any]
) -> Outcome:
    if expectation is None:
        return outcome
    if outcome is Outcome.PASSED:
        return Outcome.XPASSED
    if outcome in (Outcome.FAILED, Outcome.ERROR):
        types = [str(t) for t in record.get("exc_types") or []]
        explained = expectation.explains(types, failure_text(record))
        return Outcome.XFAILED if explained else Outcome.FAILED_DIFFERENTLY
    return outcome


def _snapshots(value: object) -> dict[str, list[dict[str, Any]]]:
    """A test's snapshots as streamed; anything malformed is dropped, never fatal."""
    if not isinstance(value, dict):
        return {}
    return {
        str(stage): [dict(e) for e in entries if isinstance(e, dict)]
        for stage, entries in value.items()
        if isinstance(entries, list)
    }


def classify(
    *,
    events: Events,
    returncode: int | None,
    timed_out: bool,
    expected: Mapping[str, Expected],
    known_tests: Iterable[str] = (),
    strict: bool = False,
) -> tuple[CellStatus, str | None, list[TestResult]]:
    """Turn a finished (or killed) pytest process into a cell status and per-test outcomes.

    ``expected`` maps node ids to the expectation that covers them; a failure it does not
    explain is "failed differently". ``known_tests`` are node ids seen in other cells,
    reported as not run when this cell died first. ``strict``: a fixed test fails the cell.
    """
    tests: list[TestResult] = []
    for nodeid, record in events.tests.items():
        expectation = expected.get(nodeid)
        outcome = _expected_outcome(Outcome(record.get("outcome", "error")), expectation, record)
        reason = None
        if expectation is not None:
            reason = expectation.reason + (f" ({expectation.link})" if expectation.link else "")
        tests.append(
            TestResult(
                nodeid,
                outcome,
                float(record.get("duration") or 0.0),
                record.get("message"),
                reason,
                int(record.get("reruns") or 0),
                expectation.describe() if expectation is not None else None,
                [str(t) for t in record.get("exc_types") or []],
                _snapshots(record.get("snapshots")),
            )
        )
    finished = set(events.tests)
    running = [n for n in events.started if n not in finished]
    for nodeid in running:
        tests.append(TestResult(nodeid, Outcome.ERROR, 0.0, "the cell died while this test ran"))
    seen = finished | set(running)
    for nodeid in known_tests:
        if nodeid not in seen:
            tests.append(TestResult(nodeid, Outcome.NOT_RUN))
            seen.add(nodeid)

    where = f" in {running[-1]}" if running else ""
    if events.foreign_schema is not None:
        return (
            CellStatus.ERROR,
            f"the cell's plugin wrote events schema "
            f"{events.foreign_schema!r}; this harness reads {EVENTS_SCHEMA}",
            tests,
        )
    import_error = events.fingerprint.get("torch_import_error") or events.fingerprint.get(
        "torchao_import_error"
    )
    if timed_out:
        return CellStatus.TIMED_OUT, f"timed out{where}", tests
    if returncode is not None and returncode < 0:
        return CellStatus.CRASHED, f"killed by {_signal_name(returncode)}{where}", tests
    if import_error:
        return CellStatus.IMPORT_FAILED, import_error.splitlines()[-1], tests
    never_started = not (
        events.fingerprint
        or events.started
        or events.tests
        or events.collect_errors
        or events.finish
    )
    if never_started:
        reason = f"pytest exited with {returncode} before the session started"
        return CellStatus.ERROR, reason, tests
    if events.finish is None:
        return CellStatus.CRASHED, f"pytest exited with {returncode} before finishing{where}", tests
    failed = sum(t.outcome is Outcome.FAILED for t in tests)
    differently = sum(t.outcome is Outcome.FAILED_DIFFERENTLY for t in tests)
    if failed or differently:
        parts = [f"{failed} test(s) failed unexpectedly"] if failed else []
        parts += [f"{differently} failed differently than expected"] if differently else []
        return CellStatus.FAILED, ", ".join(parts), tests
    if events.collect_errors or any(t.outcome is Outcome.ERROR for t in tests):
        first = events.collect_errors[0]["nodeid"] if events.collect_errors else "a fixture"
        return CellStatus.ERROR, f"collection or fixture error ({first})", tests
    if returncode not in (0, 1, 5):
        return CellStatus.ERROR, f"pytest exited with {returncode}", tests
    if not tests:
        return CellStatus.ERROR, "no tests were collected", tests
    if all(t.outcome is Outcome.SKIPPED for t in tests):
        return CellStatus.ERROR, f"all {len(tests)} test(s) skipped: the cell tested nothing", tests
    fixed = sum(t.outcome is Outcome.XPASSED for t in tests)
    if strict and fixed:
        return (
            CellStatus.FAILED,
            f"{fixed} expected failure(s) now pass (strict: retire the expectation)",
            tests,
        )
    return CellStatus.PASSED, None, tests


def flag_missing_tests(results: Sequence[CellResult]) -> list[CellResult]:
    """A test that other cells ran but this one never reported is not a pass by omission.

    Only cells whose pytest session finished are judged (an install failure or a crash
    already says why tests are missing); such a cell that passed becomes an error.
    """
    ran = [
        r for r in results if r.status in (CellStatus.PASSED, CellStatus.FAILED, CellStatus.ERROR)
    ]
    known: dict[str, None] = {}  # in order of first appearance
    for result in ran:
        known.update(dict.fromkeys(t.nodeid for t in result.tests))
    changed = []
    for result in ran:
        have = {t.nodeid for t in result.tests}
        missing = [n for n in known if n not in have]
        if not missing:
            continue
        result.tests += [
            TestResult(
                n, Outcome.NOT_RUN, message="collected in other cells, missing from this one"
            )
            for n in missing
        ]
        if result.status is CellStatus.PASSED:
            names = ", ".join(redact(n).rsplit("::", 1)[-1] for n in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            result.status = CellStatus.ERROR
            result.reason = (
                f"{len(missing)} test(s) that other cells ran are missing here ({names}{more})"
            )
        changed.append(result)
    return changed
