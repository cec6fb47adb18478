from __future__ import annotations

import json
from pathlib import Path

import pytest

from compat.events import EVENTS_SCHEMA
from compat.harness.config.matrix import Cell, Expectation, Selector
from compat.harness.errors import ResultFileError
from compat.harness.results.classify import (
    Events,
    SessionEnd,
    classify,
    flag_missing_tests,
    read_events,
)
from compat.harness.results.model import CellResult, CellStatus, Outcome
from compat.harness.results.model import TestResult as Result

T1, T2, T3 = "t.py::test_one", "t.py::test_two", "t.py::test_three"


def events_file(tmp_path: Path, lines: list[object], tail: str = "") -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + tail, encoding="utf-8")
    return path


def start(**fp: object) -> dict[str, object]:
    return {
        "event": "session_start",
        "schema": EVENTS_SCHEMA,
        "fingerprint": {"torch": "2.8.0", **fp},
    }


def rec(nodeid: str, outcome: str, message: str | None = None) -> dict[str, object]:
    return {
        "event": "test",
        "nodeid": nodeid,
        "outcome": outcome,
        "duration": 0.5,
        "message": message,
    }


FINISH_EVENT = {"event": "session_finish", "exitstatus": 0, "routes": {"pt2e": "torch.ao"}}
FINISH = SessionEnd.from_event(FINISH_EVENT)
CELL = Cell("3.11", "2.8.0", "torch.ao")


def test_truncated_last_line_keeps_everything_before(tmp_path: Path) -> None:
    path = events_file(
        tmp_path,
        [start(), {"event": "test_start", "nodeid": T1}, rec(T1, "passed")],
        tail='{"event": "test_st',
    )
    events = read_events(path)
    assert events.corrupt_lines == 1
    assert list(events.tests) == [T1]
    assert events.fingerprint["torch"] == "2.8.0"


def test_passed_cell() -> None:
    events = Events(
        fingerprint={"torch": "2.8.0"}, tests={T1: rec(T1, "passed")}, started=[T1], finish=FINISH
    )
    status, reason, tests = classify(events=events, returncode=0, timed_out=False, expected={})
    assert (status, reason) == (CellStatus.PASSED, None)
    assert [t.outcome for t in tests] == [Outcome.PASSED]


def expect(reason: str, *, raises: str | None = None, match: str | None = None) -> Expectation:
    return Expectation("*", Selector(), reason, raises=raises, match=match)


def failed(
    nodeid: str, exc_types: list[str], exc_message: str, message: str = "source listing"
) -> dict[str, object]:
    return {**rec(nodeid, "failed", message), "exc_types": exc_types, "exc_message": exc_message}


def test_expected_failure_and_fixed() -> None:
    events = Events(
        tests={T1: failed(T1, ["ValueError", "Exception"], "boom"), T2: rec(T2, "passed")},
        started=[T1, T2],
        finish=FINISH,
    )
    status, _, tests = classify(
        events=events,
        returncode=1,
        timed_out=False,
        expected={T1: expect("known", raises="ValueError"), T2: expect("known too", match="x")},
    )
    assert status is CellStatus.PASSED
    assert [t.outcome for t in tests] == [Outcome.XFAILED, Outcome.XPASSED]
    assert tests[0].expected_reason == "known"
    assert tests[0].expected_failure == "ValueError"


def test_strict_turns_a_fixed_test_into_a_failed_cell() -> None:
    events = Events(tests={T1: rec(T1, "passed")}, started=[T1], finish=FINISH)
    status, reason, tests = classify(
        events=events,
        returncode=0,
        timed_out=False,
        expected={T1: expect("known", raises="ValueError")},
        strict=True,
    )
    assert status is CellStatus.FAILED
    assert reason == "1 expected failure(s) now pass (strict: retire the expectation)"
    assert tests[0].outcome is Outcome.XPASSED


@pytest.mark.parametrize(
    ("raises", "match", "exc_types", "exc_message", "outcome"),
    [
        ("ValueError", None, ["ValueError", "builtins.ValueError"], "x", Outcome.XFAILED),
        ("Exception", None, ["ValueError", "Exception"], "x", Outcome.XFAILED),  # a base
        ("builtins.ValueError", None, ["ValueError", "builtins.ValueError"], "x", Outcome.XFAILED),
        ("ValueError", None, ["AssertionError"], "x", Outcome.FAILED_DIFFERENTLY),
        (None, "has tag .* associated", [], "a has tag t associated with b", Outcome.XFAILED),
        (None, "has tag", ["AssertionError"], "assert {'x'} == {'y'}", Outcome.FAILED_DIFFERENTLY),
        ("ValueError", "walk", ["ValueError"], "another message", Outcome.FAILED_DIFFERENTLY),
    ],
)
def test_a_failure_the_expectation_does_not_explain_is_failed_differently(
    raises: str | None, match: str | None, exc_types: list[str], exc_message: str, outcome: Outcome
) -> None:
    events = Events(tests={T1: failed(T1, exc_types, exc_message)}, started=[T1], finish=FINISH)
    status, reason, tests = classify(
        events=events,
        returncode=1,
        timed_out=False,
        expected={T1: expect("r", raises=raises, match=match)},
    )
    assert tests[0].outcome is outcome
    if outcome is Outcome.FAILED_DIFFERENTLY:
        assert (status, reason) == (CellStatus.FAILED, "1 failed differently than expected")
        assert tests[0].outcome.unexpected


def test_match_never_searches_the_source_listing() -> None:
    """pytest's report quotes the test's source, which holds the very text a match seeks."""
    record = failed(
        T1,
        ["AssertionError"],
        "assert {'a'} == {'b'}",
        message='>  assert ok, "did not preserve quantization tag"\nE  assert',
    )
    events = Events(tests={T1: record}, started=[T1], finish=FINISH)
    _, _, tests = classify(
        events=events,
        returncode=1,
        timed_out=False,
        expected={T1: expect("r", match="did not preserve")},
    )
    assert tests[0].outcome is Outcome.FAILED_DIFFERENTLY


def test_a_cell_whose_tests_all_skipped_is_not_a_pass() -> None:
    events = Events(
        tests={T1: rec(T1, "skipped"), T2: rec(T2, "skipped")}, started=[T1, T2], finish=FINISH
    )
    status, reason, _ = classify(events=events, returncode=0, timed_out=False, expected={})
    assert (status, reason) == (CellStatus.ERROR, "all 2 test(s) skipped: the cell tested nothing")


def test_a_test_other_cells_ran_is_missing_not_passed() -> None:
    def cell(cell_id: str, nodeids: list[str]) -> CellResult:
        return CellResult(
            cell_id, CELL, CellStatus.PASSED, tests=[Result(n, Outcome.PASSED) for n in nodeids]
        )

    full, short, dead = cell("a", [T1, T2]), cell("b", [T1]), cell("c", [])
    dead.status = CellStatus.INSTALL_FAILED
    assert flag_missing_tests([full, short, dead]) == [short]
    assert short.status is CellStatus.ERROR
    assert short.reason == "1 test(s) that other cells ran are missing here (test_two)"
    assert [(t.nodeid, t.outcome) for t in short.tests] == [
        (T1, Outcome.PASSED),
        (T2, Outcome.NOT_RUN),
    ]
    assert full.status is CellStatus.PASSED
    assert dead.tests == []


def test_unexpected_failure() -> None:
    events = Events(tests={T1: rec(T1, "failed", "boom")}, started=[T1], finish=FINISH)
    status, reason, _ = classify(events=events, returncode=1, timed_out=False, expected={})
    assert status is CellStatus.FAILED
    assert reason == "1 test(s) failed unexpectedly"


def test_crash_keeps_finished_tests_and_names_the_running_one() -> None:
    events = Events(tests={T1: rec(T1, "passed")}, started=[T1, T2])
    status, reason, tests = classify(events=events, returncode=-11, timed_out=False, expected={})
    assert status is CellStatus.CRASHED
    assert reason == f"killed by SIGSEGV in {T2}"
    assert {t.nodeid: t.outcome for t in tests} == {T1: Outcome.PASSED, T2: Outcome.ERROR}


def test_timeout_wins_over_signal() -> None:
    events = Events(started=[T1])
    status, reason, _ = classify(events=events, returncode=-15, timed_out=True, expected={})
    assert (status, reason) == (CellStatus.TIMED_OUT, f"timed out in {T1}")


def test_import_failure() -> None:
    events = Events(
        fingerprint={"torch_import_error": "ImportError: libcudnn.so.9: nope"}, finish=FINISH
    )
    status, reason, _ = classify(events=events, returncode=2, timed_out=False, expected={})
    assert (status, reason) == (CellStatus.IMPORT_FAILED, "ImportError: libcudnn.so.9: nope")


def test_a_collection_error_is_a_row_of_its_own() -> None:
    message = "t.py:1: in <module>\n    import expecttest\nE   SyntaxError: invalid syntax"
    events = Events(collect_errors=[{"nodeid": "t.py", "message": message}], finish=FINISH)
    status, reason, tests = classify(events=events, returncode=2, timed_out=False, expected={})
    assert status is CellStatus.ERROR
    assert (
        reason == "1 file(s) failed to import or collect (first: t.py: SyntaxError: invalid syntax)"
    )
    assert [(t.nodeid, t.outcome) for t in tests] == [("t.py", Outcome.ERROR)]


def test_exit_without_session_finish_is_a_crash() -> None:
    events = Events(tests={T1: rec(T1, "passed")}, started=[T1])
    status, reason, _ = classify(events=events, returncode=3, timed_out=False, expected={})
    assert status is CellStatus.CRASHED
    assert "before finishing" in (reason or "")


def test_round_trip(tmp_path: Path) -> None:
    events = Events(tests={T1: rec(T1, "failed", "boom")}, started=[T1], finish=FINISH)
    status, reason, tests = classify(events=events, returncode=1, timed_out=False, expected={})
    result = CellResult("c", CELL, status, reason, tests=tests, routes={"pt2e": "torch.ao"})
    result.write(tmp_path / "result.json")
    assert CellResult.read(tmp_path / "result.json") == result


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"schema": 1, "cell_id": ', "unreadable or truncated"),
        ('{"schema": 99}', "result schema 99"),
        ('{"schema": 1, "status": "exploded", "cell_id": "c", "cell": {}}', "not a cell result"),
        ("[]", "not a cell result"),
    ],
)
def test_bad_result_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "result.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ResultFileError) as info:
        CellResult.read(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_pytest_that_never_started_is_an_error() -> None:
    status, reason, _ = classify(events=Events(), returncode=4, timed_out=False, expected={})
    assert (status, reason) == (CellStatus.ERROR, "pytest exited with 4 before the session started")


def test_a_stream_of_another_events_schema_is_refused_not_misread(tmp_path: Path) -> None:
    path = events_file(
        tmp_path, [{**start(), "schema": EVENTS_SCHEMA + 1}, rec(T1, "passed"), FINISH_EVENT]
    )
    events = read_events(path)
    assert events.tests == {}
    status, reason, _ = classify(events=events, returncode=0, timed_out=False, expected={})
    assert status is CellStatus.ERROR
    assert reason == (
        f"the cell's plugin wrote events schema {EVENTS_SCHEMA + 1}; "
        f"this harness reads {EVENTS_SCHEMA}"
    )


def test_a_file_the_cells_timeout_left_unstarted_is_a_timed_out_cell() -> None:
    files = ["a/test_x.py", "a/test_y.py"]
    events = Events(
        fingerprint={"isolation": "file"},
        files=files,
        tests={"a/test_x.py::t": rec("a/test_x.py::t", "passed")},
        started=["a/test_x.py::t"],
        file_finishes={"a/test_x.py": SessionEnd(0)},
        file_exits={
            "a/test_x.py": {"nodeid": "a/test_x.py", "returncode": 0, "seconds": 9.0},
            "a/test_y.py": {"nodeid": "a/test_y.py", "not_run": "timeout"},
        },
        finish=FINISH,
    )
    status, reason, tests = classify(events=events, returncode=0, timed_out=False, expected={})
    assert status is CellStatus.TIMED_OUT
    assert reason == "a/test_y.py: not run, the cell's timeout ran out first"
    assert {t.nodeid: t.outcome for t in tests}["a/test_y.py"] is Outcome.NOT_RUN
