"""Which test files of a cell run again, and the cached verdicts of the others, replayed.

A file is reused when its key (:mod:`.key`) finds a stored entry (:mod:`.store`) and no
``--refresh`` glob names it; its stored events are written into the cell's event stream
as if its process had just streamed them, so the one classifier judges cached and fresh
files alike, and each of its tests is marked ``cached`` (from which run, when).

Only definitive verdicts are stored: every test of the file passed, was skipped or failed
as its expectation says, and its process ended as pytest ends. A failure, an error, a
crash, a timeout or a flaky pass always runs again (and drops an entry of the same key).
Under ``isolation = "cell"`` (one process for every file) a cell is reused whole or not
at all.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compat.events import (
    COLLECT_ERROR,
    EVENTS_SCHEMA,
    FILE_EXIT,
    FILE_FINISH,
    SESSION_FINISH,
    SESSION_START,
    TEST,
)
from compat.harness.cache.key import FileKey, Hasher, cell_parts, changed_parts, file_parts
from compat.harness.cache.store import FILE_EVENTS, Entry, Store, describe_parts
from compat.harness.config.matrix import Cell, Matrix
from compat.harness.config.suites import TestFile, file_of
from compat.harness.files import atomic_write_text, read_regular
from compat.harness.results.model import Outcome, TestResult

__all__ = [
    "CachePolicy",
    "FilePlan",
    "add_cached_junit",
    "cache_record",
    "mark_cached",
    "plan_cell",
    "read_raw",
    "replay",
    "store_verdicts",
]

DEFINITIVE = frozenset({Outcome.PASSED, Outcome.SKIPPED, Outcome.XFAILED})
ENDED_AS_PYTEST_ENDS = (0, 1, 5)  # 1: a failure the matrix expects is still pytest's failure


@dataclass
class CachePolicy:
    """How a run uses the store: ``lookup`` False (``--no-cache``) runs every file and
    stores the fresh verdicts; ``refresh`` globs rerun the files they name."""

    store: Store
    run_id: str
    date: str = field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        )
    )
    lookup: bool = True
    refresh: tuple[str, ...] = ()
    project_roots: tuple[Path, ...] = ()  # an installed user project's sources (hashed)
    hasher: Hasher = field(default_factory=Hasher)


@dataclass
class FilePlan:
    """One file of a cell: its key, the entry that answers it (a hit), or why it runs."""

    test: TestFile
    key: FileKey
    entry: Entry | None = None
    why: str = ""

    def record(self) -> dict[str, Any]:
        """What ``result.json`` says of the file: its key, its parts, cached or why not."""
        return {
            "key": self.key.digest[:16],
            "parts": describe_parts(self.key.parts),
            "cached": self.entry.origin if self.entry else None,
            "ran_because": None if self.entry else self.why,
        }


def _refreshed(globs: Sequence[str], file: str, entry: Entry) -> bool:
    names = [file] + [str(r.get("nodeid")) for r in entry.events if r.get("event") == TEST]
    return any(
        fnmatch.fnmatchcase(n, g) or fnmatch.fnmatchcase(n.rsplit("::", 1)[-1], g)
        for n in names
        for g in globs
    )


def _why_missed(store: Store, cell: Cell, test: TestFile, key: FileKey) -> str:
    last = store.last_parts(cell.id, test.nodeid)
    if last is None:
        return "not in the cache"
    changed = changed_parts(last, key.parts)
    if changed:
        return f"changed: {', '.join(changed)}"
    return "no definitive verdict stored for this key (it failed last time, or was pruned)"


def plan_cell(
    policy: CachePolicy,
    matrix: Matrix,
    cell: Cell,
    files: Sequence[TestFile],
    env_dir: Path,
    *,
    base: Path,
    rootdir: Path,
) -> list[FilePlan]:
    """Each file of the cell with its key and, where the store answers it, its entry."""
    shared = cell_parts(
        matrix, cell, env_dir, policy.hasher, project_roots=list(policy.project_roots)
    )
    plans = []
    for test in files:
        own = file_parts(
            test,
            base=base,
            rootdir=rootdir,
            hasher=policy.hasher,
            isolation=matrix.isolation,
            cell_files=files,
        )
        plan = FilePlan(test, FileKey({**shared, **own}))
        if not policy.lookup:
            plan.why = "--no-cache"
        else:
            entry = policy.store.get(plan.key.digest)
            if entry is None:
                plan.why = _why_missed(policy.store, cell, test, plan.key)
            elif policy.refresh and _refreshed(policy.refresh, test.nodeid, entry):
                plan.why = "--refresh"
            else:
                plan.entry = entry
        plans.append(plan)
    if matrix.isolation == "cell" and any(p.entry is None for p in plans):
        for plan in plans:  # one process for all: every file runs with the one that must
            if plan.entry is not None:
                plan.entry, plan.why = None, "another file of the cell runs (isolation = cell)"
    return plans


def read_raw(path: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """The run's events by test file (the records a file's entry keeps), and the session's
    fingerprint; a line that is not a JSON object is left out (as the classifier does)."""
    by_file: dict[str, list[dict[str, Any]]] = {}
    fingerprint: dict[str, Any] = {}
    try:
        lines = read_regular(path).decode("utf-8", errors="replace").splitlines()
    except OSError:
        return by_file, fingerprint
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("event") == SESSION_START and record.get("schema") == EVENTS_SCHEMA:
            fingerprint = dict(record.get("fingerprint") or {})
        elif record.get("event") in FILE_EVENTS:
            by_file.setdefault(file_of(str(record.get("nodeid"))), []).append(record)
    return by_file, fingerprint


def replay(path: Path, hits: Sequence[FilePlan], *, alone: bool) -> None:
    """Write the hits' stored events into the cell's stream: after the run's own events,
    or (``alone``: nothing ran) as a whole session of their own, with the fingerprint the
    newest of them stored."""
    records = [
        {**r, "cached": plan.entry.origin} if r.get("event") == FILE_EXIT else r
        for plan in hits
        if plan.entry
        for r in plan.entry.events
    ]
    if alone:
        newest = max((p.entry for p in hits if p.entry), key=lambda e: e.date)
        fingerprint = {**newest.fingerprint, "cached": True}
        files = [p.test.nodeid for p in hits]
        start = {"event": SESSION_START, "schema": EVENTS_SCHEMA, "fingerprint": fingerprint}
        records = [
            {**start, "files": files},
            *records,
            {"event": SESSION_FINISH, "exitstatus": 0, "files_run": 0, "cached": True},
        ]
        text = ""
    else:
        try:
            text = read_regular(path).decode("utf-8", errors="replace")
        except OSError:
            text = ""
        if text and not text.endswith("\n"):
            text += "\n"
    atomic_write_text(path, text + "".join(json.dumps(r) + "\n" for r in records))


def _definitive(
    records: Sequence[Mapping[str, Any]], rows: Sequence[TestResult], per_file: bool
) -> bool:
    """Whether a file's verdicts stand: every test definitive, nothing failed to collect,
    and (a process per file) its process ended as pytest ends."""
    if any(r.get("event") == COLLECT_ERROR for r in records):
        return False
    if any(t.outcome not in DEFINITIVE or t.reruns for t in rows):
        return False
    if not per_file:
        return bool(rows)
    exits = [r for r in records if r.get("event") == FILE_EXIT]
    if len(exits) != 1 or not any(r.get("event") == FILE_FINISH for r in records):
        return False
    end = exits[0]
    if end.get("not_run") or end.get("timed_out") or end.get("signal"):
        return False
    if end.get("returncode") not in ENDED_AS_PYTEST_ENDS:
        return False
    return bool(rows) or end.get("returncode") == 5  # 5: every test deselected (-k)


def store_verdicts(
    policy: CachePolicy,
    cell: Cell,
    plans: Sequence[FilePlan],
    raw: Mapping[str, Sequence[dict[str, Any]]],
    fingerprint: Mapping[str, Any],
    tests: Sequence[TestResult],
    *,
    per_file: bool,
) -> None:
    """Store each file that ran and whose verdicts are definitive; drop the entry of any
    other that ran (its key's last verdict is not the stored one any more)."""
    import_error = fingerprint.get("torch_import_error") or fingerprint.get("torchao_import_error")
    rows: dict[str, list[TestResult]] = {}
    for test in tests:
        rows.setdefault(file_of(test.nodeid), []).append(test)
    ran = [p for p in plans if p.entry is None]
    if not per_file and not all(t.outcome in DEFINITIVE for t in tests):
        ran_ok: set[str] = set()  # one process: the cell's verdicts stand together or not
    else:
        ran_ok = {
            p.test.nodeid
            for p in ran
            if not import_error
            and _definitive(raw.get(p.test.nodeid, []), rows.get(p.test.nodeid, []), per_file)
        }
    for plan in ran:
        if plan.test.nodeid not in ran_ok:
            policy.store.drop(plan.key.digest)
            continue
        policy.store.put(
            Entry(
                plan.key.digest,
                dict(plan.key.parts),
                cell.id,
                plan.test.nodeid,
                policy.run_id,
                policy.date,
                dict(fingerprint),
                [dict(r) for r in raw.get(plan.test.nodeid, [])],
            )
        )


def mark_cached(tests: Iterable[TestResult], plans: Sequence[FilePlan]) -> None:
    """Each test of a reused file says so: ``from run <id>, <date>``."""
    origin = {p.test.nodeid: p.entry.origin for p in plans if p.entry}
    for test in tests:
        test.cached = origin.get(file_of(test.nodeid))


def cache_record(plans: Sequence[FilePlan]) -> dict[str, Any]:
    """``result.json``'s ``cache``: each file's key parts, and cached or why it ran."""
    return {
        "files": {p.test.nodeid: p.record() for p in plans},
        "cached_files": sum(p.entry is not None for p in plans),
    }


def _case(test: TestResult) -> ET.Element:
    file, _, rest = test.nodeid.partition("::")
    *classes, name = rest.split("::") if rest else [file]
    module = file.removesuffix(".py").replace("/", ".")
    case = ET.Element(
        "testcase",
        classname=".".join([module, *classes]),
        name=name,
        time=f"{test.duration:.3f}",
    )
    properties = ET.SubElement(case, "properties")
    ET.SubElement(properties, "property", name="compat.cached", value=test.cached or "")
    if test.outcome is not Outcome.PASSED:
        ET.SubElement(case, "skipped", message=f"{test.outcome.value}: {test.message or ''}")
    return case


def add_cached_junit(path: Path, tests: Sequence[TestResult], suite_name: str) -> None:
    """The cached tests as one more suite of the cell's JUnit file (made if nothing ran),
    each test case with a ``compat.cached`` property naming the run it comes from."""
    cached = [t for t in tests if t.cached]
    if not cached:
        return
    root: ET.Element | None = None
    if path.is_file():
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError):
            root = None
    if root is None:
        root = ET.Element("testsuites")
    elif root.tag == "testsuite":
        wrapper = ET.Element("testsuites")
        wrapper.append(root)
        root = wrapper
    suite = ET.SubElement(
        root,
        "testsuite",
        name=suite_name,
        tests=str(len(cached)),
        failures="0",
        errors="0",
        skipped=str(sum(t.outcome is not Outcome.PASSED for t in cached)),
    )
    suite.extend(_case(t) for t in cached)
    text = ET.tostring(root, encoding="unicode")
    atomic_write_text(path, "<?xml version='1.0' encoding='utf-8'?>\n" + text)
