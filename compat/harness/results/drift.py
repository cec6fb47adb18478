"""Porting drift: where a test's porting snapshot changes between neighbouring versions.

A snapshot (``compat.shims.snapshot``) lists what metadata porting produced in each graph
a test checks. Cells whose snapshots of a test are identical form one class; along the
torch axis of each (stack, python) line, every change between neighbours is a node-level
diff, each change of one :class:`ChangeKind`: ``2.3.1 -> 2.4.1: converted:
dequantize_per_tensor after matmul: tag 'aten.matmul.default' -> 'aten.add.Tensor'`` is a
*tag changed*. A drift is not a failure, but never silent.

Nodes are matched across versions by an alignment in graph order that scores each pair
on its op, its tag, its ``from_node`` source, what it follows and whether q/dq nodes follow
it, so ``convolution`` in 2.3 and ``conv2d`` in 2.4, in the same place with the same tag,
are one node whose IR op was renamed, not one node removed and another added.

:func:`drift_findings` folds the node-level changes of a run into one :class:`Finding` per
(test group, version step, kind), merged across tests and across stacks when the change
is the same; renames and graph-order moves are findings of their own
(:attr:`ChangeKind.metadata` is false), which a report shows apart from metadata changes.
"""

from __future__ import annotations

import itertools
import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from packaging.version import InvalidVersion, Version

from compat.harness.redact import redact

__all__ = [
    "ChangeKind",
    "Drift",
    "Finding",
    "NodeChange",
    "SnapshotClass",
    "cross_stack_drifts",
    "diff_snapshots",
    "drift_findings",
    "drifts",
    "node_changes",
    "pair_drifts",
    "snapshot_classes",
]

Snapshots = Mapping[str, Sequence[Mapping[str, Any]]]
Entry = Mapping[str, Any]


class ChangeKind(Enum):
    """Every kind of node-level change between two snapshots."""

    TAG_CHANGED = "tag changed"
    TAG_LOST = "tag lost"
    TAG_GAINED = "tag gained"
    SOURCE_CHANGED = "source changed"
    SOURCE_LOST = "source lost"
    SOURCE_GAINED = "source gained"
    KEY_LOST = "metadata key lost"
    KEY_GAINED = "metadata key gained"
    NODE_ADDED = "node added"
    NODE_REMOVED = "node removed"
    OP_RENAMED = "IR op renamed"
    GRAPH_ORDER = "graph order only"

    @property
    def metadata(self) -> bool:
        """A change of what porting produced; renames and order moves are the IR's."""
        return self not in (ChangeKind.OP_RENAMED, ChangeKind.GRAPH_ORDER)

    @property
    def rank(self) -> int:
        """Reading order: what porting is about (tags) first, the IR's own changes last."""
        return list(ChangeKind).index(self)


_FIELD_KINDS = {
    "tag": (ChangeKind.TAG_CHANGED, ChangeKind.TAG_LOST, ChangeKind.TAG_GAINED),
    "source": (ChangeKind.SOURCE_CHANGED, ChangeKind.SOURCE_LOST, ChangeKind.SOURCE_GAINED),
}


_KEY_KINDS = (ChangeKind.KEY_LOST, ChangeKind.KEY_GAINED)


def _show(value: Any) -> str:
    return "none" if value is None else repr(value)


@dataclass(frozen=True)
class NodeChange:
    """One change of one node (or of a stage's order) between two snapshots."""

    kind: ChangeKind
    stage: str
    op: str  # the node's op (the newer's when it has one)
    where: str  # "conv2d after placeholder", "get_attr #2"
    before: str | None = None  # the old value (tag, source, op, key...)
    after: str | None = None  # the new value

    def text(self) -> str:
        """One readable line, as the reports and ``diff_snapshots`` print it."""
        k, head = self.kind, f"{self.stage}: {self.where}"
        if k in _FIELD_KINDS["tag"] or k in _FIELD_KINDS["source"]:
            name = "tag" if k in _FIELD_KINDS["tag"] else "source"
            return f"{head}: {name} {_show(self.before)} -> {_show(self.after)}"
        if k is ChangeKind.NODE_REMOVED:
            return f"{head}: removed (tag {_show(self.before)})"
        if k is ChangeKind.NODE_ADDED:
            return f"{head}: added (tag {_show(self.after)})"
        if k is ChangeKind.KEY_LOST:
            return f"{head}: metadata key {self.before!r} lost"
        if k is ChangeKind.KEY_GAINED:
            return f"{head}: metadata key {self.after!r} gained"
        if k is ChangeKind.OP_RENAMED:
            return f"{head}: op renamed {self.before} -> {self.after}"
        if self.before:
            return f"{head}: {self.before} -> {self.after}"
        return head if self.where.startswith("the same") else f"{head}: moved in graph order"


# --- matching nodes across versions ---------------------------------------------------------

_FIXED_OPS = frozenset({"placeholder", "get_attr", "output", "call_module", "call_method"})
_QDQ_FAMILIES = ("quantize", "dequantize", "choose_qparams")


def _family(op: str) -> str:
    """What an op may be renamed to: q/dq ops keep their family, graph inputs their kind."""
    if op in _FIXED_OPS:
        return op
    for family in _QDQ_FAMILIES:
        if op.startswith(family):
            return family
    return "compute"


def _followers(entries: Sequence[Entry]) -> set[str]:
    """The ops some node follows (``after``): which nodes have q/dq nodes after them."""
    return {str(e.get("after")) for e in entries if e.get("after")}


def _similarity(
    a: Entry, b: Entry, renames: Mapping[str, str], kids: tuple[set[str], set[str]]
) -> float:
    """How surely ``a`` (older) and ``b`` (newer) are one node; 0 means never."""
    op_a, op_b = str(a.get("op")), str(b.get("op"))
    if op_a != op_b and (_family(op_a) != _family(op_b) or _family(op_a) in _FIXED_OPS):
        return 0.0
    clues = 0.0
    if a.get("tag") is not None and a.get("tag") == b.get("tag"):
        clues += 2
    if a.get("source") is not None and a.get("source") == b.get("source"):
        clues += 1
    if renames.get(str(a.get("after")), a.get("after")) == b.get("after"):
        clues += 1
    if op_a != op_b and clues == 0:
        return 0.0  # a rename needs a witness: its tag, its source or its place
    has_kids = (op_a in kids[0], op_b in kids[1])
    bonus = 0.5 if has_kids[0] == has_kids[1] else 0.0
    return (10.0 if op_a == op_b else 3.0) + clues + bonus


def _align(
    old: Sequence[Entry], new: Sequence[Entry], renames: Mapping[str, str]
) -> list[tuple[int | None, int | None]]:
    """An order-preserving alignment of the two node lists maximising the similarity."""
    n, m = len(old), len(new)
    kids = (_followers(old), _followers(new))
    sim = [[_similarity(old[i], new[j], renames, kids) for j in range(m)] for i in range(n)]
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            take = sim[i][j] + best[i + 1][j + 1] if sim[i][j] > 0 else -1.0
            best[i][j] = max(take, best[i + 1][j], best[i][j + 1])
    pairs: list[tuple[int | None, int | None]] = []
    i = j = 0
    while i < n and j < m:
        if sim[i][j] > 0 and best[i][j] == sim[i][j] + best[i + 1][j + 1]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            pairs.append((i, None))
            i += 1
        else:
            pairs.append((None, j))
            j += 1
    pairs += [(k, None) for k in range(i, n)] + [(None, k) for k in range(j, m)]
    return pairs


def _places(entries: Sequence[Entry]) -> list[str]:
    """Each node as a reader finds it: ``op after producer``, ``#n`` for a repeat."""
    seen: dict[tuple[Any, Any], int] = {}
    names = []
    for entry in entries:
        base = (entry.get("op"), entry.get("after"))
        seen[base] = seen.get(base, 0) + 1
        where = f" after {base[1]}" if base[1] else ""
        names.append(f"{base[0]}{where}" + (f" #{seen[base]}" if seen[base] > 1 else ""))
    return names


def _content(entry: Entry, renames: Mapping[str, str] | None = None) -> str:
    """What makes a node the same node in another place: all but its metadata keys, which
    are compared once nodes are matched (a key lost is a change of the node, not another
    node)."""
    after = entry.get("after")
    if renames:
        after = renames.get(str(after), after)
    fields = {k: v for k, v in entry.items() if k != "keys"}
    return json.dumps({**fields, "after": after}, sort_keys=True, default=str)


def _key_changes(stage: str, op: str, where: str, a: Entry, b: Entry) -> list[NodeChange]:
    """Metadata keys one matched node lost or gained (format-1 snapshots carry none)."""
    keys_a, keys_b = a.get("keys"), b.get("keys")
    if keys_a is None or keys_b is None:
        return []
    lost = [NodeChange(ChangeKind.KEY_LOST, stage, op, where, str(k)) for k in keys_a]
    gained = [NodeChange(ChangeKind.KEY_GAINED, stage, op, where, None, str(k)) for k in keys_b]
    return [c for c in lost if c.before not in keys_b] + [
        c for c in gained if c.after not in keys_a
    ]


def _same_content_pairs(old: Sequence[Entry], new: Sequence[Entry]) -> list[tuple[int, int]]:
    """Each old node paired with the first unpaired new node of the same content."""
    free = list(range(len(new)))
    pairs = []
    for i, entry in enumerate(old):
        j = next((j for j in free if _content(new[j]) == _content(entry)), None)
        if j is not None:
            free.remove(j)
            pairs.append((i, j))
    return pairs


def _stage_changes(stage: str, old: Sequence[Entry], new: Sequence[Entry]) -> list[NodeChange]:
    if old == new:  # most neighbours: nothing to align (and no tie to break the wrong way)
        return []
    if [_content(e) for e in old] != [_content(e) for e in new] and sorted(
        map(_content, old)
    ) == sorted(map(_content, new)):
        new_at = _places(new)
        keys = [
            change
            for i, j in _same_content_pairs(old, new)
            for change in _key_changes(stage, str(new[j].get("op")), new_at[j], old[i], new[j])
        ]
        order = NodeChange(
            ChangeKind.GRAPH_ORDER, stage, "", "the same nodes in another graph order"
        )
        return [order, *keys]
    renames: dict[str, str] = {}
    for _ in range(2):  # the second pass sees q/dq nodes' producers through the renames
        pairs = _align(old, new, renames)
        renames = {
            str(old[i]["op"]): str(new[j]["op"])
            for i, j in pairs
            if i is not None and j is not None and old[i].get("op") != new[j].get("op")
        }
    old_at, new_at = _places(old), _places(new)
    changes: list[NodeChange] = []
    removed = [i for i, j in pairs if j is None and i is not None]
    added = [j for i, j in pairs if i is None and j is not None]
    # A node gone here and back there, the same in all else, only moved.
    moved: list[tuple[int, int]] = []
    for i in list(removed):
        match = next((j for j in added if _content(old[i], renames) == _content(new[j])), None)
        if match is not None:
            moved.append((i, match))
            removed.remove(i)
            added.remove(match)
    implied: set[tuple[Any, Any]] = set()
    for i, j in pairs:
        if i is None or j is None:
            continue
        a, b = old[i], new[j]
        op_a, op_b = str(a.get("op")), str(b.get("op"))
        if op_a != op_b:
            changes.append(NodeChange(ChangeKind.OP_RENAMED, stage, op_b, new_at[j], op_a, op_b))
        elif renames.get(str(a.get("after")), a.get("after")) != b.get("after"):
            was, now = a.get("after"), b.get("after")
            if was and now and _family(str(was)) == _family(str(now)) == "compute":
                # The producer, not in the snapshot itself, is another op: a rename.
                if (was, now) not in implied:
                    implied.add((was, now))
                    changes.append(
                        NodeChange(
                            ChangeKind.OP_RENAMED,
                            stage,
                            str(now),
                            f"{now} (the producer of {op_b})",
                            str(was),
                            str(now),
                        )
                    )
            else:
                changes.append(
                    NodeChange(
                        ChangeKind.GRAPH_ORDER,
                        stage,
                        op_b,
                        new_at[j],
                        f"after {was}",
                        f"after {now}",
                    )
                )
        for name, (changed, lost, gained) in _FIELD_KINDS.items():
            x, y = a.get(name), b.get(name)
            if x != y:
                kind = changed if x is not None and y is not None else lost if y is None else gained
                changes.append(NodeChange(kind, stage, op_b, new_at[j], _opt(x), _opt(y)))
        changes += _key_changes(stage, op_b, new_at[j], a, b)
    for i, j in moved:
        changes.append(NodeChange(ChangeKind.GRAPH_ORDER, stage, str(new[j].get("op")), new_at[j]))
        changes += _key_changes(stage, str(new[j].get("op")), new_at[j], old[i], new[j])
    for i in removed:
        changes.append(
            NodeChange(
                ChangeKind.NODE_REMOVED,
                stage,
                str(old[i].get("op")),
                old_at[i],
                _opt(old[i].get("tag")),
            )
        )
    for j in added:
        changes.append(
            NodeChange(
                ChangeKind.NODE_ADDED,
                stage,
                str(new[j].get("op")),
                new_at[j],
                None,
                _opt(new[j].get("tag")),
            )
        )
    return changes


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def node_changes(before: Snapshots, after: Snapshots) -> list[NodeChange]:
    """Every node-level change, stage by stage; within a stage by kind (tags first)."""
    changes: list[NodeChange] = []
    for stage in list(dict.fromkeys([*before, *after])):
        old, new = list(before.get(stage, ())), list(after.get(stage, ()))
        if stage not in before:
            changes.append(
                NodeChange(
                    ChangeKind.NODE_ADDED,
                    stage,
                    "",
                    f"recorded only in the newer ({len(new)} nodes)",
                )
            )
        elif stage not in after:
            changes.append(
                NodeChange(
                    ChangeKind.NODE_REMOVED,
                    stage,
                    "",
                    f"no longer recorded ({len(old)} nodes before)",
                )
            )
        else:
            changes += _stage_changes(stage, old, new)
    return changes


def _stage_text(change: NodeChange) -> str:
    if not change.op and change.kind in (ChangeKind.NODE_ADDED, ChangeKind.NODE_REMOVED):
        return f"{change.stage}: {change.where}"
    return change.text()


def diff_snapshots(before: Snapshots, after: Snapshots) -> list[str]:
    """Node-level differences as lines: tag changes first, then added and removed nodes,
    then the rest (sources, keys), then op renames and graph order."""

    def order(change: NodeChange) -> int:
        if change.kind in _FIELD_KINDS["tag"]:
            return 0
        if change.kind in (ChangeKind.NODE_ADDED, ChangeKind.NODE_REMOVED):
            return 1
        return 2 if change.kind.metadata else 3

    return [_stage_text(c) for c in sorted(node_changes(before, after), key=order)]


# --- drifts: one test, two cells -----------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """One test's snapshot changing between two cells (neighbours, or runs, or columns)."""

    test: str
    line: str  # "torch.ao py3.11" (across stacks: "torch.ao vs torchao py3.11")
    before: str  # the cells' labels: "2.3.1", or a cell id
    after: str
    before_cell: str
    after_cell: str
    changes: tuple[str, ...]
    nodes: tuple[NodeChange, ...] = ()
    nodeid: str = ""
    step: tuple[str, str] = ("", "")  # the torch versions (across stacks: the stacks)
    stacks: tuple[str, ...] = ()
    python: str = ""
    across: bool = False  # torch.ao against torchao at one torch
    green: bool = True  # the test passed in both cells: a change no failure reports

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


def _fingerprint(snapshots: Snapshots) -> str:
    return json.dumps(snapshots, sort_keys=True)


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def _stack(result: Any) -> str:
    return "torch.ao" if result.cell.stack == "torch.ao" else "torchao"


def _cell_line(result: Any) -> str:
    return f"{_stack(result)} py{result.cell.python}"


def _label(result: Any) -> str:
    cell = result.cell
    ao = f" (ao {cell.torchao})" if cell.torchao else ""
    channel = "" if cell.channel == "release" else f"{cell.channel} "
    return f"{channel}{_torch_of(result)}{ao}"


def _step_label(result: Any) -> str:
    channel = "" if result.cell.channel == "release" else f"{result.cell.channel} "
    return f"{channel}{_torch_of(result)}"


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


def _passed(result: Any, nodeid: str) -> bool:
    outcome = next((t.outcome for t in result.tests if t.nodeid == nodeid), None)
    return bool(outcome is not None and getattr(outcome, "passing", False))


def _drift(test: str, older: Any, newer: Any, old: Snapshots, new: Snapshots, **kw: Any) -> Drift:
    nodes = tuple(node_changes(old, new))
    kw.setdefault("green", _passed(older, test) and _passed(newer, test))
    return Drift(
        redact(test).rsplit("::", 1)[-1],
        kw.pop("line", _cell_line(newer)),
        kw.pop("before", _label(older)),
        _label(newer),
        older.cell_id,
        newer.cell_id,
        tuple(diff_snapshots(old, new)),
        nodes,
        redact(test),
        python=str(newer.cell.python),
        **kw,
    )


def drifts(results: Sequence[Any]) -> list[Drift]:
    """Every snapshot change between torch-neighbours of the same stack and Python."""
    lines: dict[str, list[Any]] = {}
    for result in results:
        if _by_test(result):
            lines.setdefault(_cell_line(result), []).append(result)
    found: list[Drift] = []
    for cells in lines.values():
        cells = sorted(cells, key=lambda r: (_version(_torch_of(r)), r.cell.channel))
        for older, newer in itertools.pairwise(cells):
            found += _pair_drifts(
                older,
                newer,
                step=(_step_label(older), _step_label(newer)),
                stacks=(_stack(newer),),
            )
    return found


def pair_drifts(older: Any, newer: Any) -> list[Drift]:
    """Each test's snapshot change from one cell to another of the same stack (a
    reference release and its candidate): the drifts ``drift_findings`` folds."""
    return _pair_drifts(
        older,
        newer,
        step=(_step_label(older), _step_label(newer)),
        stacks=(_stack(newer),),
    )


def _pair_drifts(older: Any, newer: Any, **kw: Any) -> list[Drift]:
    """Each test both cells ran whose snapshots differ, as a drift from ``older``."""
    old, new = _by_test(older), _by_test(newer)
    return [
        _drift(test, older, newer, old[test], new[test], **kw)
        for test in old
        if test in new and _fingerprint(old[test]) != _fingerprint(new[test])
    ]


def cross_stack_drifts(results: Sequence[Any]) -> list[Drift]:
    """At one torch and Python, each test's torch.ao snapshot against its torchao one."""
    by_place: dict[tuple[str, str, str], dict[str, Any]] = {}
    for result in results:
        if _by_test(result):
            place = (_torch_of(result), str(result.cell.python), result.cell.channel)
            by_place.setdefault(place, {})[_stack(result)] = result
    found: list[Drift] = []
    for (_torch, python, _channel), stacks in sorted(
        by_place.items(), key=lambda item: (_version(item[0][0]), item[0][1])
    ):
        if not {"torch.ao", "torchao"} <= set(stacks):
            continue
        older, newer = stacks["torch.ao"], stacks["torchao"]
        found += _pair_drifts(
            older,
            newer,
            line=f"torch.ao vs torchao py{python}",
            before=f"{_step_label(older)} torch.ao",
            step=(_step_label(older), _step_label(newer)),
            stacks=("torch.ao", "torchao"),
            across=True,
        )
    return found


# --- findings: what a reader takes in at a glance ---------------------------------------------


def _source_shape(value: str | None) -> str:
    """What a ``from_node`` source names: a module path, an op, or nothing."""
    if value is None:
        return "none"
    if value.startswith(("L__self__", "L_self_", "self.", "activation_post_process")) or (
        "." in value and not value.split(".")[-1][:1].isupper()
    ):
        return "module path"
    return "op name"


def _pattern(change: NodeChange) -> str:
    """What makes two changes "the same change" (across tests, nodes and stacks)."""
    k = change.kind
    if k in (ChangeKind.SOURCE_CHANGED,):
        shapes = (_source_shape(change.before), _source_shape(change.after))
        if shapes[0] != shapes[1]:
            return f"from {shapes[0]} to {shapes[1]}"
        return f"{_show(change.before)} -> {_show(change.after)}"
    if k is ChangeKind.TAG_CHANGED:
        return f"{_show(change.before)} -> {_show(change.after)}"
    if k in (ChangeKind.TAG_LOST, ChangeKind.SOURCE_LOST, ChangeKind.KEY_LOST):
        return "" if k is not ChangeKind.KEY_LOST else str(change.before)
    if k is ChangeKind.KEY_GAINED:
        return str(change.after)
    if k is ChangeKind.OP_RENAMED:
        return f"{change.before} -> {change.after}"
    if k is ChangeKind.GRAPH_ORDER:
        return change.stage.split("#")[0]
    return ""


def _coarse(change: NodeChange) -> str:
    """The change as a reader names it, for merging: a source that changed from a module
    path to an op name is one change whichever nodes and names it touched."""
    if change.kind is ChangeKind.SOURCE_CHANGED:
        shapes = (_source_shape(change.before), _source_shape(change.after))
        return f"from {shapes[0]} to {shapes[1]}" if shapes[0] != shapes[1] else shapes[0]
    return _pattern(change)


_WHAT = {
    ChangeKind.TAG_CHANGED: "quantization_tag changed",
    ChangeKind.TAG_LOST: "quantization_tag lost",
    ChangeKind.TAG_GAINED: "quantization_tag gained",
    ChangeKind.SOURCE_CHANGED: "from_node source changed",
    ChangeKind.SOURCE_LOST: "from_node source lost",
    ChangeKind.SOURCE_GAINED: "from_node source gained",
    ChangeKind.KEY_LOST: "metadata key lost",
    ChangeKind.KEY_GAINED: "metadata key gained",
    ChangeKind.NODE_ADDED: "node added by a pass",
    ChangeKind.NODE_REMOVED: "node removed by a pass",
    ChangeKind.OP_RENAMED: "IR op renamed",
    ChangeKind.GRAPH_ORDER: "graph order only",
}


def _listing(items: Sequence[str], most: int = 4) -> str:
    shown = ", ".join(items[:most])
    return shown + (f" (+{len(items) - most} more)" if len(items) > most else "")


@dataclass(frozen=True)
class Occurrence:
    """One node change of a finding: where it was seen."""

    line: str
    test: str
    before_cell: str
    after_cell: str
    change: NodeChange
    green: bool = True  # the test passed on both sides
    group: str = ""  # the test's file (and class): "test_metadata_porting.py::TestMetaDataPorting"

    def text(self) -> str:
        return f"{self.test} [{self.line}]: {_stage_text(self.change)}"


@dataclass(frozen=True)
class Finding:
    """One kind of change at one version step of one test group, over tests and stacks."""

    group: str  # "test_metadata_porting.py::TestMetaDataPorting"
    step: tuple[str, str]  # the torch versions; across stacks both are the same torch
    kind: ChangeKind
    stacks: tuple[str, ...]  # "torch.ao", "torchao"
    pythons: tuple[str, ...]
    across: bool
    patterns: tuple[str, ...]
    occurrences: tuple[Occurrence, ...]
    tests: tuple[str, ...]  # short test names, in order first seen
    bisect: tuple[str, ...] = ()  # ready-to-paste commands, when the step skips releases
    torches: tuple[str, ...] = ()  # across stacks: every torch showing the same difference

    @property
    def metadata(self) -> bool:
        return self.kind.metadata

    @property
    def green(self) -> bool:
        """Every test it was seen in passed on both sides: news no failure carries."""
        return all(o.green for o in self.occurrences)

    @property
    def ops(self) -> list[str]:
        ops = [o.change.op for o in self.occurrences if o.change.op]
        if self.kind is ChangeKind.GRAPH_ORDER:
            ops = [o.change.stage for o in self.occurrences]
        return list(dict.fromkeys(ops))

    def where(self) -> str:
        """``2.9.1 -> 2.10.0, torch.ao and torchao``, or ``2.10.0, torch.ao vs torchao``."""
        py = f" py{'/'.join(self.pythons)}" if self.pythons else ""
        if self.across:
            return f"{', '.join(self.torches or self.step[:1])}, torch.ao vs torchao{py}"
        return f"{self.step[0]} -> {self.step[1]}, {' and '.join(self.stacks)}{py}"

    def what(self) -> str:
        """The change itself: ``from_node source changed from module path to op name on
        conv2d, linear``."""
        patterns = [p for p in self.patterns if p]
        k = self.kind
        if k is ChangeKind.OP_RENAMED:
            return f"{_WHAT[k]}: {_listing(patterns)}"
        if k is ChangeKind.GRAPH_ORDER:
            return f"{_WHAT[k]} in {_listing(patterns)}"
        if k in (ChangeKind.KEY_LOST, ChangeKind.KEY_GAINED):
            return f"{_WHAT[k]} {_listing([repr(p) for p in patterns])} on {_listing(self.ops)}"
        how = f" {_listing(patterns, 2)}" if patterns else ""
        ops = self.ops
        return f"{_WHAT[k]}{how}" + (f" on {_listing(ops)}" if ops else "")

    @property
    def files(self) -> list[str]:
        """The test files (and classes) it was seen in."""
        return [g for g in self.group.split(", ") if g]

    def headline(self, *, group: bool = False) -> str:
        """The finding in one line; ``group`` (a run of several test files) names the file
        of a finding seen in one, and counts the files of one seen in several."""
        tests, nodes, files = len(self.tests), len(self.occurrences), len(self.files)
        where = f" in {files} files" if group and files > 1 else ""
        count = (
            f"{tests} test{'s' if tests != 1 else ''}{where}, "
            f"{nodes} node{'s' if nodes != 1 else ''}"
        )
        prefix = f"{self.group}: " if group and files == 1 else ""
        return f"{prefix}{self.where()}: {self.what()} ({count})"


def _group(nodeid: str) -> str:
    parts = nodeid.split("::")
    head = [parts[0].rsplit("/", 1)[-1], *parts[1:-1]]
    return "::".join(head) if len(parts) > 1 else ""


def skips_releases(older: str, newer: str) -> bool:
    """Whether a release could lie between two releases (so a bisection has work to do):
    a minor skipped, a patch skipped, or a newer minor's later patch. Not for nightlies."""
    try:
        a, b = Version(older).release, Version(newer).release
    except InvalidVersion:
        return False
    a, b = (*a, 0, 0, 0)[:3], (*b, 0, 0, 0)[:3]
    if a > b:
        a, b = b, a
    if a[0] != b[0]:
        return True
    if a[1] == b[1]:
        return b[2] - a[2] > 1
    return b[1] - a[1] > 1 or b[2] > 0


def _bisect(test: str, step: tuple[str, str], stack: str) -> str:
    return (
        f"python -m compat bisect {shlex.quote(test)} --good {step[0]} --bad {step[1]} "
        f"--stack {stack} --on snapshot"
    )


def _merge_across_torches(findings: list[Finding]) -> list[Finding]:
    """torch.ao against torchao differs the same way at several torches (torchao's copy
    ports one way on 2.8, 2.9 and 2.10): one finding naming every torch, not one per torch.
    Findings along a stack's torch axis are left as they are: each is its own step."""
    kept: list[Finding] = []
    same: dict[tuple[Any, ...], list[Finding]] = {}
    for f in findings:
        if not f.across:
            kept.append(f)
            continue
        signature = (f.group, f.kind, f.stacks, f.pythons, tuple(sorted(f.patterns)))
        same.setdefault(signature, []).append(f)
    for group in same.values():
        first = group[0]
        torches = sorted({f.step[0] for f in group}, key=lambda t: _version(t.split()[-1]))
        kept.append(
            Finding(
                first.group,
                (torches[0], torches[0]),
                first.kind,
                first.stacks,
                first.pythons,
                True,
                tuple(dict.fromkeys(p for f in group for p in f.patterns)),
                tuple(o for f in group for o in f.occurrences),
                tuple(dict.fromkeys(t for f in group for t in f.tests)),
                (),
                tuple(torches),
            )
        )
    return kept


def drift_findings(found: Sequence[Drift]) -> list[Finding]:
    """One finding per (step, kind), merged over tests, test files and stacks whose change
    is the same (the same ``from_node`` source change seen by two suites is one finding);
    tag findings first, then the other metadata findings step by step, then torch.ao
    against torchao, renames and graph order last."""
    # (step, across, kind) -> line -> occurrences
    buckets: dict[tuple[tuple[str, str], bool, ChangeKind], dict[str, list[Occurrence]]] = {}
    stacks_of: dict[str, tuple[str, ...]] = {}
    python_of: dict[str, str] = {}
    for drift in found:
        stacks_of[drift.line], python_of[drift.line] = drift.stacks, drift.python
        for change in drift.nodes:
            key = (drift.step, drift.across, change.kind)
            buckets.setdefault(key, {}).setdefault(drift.line, []).append(
                Occurrence(
                    drift.line,
                    drift.test,
                    drift.before_cell,
                    drift.after_cell,
                    change,
                    drift.green,
                    _group(drift.nodeid),
                )
            )
    findings: list[Finding] = []
    for (step, across, kind), by_line in buckets.items():
        # Lines (stacks) whose changes are the same change merge into one finding.
        merged: dict[tuple[str, ...], list[str]] = {}
        for line, occurrences in by_line.items():
            signature = tuple(sorted({_coarse(o.change) for o in occurrences}))
            merged.setdefault(signature, []).append(line)
        for lines in merged.values():
            occurrences = [o for line in lines for o in by_line[line]]
            group = ", ".join(dict.fromkeys(o.group for o in occurrences if o.group))
            stacks = tuple(dict.fromkeys(s for line in lines for s in stacks_of[line]))
            pythons = tuple(dict.fromkeys(python_of[line] for line in lines))
            tests = tuple(dict.fromkeys(o.test for o in occurrences))
            patterns = tuple(dict.fromkeys(_pattern(o.change) for o in occurrences))
            commands: tuple[str, ...] = ()
            if not across and skips_releases(*step):
                commands = tuple(_bisect(tests[0], step, stack) for stack in stacks)
            findings.append(
                Finding(
                    group,
                    step,
                    kind,
                    stacks,
                    pythons if across or len(set(pythons)) > 1 else (),
                    across,
                    patterns,
                    tuple(occurrences),
                    tests,
                    commands,
                )
            )

    findings = _merge_across_torches(findings)

    def order(f: Finding) -> tuple[Any, ...]:
        # Tags first (what porting is about), then sources and nodes, then the other
        # metadata keys; within each, changes of tests green on both sides (which no
        # failure reports) before those of a test failing on a side (its x or ✗ already
        # says something changed), and along the torch axes before torch.ao vs torchao.
        tier = 0 if f.kind in _FIELD_KINDS["tag"] else 2 if f.kind in _KEY_KINDS else 1
        return (
            not f.metadata,
            tier,
            not f.green,
            f.across,
            _version(f.step[0].split()[-1]),
            f.kind.rank,
            f.group,
            f.stacks,
        )

    return sorted(findings, key=order)
