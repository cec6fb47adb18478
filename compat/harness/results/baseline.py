"""Compare a run with a baseline ``results.json``: what regressed, what got fixed, what moved.

Cells are matched by id, tests by node id below the rootdir (so a moved matrix file still
compares). A regression is something that was fine
(passed, or an expected failure that passed) and now fails unexpectedly, at the test or
the cell level; it makes the gate fail even where the new result alone would not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compat.harness.errors import UsageError
from compat.harness.files import FileTooLarge, NotARegularFile, read_text_file
from compat.harness.processes import wait_for
from compat.harness.redact import redact
from compat.harness.results.drift import diff_snapshots
from compat.harness.results.model import CellResult, CellStatus, Outcome

__all__ = [
    "DIFF_LINES",
    "BaselineCell",
    "BaselineDiff",
    "baseline_cells",
    "diff_runs",
    "diff_sections",
    "load_baseline",
    "render_diff",
]

DIFF_LINES = 50  # lines per section of the diff on the console and in summary.md

_GOOD = {Outcome.PASSED.value, Outcome.XPASSED.value}
_BAD = {Outcome.FAILED.value, Outcome.ERROR.value, Outcome.FAILED_DIFFERENTLY.value}
_BAD_CELL = {s.value for s in CellStatus if s.unexpected}


@dataclass
class BaselineDiff:
    baseline: str
    regressions: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)
    appeared: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # other moves, e.g. passed -> skipped
    # The porting snapshot moved while the outcome may not have: not a failure, never silent.
    behaviour_changed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class BaselineCell:
    """A cell of a baseline ``results.json``, as far as the diff reads it."""

    status: str
    outcomes: dict[str, str]  # test key (below the rootdir) -> outcome
    snapshots: dict[str, Any]  # test key -> its porting snapshots, where one was recorded

    @classmethod
    def from_dict(cls, cell: Mapping[str, Any]) -> BaselineCell:
        """From a cell of ``results.json`` whose status and tests were checked."""
        tests = cell.get("tests") or []
        return cls(
            str(cell.get("status")),
            {test_key(str(t["nodeid"])): str(t["outcome"]) for t in tests},
            {
                test_key(str(t["nodeid"])): t["snapshots"]
                for t in tests
                if isinstance(t.get("snapshots"), dict)
            },
        )


def load_baseline(path: Path | str) -> dict[str, BaselineCell]:
    """Cells of a previous ``results.json`` by id; a bad file is a usage error (exit 2).

    Every field the diff reads is checked here, before a single cell runs: a baseline
    that would break the diff after an hour of cells is refused at once.
    """
    path = Path(path)
    try:
        # Read off the main thread: a signal that lands just as a blocking open (a FIFO, a
        # stalled network mount) returns would otherwise wait out the read that follows.
        doc = json.loads(wait_for(lambda: read_text_file(path), what=f"--baseline {path}"))
        return baseline_cells(doc)
    except FileNotFoundError:
        raise UsageError(f"--baseline {path}: baseline not found") from None
    except IsADirectoryError:
        raise UsageError(f"--baseline {path}: is a folder, not a results.json") from None
    except (NotARegularFile, FileTooLarge) as exc:
        raise UsageError(f"--baseline {path}: {exc.strerror}") from None
    except RecursionError:
        raise UsageError(f"--baseline {path}: not a results.json (nested too deeply)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"--baseline {path}: not a results.json ({type(exc).__name__}: {exc})"
        ) from None


def baseline_cells(doc: object) -> dict[str, BaselineCell]:
    """The cells of a ``results.json`` document by id, every field the diff reads checked
    (a ``TypeError``/``KeyError`` otherwise)."""
    if not isinstance(doc, dict):
        raise TypeError(f"expected an object, got {type(doc).__name__}")
    cells = doc.get("cells")
    if not isinstance(cells, list):
        raise KeyError("cells")
    found: dict[str, BaselineCell] = {}
    for number, cell in enumerate(cells):
        where = f"cells[{number}]"
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_id"), str):
            raise TypeError(f"{where}: expected an object with a string cell_id")
        if not isinstance(cell.get("status", ""), str):
            raise TypeError(f"{where}.status: expected a string")
        tests = cell.get("tests") or []
        if not isinstance(tests, list):
            raise TypeError(f"{where}.tests: expected a list")
        for index, test in enumerate(tests):
            if not (
                isinstance(test, dict)
                and isinstance(test.get("nodeid"), str)
                and isinstance(test.get("outcome"), str)
            ):
                raise TypeError(
                    f"{where}.tests[{index}]: expected an object with string nodeid and outcome"
                )
        found[cell["cell_id"]] = BaselineCell.from_dict(cell)
    return found


def test_key(nodeid: str) -> str:
    """``test_file.py::Class::test``: the same test whatever folder pytest's rootdir was."""
    return redact(nodeid).rsplit("/", 1)[-1]  # redacted before the cut, as everywhere


def diff_runs(
    baseline: Mapping[str, BaselineCell], results: Sequence[CellResult], *, name: str = "baseline"
) -> BaselineDiff:
    diff = BaselineDiff(name)
    current = {r.cell_id: r for r in results}
    diff.vanished = [cid for cid in baseline if cid not in current]
    for result in results:
        old = baseline.get(result.cell_id)
        if old is None:
            diff.appeared.append(result.cell_id)
            continue
        old_status, new_status = old.status, result.status.value
        old_tests = old.outcomes
        new_tests = {test_key(t.nodeid): t.outcome.value for t in result.tests}
        if (
            old_status not in _BAD_CELL
            and new_status in _BAD_CELL
            and not (new_status == CellStatus.FAILED.value and new_tests)
        ):
            # The cell itself broke (crash, import, timeout...): one regression for the cell.
            diff.regressions.append(f"{result.cell_id}: cell {old_status} -> {new_status}")
        elif old_status in _BAD_CELL and new_status == CellStatus.PASSED.value and not old_tests:
            diff.fixes.append(f"{result.cell_id}: cell {old_status} -> {new_status}")
        for nodeid in dict.fromkeys([*old_tests, *new_tests]):
            before, after = old_tests.get(nodeid), new_tests.get(nodeid)
            where = f"{result.cell_id}: {nodeid}"
            if before == after:
                if after in _BAD:
                    diff.still_failing.append(where)
                continue
            if after in _BAD and (
                before in _GOOD
                or (before is None and old_tests)
                or (before == Outcome.XFAILED.value and after == Outcome.FAILED_DIFFERENTLY.value)
            ):
                diff.regressions.append(f"{where}: {before or 'absent'} -> {after}")
            elif before in _BAD | {Outcome.XFAILED.value} and after in _GOOD:
                diff.fixes.append(f"{where}: {before} -> {after}")
            elif old_tests and new_tests:  # both ran: passed -> skipped, a test gone or new
                diff.changed.append(f"{where}: {before or 'absent'} -> {after or 'absent'}")
        diff.behaviour_changed += _snapshot_changes(result, old)
    return diff


def _snapshot_changes(result: CellResult, old: BaselineCell) -> list[str]:
    """Tests whose porting snapshot differs from the baseline's, with the first change."""
    before = old.snapshots
    lines = []
    for test in result.tests:
        key = test_key(test.nodeid)
        if not test.snapshots or not before.get(key) or before[key] == test.snapshots:
            continue
        changes = diff_snapshots(before[key], test.snapshots)
        more = f" (+{len(changes) - 1} more)" if len(changes) > 1 else ""
        lines.append(f"{result.cell_id}: {key}: {changes[0] if changes else 'changed'}{more}")
    return lines


def diff_sections(diff: BaselineDiff) -> list[tuple[str, list[str]]]:
    """The diff's sections in reading order, (label, lines): what every report shows."""
    return [
        ("regressions", diff.regressions),
        ("fixed", diff.fixes),
        ("still failing", diff.still_failing),
        ("cells that appeared", diff.appeared),
        ("cells that vanished", diff.vanished),
        ("other changes", diff.changed),
        ("behaviour changed (porting snapshot; not a failure)", diff.behaviour_changed),
    ]


def render_diff(diff: BaselineDiff, *, markdown: bool = False, limit: int | None = None) -> str:
    """The diff by section; with ``limit``, at most that many lines of each section (the
    rest counted, and all of them kept in results.json)."""
    bullet = "- " if markdown else "  "
    title = f"Against {diff.baseline}:"
    lines = [f"### {title}" if markdown else title]
    for label, items in diff_sections(diff):
        lines.append(f"{'**' if markdown else ''}{label}: {len(items)}{'**' if markdown else ''}")
        shown = items if limit is None else items[:limit]
        lines += [f"{bullet}{item}" for item in shown]
        if len(shown) < len(items):
            lines.append(
                f"{bullet}... and {len(items) - len(shown)} more (all of them: "
                "baseline_diff in results.json)"
            )
    return "\n".join(lines)
