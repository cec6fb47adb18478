"""From what a cell's pytest left behind to a verdict: its events read back, each test's
outcome against the matrix's expectations, and the cell's status with the reason.

Only evidence counts: the events the plugin streamed (tolerant of a truncated last line,
refused when another plugin version wrote them), the exit code or signal, the clock.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from compat.events import (
    COLLECT_ERROR,
    EVENTS_SCHEMA,
    FILE_EXIT,
    FILE_FINISH,
    FILE_START,
    SESSION_FINISH,
    SESSION_START,
    TEST,
    TEST_START,
)
from compat.harness.config.suites import file_of
from compat.harness.files import read_regular
from compat.harness.redact import redact
from compat.harness.results.failures import short_message, user_frame
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
    # One process per test file (compat.file_runner): the files, in order, and for each the
    # runner's start and exit records and the file's own pytest finish.
    files: list[str] = field(default_factory=list)
    file_starts: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_finishes: dict[str, SessionEnd] = field(default_factory=dict)
    file_exits: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def per_file(self) -> bool:
        return self.fingerprint.get("isolation") == "file"


def read_events(path: Path) -> Events:
    events = Events()
    try:  # a regular file of bounded size only: a FIFO in its place must block nothing
        lines = read_regular(path).decode("utf-8", errors="replace").splitlines()
    except OSError:  # missing, or not a file the plugin wrote: no events
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
        elif kind == FILE_START:
            events.file_starts[str(record.get("nodeid"))] = record
        elif kind == FILE_FINISH:
            events.file_finishes[str(record.get("nodeid"))] = SessionEnd.from_event(record)
        elif kind == FILE_EXIT:
            events.file_exits[str(record.get("nodeid"))] = record
        if kind == SESSION_START and isinstance(record.get("files"), list):
            events.files = [str(f) for f in record["files"]]
    if events.finish is not None:  # what the shims did, gathered from every file's process
        for end in events.file_finishes.values():
            events.finish.routes.update(end.routes)
            events.finish.adaptations.update(end.adaptations)
            events.finish.warnings += [w for w in end.warnings if w not in events.finish.warnings]
    return events


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class Expected(Protocol):
    """What classification needs of an expectation (``matrix.Expectation``)."""

    reason: str

    @property
    def references(self) -> str: ...

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


_E_LINE = re.compile(r"^E\s+(.*)$", re.MULTILINE)
_EXCEPTION = re.compile(
    r"^((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt))\b:?\s*(.*)"
)
_NO_MODULE = re.compile(r"No module named '([^']+)'")
# Top-level modules a cell always has: a test that cannot import them has a broken env (or
# imports a name that moved: an API change), never a dependency the matrix should add.
_PROVIDED = frozenset({"torch", "torchao", "compat", "pytest", "_pytest"})


def collect_error_text(message: str) -> str:
    """The exception a collection error ends in: pytest's last ``E`` line (the import's
    own ``ModuleNotFoundError: No module named 'expecttest'``), else its last line."""
    lines = _E_LINE.findall(message or "")
    if lines:
        return lines[-1].strip()
    rest = [ln.strip() for ln in (message or "").splitlines() if ln.strip()]
    return rest[-1] if rest else "collection error"


def missing_dependency(text: str, local_names: Iterable[str] = ()) -> str | None:
    """The module a test file could not import when it is a dependency to add to ``deps``:
    not the user's own code (``local_names``) and not what every cell has.

    >>> missing_dependency("ModuleNotFoundError: No module named 'expecttest'")
    'expecttest'
    >>> missing_dependency("ModuleNotFoundError: No module named 'torch._inductor.x'") is None
    True
    >>> missing_dependency("ModuleNotFoundError: No module named 'mypkg.q'", ["mypkg"]) is None
    True
    """
    found = _NO_MODULE.search(text)
    if not found:
        return None
    top = found.group(1).split(".", 1)[0]
    return None if top in _PROVIDED or top in set(local_names) else top


def _exception_of(text: str) -> tuple[list[str], str]:
    """The exception type and message named by a collection error's last line."""
    found = _EXCEPTION.match(text)
    if not found:
        return [], text
    name = found.group(1)
    types = [name, name.rsplit(".", 1)[-1]] if "." in name else [name]
    if types[-1] == "ModuleNotFoundError":
        types.append("ImportError")  # its base: an expectation may name either
    return types, found.group(2)


def _frame_of(record: Mapping[str, Any]) -> str | None:
    """The user's frame of a failure: as the plugin found it, else read from its report."""
    if record.get("outcome") not in ("failed", "error", "flaky", "xfailed"):
        return None
    given = record.get("where")
    return str(given) if isinstance(given, str) and given else user_frame(record.get("message"))


def _test_rows(events: Events, expected: Mapping[str, Expected]) -> list[TestResult]:
    tests: list[TestResult] = []
    for nodeid, record in events.tests.items():
        expectation = expected.get(nodeid)
        outcome = _expected_outcome(Outcome(record.get("outcome", "error")), expectation, record)
        reason = None
        if expectation is not None:
            reason = expectation.reason + expectation.references
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
                where=_frame_of(record),
            )
        )
    return tests


def _collect_rows(
    events: Events, expected: Mapping[str, Expected], fallback: str
) -> list[TestResult]:
    """A file (or class) that failed to import or collect is a row of its own: ``E`` with
    the exception, or ``x`` where an expectation names it and how it fails."""
    rows: dict[str, TestResult] = {}
    for record in events.collect_errors:
        nodeid = str(record.get("nodeid") or "") or fallback
        message = str(record.get("message") or "")
        text = collect_error_text(message)
        types, exc_message = _exception_of(text)
        outcome, reason, how = Outcome.ERROR, None, None
        expectation = expected.get(nodeid)
        if expectation is not None:
            explained = expectation.explains(types, exc_message)
            outcome = Outcome.XFAILED if explained else Outcome.FAILED_DIFFERENTLY
            reason = expectation.reason + expectation.references
            how = expectation.describe()
        rows.setdefault(
            nodeid,
            TestResult(
                nodeid,
                outcome,
                0.0,
                f"E   {text}\n\n{message}",
                reason,
                0,
                how,
                types,
                where=user_frame(message),
            ),
        )
    return list(rows.values())


def _in_file(nodeid: str, file: str) -> bool:
    return nodeid == file or nodeid.startswith(file + "::")


# Why the file runner started no process for a file.
_NOT_RUN = {
    "timeout": "the cell's timeout ran out before this file",
    "exitfirst": "-x stopped the cell after the first failing file",
}
# pytest's own exit codes when it stops before a session finishes (ExitCode).
_PYTEST_STOPPED = {
    2: "interrupted (exit 2)",
    3: "an internal error (exit 3)",
    4: "a usage error, or a conftest that failed to import (exit 4)",
}


def _where(file: str, how: str, running: Sequence[str]) -> str:
    """``killed by SIGSEGV in a/test_x.py::test_y`` (the test names its file), or
    ``a/test_x.py: killed by SIGSEGV before any test started``."""
    if running:
        return f"{how} in {running[-1]}"
    return f"{file}: {how} before any of its tests started"


def _file_deaths(events: Events, tests: list[TestResult]) -> tuple[list[str], list[str]]:
    """Per-file processes that did not end as pytest ends: each running test is an error and
    a file that died before any test started is an ``E`` row of its own. Returns what to
    say of the crashed files and of the timed-out ones."""
    crashed: list[str] = []
    timed_out: list[str] = []
    finished = set(events.tests)
    have = {t.nodeid for t in tests}
    for file in events.files:
        end = events.file_exits.get(file)
        if end is None:
            continue  # not started (the runner stopped first: said by the cell's status)
        if end.get("not_run"):
            why = _NOT_RUN.get(str(end["not_run"]), str(end["not_run"]))
            tests.append(TestResult(file, Outcome.NOT_RUN, 0.0, f"not run: {why}"))
            if end["not_run"] == "timeout":
                timed_out.append(f"{file}: not run, the cell's timeout ran out first")
            continue
        running = [n for n in events.started if _in_file(n, file) and n not in finished]
        seconds = float(end.get("seconds") or 0.0)
        if end.get("timed_out"):
            limit = float(events.file_starts.get(file, {}).get("timeout") or seconds)
            how = f"timed out after {limit:.3g}s (file-timeout)"
            if end.get("cell_budget_spent"):
                how = "timed out (the cell's timeout ran out)"
            timed_out.append(_where(file, how, running))
        elif end.get("signal"):
            how = f"killed by {end['signal']}"
            crashed.append(_where(file, how, running))
        elif file not in events.file_finishes and end.get("returncode") in _PYTEST_STOPPED:
            # pytest itself gave up before the file's session (a conftest that fails to
            # import, a usage error): the file's own row, an error of the suite, not a crash.
            said = _PYTEST_STOPPED[end["returncode"]]
            if not any(_in_file(n, file) for n in have):
                message = f"pytest stopped before running the file: {said} (see pytest.log)"
                tests.append(TestResult(file, Outcome.ERROR, seconds, message))
            continue
        elif file not in events.file_finishes:
            how = f"exited with {end.get('returncode')} before pytest finished"
            crashed.append(_where(file, how, running))
        else:
            status = events.file_finishes[file].exitstatus
            if status in (2, 3, 4) and not running:  # else the running test says it
                interrupted = {
                    2: "interrupted (pytest.exit or KeyboardInterrupt)",
                    3: "an internal error",
                    4: "a usage error",
                }[status]
                tests.append(
                    TestResult(
                        file, Outcome.ERROR, seconds, f"pytest stopped the file: {interrupted}"
                    )
                )
            continue
        where = "while this test ran" if running else "before any of its tests started"
        for nodeid in running:
            tests.append(
                TestResult(nodeid, Outcome.ERROR, 0.0, f"the file's process {how} {where}")
            )
        if not running and not any(_in_file(n, file) for n in have):
            tests.append(
                TestResult(file, Outcome.ERROR, seconds, f"the file's process {how} {where}")
            )
    return crashed, timed_out


def classify(
    *,
    events: Events,
    returncode: int | None,
    timed_out: bool,
    expected: Mapping[str, Expected],
    strict: bool = False,
    local_names: Iterable[str] = (),
) -> tuple[CellStatus, str | None, list[TestResult]]:
    """Turn a finished (or killed) cell process into a cell status and per-test outcomes.

    ``expected`` maps node ids to the expectation that covers them; a failure it does not
    explain is "failed differently". Collection errors are rows of their own (the file's
    node id). Under per-file isolation a dead file costs that file only: its running test
    is an error, the other files' results stand, and the status names the file and how it
    ended. ``strict``: a fixed test fails the cell. ``local_names``: the user's own
    top-level modules (a failed import of one is their bug, not a missing dependency).
    """
    tests = _test_rows(events, expected)
    tests += [
        row
        for row in _collect_rows(events, expected, "<collection>")
        if row.nodeid not in events.tests
    ]
    crashed: list[str] = []
    files_timed_out: list[str] = []
    if events.per_file:
        crashed, files_timed_out = _file_deaths(events, tests)
    have = {t.nodeid for t in tests}
    running = [n for n in events.started if n not in events.tests and n not in have]
    for nodeid in running:
        end = events.file_finishes.get(file_of(nodeid)) or events.finish
        if end is not None and end.exitstatus == 2:  # pytest ended the session in this test
            message = "interrupted in this test (pytest.exit() or KeyboardInterrupt)"
        else:
            message = "the cell died while this test ran"
        tests.append(TestResult(nodeid, Outcome.ERROR, 0.0, message))

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
    return _verdict(events, tests, returncode, crashed, files_timed_out, strict, local_names)


def _verdict(
    events: Events,
    tests: Sequence[TestResult],
    returncode: int | None,
    crashed: Sequence[str],
    files_timed_out: Sequence[str],
    strict: bool,
    local_names: Iterable[str],
) -> tuple[CellStatus, str | None, list[TestResult]]:
    """The status of a cell whose process got to its end, worst first, every cause named."""
    tests = list(tests)
    failed = sum(t.outcome is Outcome.FAILED for t in tests)
    differently = sum(t.outcome is Outcome.FAILED_DIFFERENTLY for t in tests)
    errors = [t for t in tests if t.outcome is Outcome.ERROR]
    parts = [*crashed, *files_timed_out]
    parts += [f"{failed} test(s) failed unexpectedly"] if failed else []
    parts += [f"{differently} failed differently than expected"] if differently else []
    collect = [
        t for t in errors if t.nodeid in {str(c.get("nodeid")) for c in events.collect_errors}
    ]
    missing = list(
        dict.fromkeys(
            m
            for t in collect
            if (m := missing_dependency(short_message(t.message), local_names)) is not None
        )
    )
    parts += [f"missing dependency {m!r} (add it to deps)" for m in missing]
    if collect:
        first = collect[0]
        parts.append(
            f"{len(collect)} file(s) failed to import or collect (first: {first.nodeid}: "
            f"{short_message(first.message)})"
        )
    other = [t for t in errors if t not in collect and not any(t.nodeid in p for p in parts)]
    if other:
        first = other[0]
        parts.append(
            f"{len(other)} error(s) (first: {first.nodeid}: {short_message(first.message)})"
        )
    if crashed:
        return CellStatus.CRASHED, "; ".join(parts), tests
    if files_timed_out:
        return CellStatus.TIMED_OUT, "; ".join(parts), tests
    if failed or differently:
        return CellStatus.FAILED, "; ".join(parts), tests
    if errors:
        return CellStatus.ERROR, "; ".join(parts), tests
    if not events.per_file and returncode not in (0, 1, 5):
        return CellStatus.ERROR, f"pytest exited with {returncode}", tests
    if not tests:
        return CellStatus.ERROR, "no tests were collected", tests
    if all(t.outcome in (Outcome.SKIPPED, Outcome.NOT_RUN) for t in tests):
        return CellStatus.ERROR, f"all {len(tests)} test(s) skipped: the cell tested nothing", tests
    if any(t.outcome is Outcome.NOT_RUN for t in tests):
        names = [t.nodeid for t in tests if t.outcome is Outcome.NOT_RUN]
        return CellStatus.ERROR, f"{len(names)} file(s) not run (first: {names[0]})", tests
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
        # Judged within the cell's scope: a test of a suite written for other cells is not
        # missing here, nor is one whose file failed to import here (its E row says why).
        # A file's own row (its import failed in another cell) is not missing where the
        # file imported and its tests ran.
        in_scope = set(result.files) if result.files else None
        files_here = {file_of(n) for n in have}
        missing = [
            n
            for n in known
            if n not in have
            and file_of(n) not in have
            and not ("::" not in n and n in files_here)
            and (in_scope is None or file_of(n) in in_scope)
        ]
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
