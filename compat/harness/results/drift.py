"""Porting drift: where a test's porting snapshot changes between neighbouring versions.

A snapshot (``compat.shims.snapshot``) lists what metadata porting produced in each graph
a test checks. Cells whose snapshots of a test are identical form one class; along the
torch axis of each (stack, python) line, every change between neighbours is reported as
a node-level diff: ``2.3.1 -> 2.4.1: converted: dequantize_per_tensor after matmul: tag
'aten.matmul.default' -> 'aten.add.Tensor'``. A drift is not a failure, but never silent.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from compat.harness.redact import redact

__all__ = ["Drift", "SnapshotClass", "diff_snapshots", "drifts", "snapshot_classes"]

Snapshots = Mapping[str, Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class Drift:
    """One test's snapshot changing between two cells (neighbours, or runs, or columns)."""

    test: str
    line: str  # "torch.ao py3.11"
    before: str  # the cells' labels: "2.3.1", or a cell id
    after: str
    before_cell: str
    after_cell: str
    changes: tuple[str, ...]

    def headline(self) -> str:
        if not self.changes:
            return f"{self.test} [{self.line}] {self.before} -> {self.after}: changed"
        more = f" (+{len(self.changes) - 1} more)" if len(self.changes) > 1 else ""
        return f"{self.test} [{self.line}] {self.before} -> {self.after}: {self.changes[0]}{more}"


@dataclass
class SnapshotClass:
    """Cells in which one test's snapshot is the same."""

    test: str
    cells: list[str] = field(default_factory=list)


def _key(entries: Sequence[Mapping[str, Any]]) -> list[tuple[tuple[Any, Any, int], Mapping]]:
    """Align nodes by (op, what it follows, occurrence), never by name or position alone."""
    seen: dict[tuple[Any, Any], int] = {}
    keyed = []
    for entry in entries:
        base = (entry.get("op"), entry.get("after"))
        seen[base] = seen.get(base, 0) + 1
        keyed.append(((*base, seen[base]), entry))
    return keyed


def _node(key: tuple[Any, Any, int]) -> str:
    op, after, n = key
    where = f" after {after}" if after else ""
    return f"{op}{where}" + (f" #{n}" if n > 1 else "")


def _show(value: Any) -> str:
    return "none" if value is None else repr(value)


def diff_snapshots(before: Snapshots, after: Snapshots) -> list[str]:
    """Node-level differences, stage by stage, in graph order."""
    changes: list[str] = []
    for stage in list(dict.fromkeys([*before, *after])):
        old, new = dict(_key(before.get(stage, ()))), dict(_key(after.get(stage, ())))
        if stage not in before:
            changes.append(f"{stage}: recorded only in the newer ({len(new)} nodes)")
            continue
        if stage not in after:
            changes.append(f"{stage}: no longer recorded ({len(old)} nodes before)")
            continue
        if list(old) != list(new) and set(old) == set(new):
            changes.append(f"{stage}: the same nodes in another graph order")
        for key in list(dict.fromkeys([*old, *new])):
            if key not in new:
                changes.append(f"{stage}: {_node(key)}: removed (tag {_show(old[key].get('tag'))})")
            elif key not in old:
                changes.append(f"{stage}: {_node(key)}: added (tag {_show(new[key].get('tag'))})")
            else:
                for name in ("tag", "source"):
                    a, b = old[key].get(name), new[key].get(name)
                    if a != b:
                        changes.append(f"{stage}: {_node(key)}: {name} {_show(a)} -> {_show(b)}")
    # Tag changes are what porting is about: they come first, lineage after.
    return sorted(
        changes, key=lambda c: 0 if ": tag " in c or "added" in c or "removed" in c else 1
    )


def _fingerprint(snapshots: Snapshots) -> str:
    return json.dumps(snapshots, sort_keys=True)


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def _cell_line(result: Any) -> str:
    cell = result.cell
    stack = "torch.ao" if cell.stack == "torch.ao" else "torchao"
    return f"{stack} py{cell.python}"


def _label(result: Any) -> str:
    cell = result.cell
    ao = f" (ao {cell.torchao})" if cell.torchao else ""
    channel = "" if cell.channel == "release" else f"{cell.channel} "
    return f"{channel}{_torch_of(result)}{ao}"


def _torch_of(result: Any) -> str:
    """The version to order a line by: the cell's, or the build a nightly resolved to."""
    torch = str(result.cell.torch)
    return torch if _version(torch) != Version("0") else str(result.fingerprint.get("torch"))


def _by_test(result: Any) -> dict[str, Snapshots]:
    return {t.nodeid: t.snapshots for t in result.tests if getattr(t, "snapshots", None)}


def snapshot_classes(results: Iterable[Any]) -> dict[str, list[SnapshotClass]]:
    """For each test, the cells grouped by identical snapshot (in the order first seen)."""
    classes: dict[str, dict[str, SnapshotClass]] = {}
    for result in results:
        for test, snaps in _by_test(result).items():
            group = classes.setdefault(test, {}).setdefault(
                _fingerprint(snaps), SnapshotClass(test)
            )
            group.cells.append(result.cell_id)
    return {test: list(groups.values()) for test, groups in classes.items()}


def drifts(results: Sequence[Any]) -> list[Drift]:
    """Every snapshot change between torch-neighbours of the same stack and Python."""
    lines: dict[str, list[Any]] = {}
    for result in results:
        if _by_test(result):
            lines.setdefault(_cell_line(result), []).append(result)
    found: list[Drift] = []
    for line, cells in lines.items():
        cells = sorted(cells, key=lambda r: (_version(_torch_of(r)), r.cell.channel))
        for older, newer in itertools.pairwise(cells):
            old, new = _by_test(older), _by_test(newer)
            for test in [t for t in old if t in new]:
                if _fingerprint(old[test]) != _fingerprint(new[test]):
                    found.append(
                        Drift(
                            redact(test).rsplit("::", 1)[-1],
                            line,
                            _label(older),
                            _label(newer),
                            older.cell_id,
                            newer.cell_id,
                            tuple(diff_snapshots(old[test], new[test])),
                        )
                    )
    return found
