"""Where cached verdicts live: one JSON file per key, addressed by the key's digest.

``<store>/entries/<2 hex>/<digest>.json`` holds a file's verdicts in one cell (the events
its pytest streamed, the cell's fingerprint, the run that made them); ``<store>/last/``
remembers, per (cell, file), the parts of the key stored last, so a rerun can say which
part changed. Every write is a temp file and a rename (``files.atomic_write_text``): two
runs storing the same key write the same content, and a reader sees a whole file or none.
An entry that is unreadable, of another schema, or whose content does not match the
digest it is stored under is ignored with a one-line warning, never trusted.

Pruned by ``gc`` (:func:`prune`): entries unused for ``max_age`` days first, then the
least recently used until the store fits its size budget. A hit touches its entry.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compat.events import (
    COLLECT_ERROR,
    FILE_EXIT,
    FILE_FINISH,
    FILE_START,
    TEST,
    TEST_START,
)
from compat.harness.cache.key import FileKey, digest
from compat.harness.config.suites import file_of
from compat.harness.files import atomic_write_text, read_regular

__all__ = ["STORE_SCHEMA", "Entry", "PruneReport", "Store", "describe_parts", "prune"]

STORE_SCHEMA = 1
FILE_EVENTS = frozenset({FILE_START, TEST_START, TEST, COLLECT_ERROR, FILE_FINISH, FILE_EXIT})
ENTRY_LIMIT = 64 * 2**20  # a larger file is not an entry this harness wrote


def _warn(text: str) -> None:
    print(f"compat: warning: {text}", file=sys.stderr)


@dataclass
class Entry:
    """A file's stored verdicts in one cell: its events, and where they came from."""

    key: str
    parts: dict[str, str]
    cell_id: str
    file: str  # the file's node id
    run_id: str
    date: str  # when the run stored it (ISO, UTC)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"from run {self.run_id}, {self.date}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": STORE_SCHEMA,
            "key": self.key,
            "parts": self.parts,
            "cell_id": self.cell_id,
            "file": self.file,
            "run_id": self.run_id,
            "date": self.date,
            "fingerprint": self.fingerprint,
            "events": self.events,
        }

    @classmethod
    def from_dict(cls, data: object, key: str) -> Entry:
        """The entry stored under ``key``; ``ValueError`` (the reason) for anything else."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("schema") != STORE_SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}, this harness reads {STORE_SCHEMA}")
        parts = data.get("parts")
        if not isinstance(parts, dict) or not all(isinstance(v, str) for v in parts.values()):
            raise ValueError("no key parts")
        if data.get("key") != key or FileKey(parts).digest != key:
            raise ValueError("its content is not that of the key it is stored under")
        texts = ("cell_id", "file", "run_id", "date")
        if not all(isinstance(data.get(k), str) for k in texts):
            raise ValueError("a field is missing")
        events, fingerprint = data.get("events"), data.get("fingerprint")
        if not isinstance(events, list) or not isinstance(fingerprint, dict):
            raise ValueError("no events")
        file = data["file"]
        for record in events:
            if not isinstance(record, dict) or record.get("event") not in FILE_EVENTS:
                raise ValueError("an event this harness does not replay")
            if file_of(str(record.get("nodeid"))) != file:
                raise ValueError(f"an event of another file ({record.get('nodeid')!r})")
        return cls(key, parts, data["cell_id"], file, data["run_id"], data["date"],
                   fingerprint, events)  # fmt: skip


class Store:
    """The verdict store under ``root`` (made on first write)."""

    def __init__(self, root: Path, warn: Callable[[str], None] = _warn) -> None:
        self.root = root
        self.warn = warn

    def _entry_path(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / f"{key}.json"

    def _last_path(self, cell_id: str, file: str) -> Path:
        return self.root / "last" / f"{digest(cell_id + chr(0) + file)[:32]}.json"

    def get(self, key: str) -> Entry | None:
        path = self._entry_path(key)
        try:
            data = json.loads(read_regular(path, ENTRY_LIMIT))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # unreadable, truncated, not JSON
            self.warn(f"verdict cache entry {path} ignored (unreadable: {exc})")
            return None
        try:
            entry = Entry.from_dict(data, key)
        except ValueError as exc:
            self.warn(f"verdict cache entry {path} ignored ({exc})")
            return None
        with contextlib.suppress(OSError):  # used: the last to be pruned
            os.utime(path)
        return entry

    def put(self, entry: Entry) -> None:
        """Store ``entry`` (a failure to write only costs the next run a rerun)."""
        try:
            atomic_write_text(self._entry_path(entry.key), json.dumps(entry.to_dict()))
            last = {"cell_id": entry.cell_id, "file": entry.file, "parts": entry.parts}
            atomic_write_text(self._last_path(entry.cell_id, entry.file), json.dumps(last))
        except OSError as exc:
            self.warn(f"verdict cache: could not store {entry.file} of {entry.cell_id}: {exc}")

    def drop(self, key: str) -> None:
        """Forget ``key``'s verdicts: the file ran again with that key and was not definitive
        (a flaky failure must not be answered by the pass stored before it)."""
        with contextlib.suppress(OSError):
            self._entry_path(key).unlink()

    def last_parts(self, cell_id: str, file: str) -> dict[str, str] | None:
        """The key parts last stored for this (cell, file), if any."""
        try:
            data = json.loads(read_regular(self._last_path(cell_id, file), ENTRY_LIMIT))
        except (OSError, ValueError):
            return None
        parts = data.get("parts") if isinstance(data, dict) else None
        if not isinstance(parts, dict) or data.get("file") != file:
            return None
        return {str(k): str(v) for k, v in parts.items()}


@dataclass
class PruneReport:
    removed: int = 0
    freed_bytes: int = 0
    kept: int = 0
    kept_bytes: int = 0


def prune(
    root: Path,
    *,
    budget_bytes: int | None = None,
    max_age_days: float | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> PruneReport:
    """Drop entries unused for ``max_age_days``, then the least recently used ones until
    the store holds at most ``budget_bytes``; "last" records of removed entries stay (they
    only explain a rerun)."""
    report = PruneReport()
    now = time.time() if now is None else now
    found: list[tuple[float, int, Path]] = []
    for path in (root / "entries").glob("*/*.json"):
        with contextlib.suppress(OSError):
            stat = path.stat()
            found.append((stat.st_mtime, stat.st_size, path))
    found.sort()  # least recently used first
    total = sum(size for _, size, _ in found)
    for used, size, path in found:
        old = max_age_days is not None and now - used > max_age_days * 86400
        over = budget_bytes is not None and total > budget_bytes
        if not (old or over):
            report.kept += 1
            report.kept_bytes += size
            continue
        if not dry_run:
            try:
                path.unlink()
            except OSError:
                report.kept += 1
                report.kept_bytes += size
                continue
        total -= size
        report.removed += 1
        report.freed_bytes += size
    return report


def describe_parts(parts: Mapping[str, str]) -> dict[str, str]:
    """The parts as a result shows them: short digests."""
    return {k: v[:16] for k, v in sorted(parts.items())}
