"""One lineage shape for ``node.meta["from_node"]`` across every torch format.

Evidence: docs/version-landscape.md §3.5.

F0 (2.0) never set; F1 (2.1-2.5) flat ``(name, target)`` tuples, oldest first, target the raw
object; F2 (2.6) nested ``NodeSource`` with one ``action`` enum; F3 (2.7) ``action`` a list;
F4 (2.8) ``ExportedProgram.module()`` stamps every node; F5 (2.9-2.10) that stamp wraps the
ExportedProgram's node and NodeSource compares by value; F6 (2.11-2.14) serialisable;
F7 (2.15) nested records shared, not deep-copied. Tests compare :class:`SourceRecord` values,
never NodeSource objects (``==`` is identity before 2.9) and never raw tuples.
Also accepted: the ``NodeSource.to_dict()`` form, so recorded JSON samples normalise alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Tuple

from compat.shims import routes

MODULE_STAMP = "ExportedProgram.module()"
UNLIFT_STAMP = "ExportedProgram.module().unlift()"

FLAT = "tuple-flat"
NESTED_SINGLE = "nodesource-nested(action=single)"
NESTED_LIST = "nodesource-nested(action=list)"
DICT = "nodesource-dict"
ABSENT = "absent"


@dataclass(frozen=True)
class SourceRecord:
    """One provenance entry: the node it came from and, if nested, that node's lineage."""

    name: str
    target: str
    pass_name: str = ""
    actions: Tuple[str, ...] = ()
    graph_id: Optional[int] = None
    parents: Tuple["SourceRecord", ...] = ()

    @property
    def is_module_stamp(self) -> bool:
        """True for the entries ``ExportedProgram.module()`` adds from torch 2.8."""
        return self.pass_name in (MODULE_STAMP, UNLIFT_STAMP)


def _target_str(target: Any) -> str:
    # NodeSource stores str(node.target); do the same for F1's raw objects.
    return target if isinstance(target, str) else str(target)


def _actions(action: Any) -> Tuple[str, ...]:
    """None / one enum / list of enums / ``"create+replace"`` -> ``("create", "replace")``."""
    if action is None or action == "":
        return ()
    if isinstance(action, str):
        return tuple(a for a in action.lower().split("+") if a)
    if isinstance(action, (list, tuple)):
        return tuple(a for item in action for a in _actions(item))
    name = getattr(action, "name", None)
    return (str(name if name is not None else action).lower(),)


def _is_flat(entry: Any) -> bool:
    return isinstance(entry, tuple) and len(entry) == 2 and not hasattr(entry, "_fields")


def normalise_entry(entry: Any) -> SourceRecord:
    """Normalise one ``from_node`` element (tuple, NodeSource, or its ``to_dict()``)."""
    if _is_flat(entry) or (isinstance(entry, list) and len(entry) == 2):
        return SourceRecord(name=str(entry[0]), target=_target_str(entry[1]))
    if isinstance(entry, dict):
        return SourceRecord(
            name=str(entry.get("name", "")),
            target=_target_str(entry.get("target", "")),
            pass_name=str(entry.get("pass_name", "") or ""),
            actions=_actions(entry.get("action")),
            graph_id=entry.get("graph_id"),
            parents=tuple(normalise_entry(p) for p in entry.get("from_node") or ()),
        )
    if hasattr(entry, "from_node") and hasattr(entry, "name"):
        return SourceRecord(
            name=str(entry.name),
            target=_target_str(entry.target),
            pass_name=str(getattr(entry, "pass_name", "") or ""),
            actions=_actions(getattr(entry, "action", None)),
            graph_id=getattr(entry, "graph_id", None),
            parents=tuple(normalise_entry(p) for p in entry.from_node or ()),
        )
    raise TypeError(f"unknown from_node entry shape: {type(entry).__name__}: {entry!r:.200}")


def _raw(node_or_value: Any) -> Any:
    meta = getattr(node_or_value, "meta", None)
    return meta.get("from_node") if isinstance(meta, dict) else node_or_value


def format_name(node_or_value: Any) -> str:
    """Human-readable shape of a node's (or a raw) ``from_node`` value, for routes."""
    raw = _raw(node_or_value)
    if not raw:
        return ABSENT
    first = raw[0]
    if _is_flat(first):
        return FLAT
    if isinstance(first, dict):
        return DICT
    action = getattr(first, "action", None)
    shape = NESTED_LIST if isinstance(action, (list, tuple)) else NESTED_SINGLE
    if any(getattr(e, "pass_name", "") in (MODULE_STAMP, UNLIFT_STAMP) for e in raw):
        shape += "+module-stamp"
    return shape


def lineage(node_or_value: Any, *, record_route: bool = True) -> Tuple[SourceRecord, ...]:
    """The top-level ``from_node`` entries, normalised; ``()`` when there are none.

    Top level means what upstream tests iterate: in F1 the whole flat history (oldest
    first), in F2+ the direct sources, each carrying its own nested ``parents``.
    """
    raw = _raw(node_or_value)
    if not raw:
        return ()
    if not isinstance(raw, (list, tuple)):
        raise TypeError(f"from_node is {type(raw).__name__}, expected list")
    fmt = format_name(raw)
    if not record_route:  # a snapshot reads lineage without claiming the test's route
        return tuple(normalise_entry(e) for e in raw)
    routes.record("from_node", fmt.replace("+module-stamp", ""))
    if fmt == FLAT:
        routes.adapted(
            "from_node",
            "from_node holds (name, target) tuples here; upstream "
            "compares meta[1] == from_node, the shim compares the normalised "
            "SourceRecord.target with str(from_node): the same nodes match",
        )
    return tuple(normalise_entry(e) for e in raw)


def is_flat(records: Iterable[SourceRecord]) -> bool:
    """True when no record has parents (F1 history, or a nested chain of depth one)."""
    return all(not r.parents for r in records)


def original_source(node_or_value: Any, *, record_route: bool = True) -> Optional[SourceRecord]:
    """The greatest ancestor, as torchao's ``_numeric_debugger`` finds it.

    Nested: follow ``from_node[-1]`` until a record has no parents. Flat (F1): the first
    tuple, since F1 appends newest last. None for nodes without lineage and for nodes made
    by unlifting (``ExportedProgram.module().unlift()``), which are not in the user graph.
    """
    records = lineage(node_or_value, record_route=record_route)
    if not records or records[-1].pass_name == UNLIFT_STAMP:
        return None
    raw = _raw(node_or_value)
    if _is_flat(raw[0]) or (isinstance(raw[0], list) and len(raw[0]) == 2):
        return records[0]
    record = records[-1]
    while record.parents:
        record = record.parents[-1]
    return record


def chain(record: SourceRecord) -> Tuple[SourceRecord, ...]:
    """``record`` then its last parent, recursively: the path :func:`original_source` walks."""
    out = [record]
    while out[-1].parents:
        out.append(out[-1].parents[-1])
    return tuple(out)


def without_stamps(record: SourceRecord) -> Tuple[SourceRecord, ...]:
    """:func:`chain` minus the ``ExportedProgram.module()`` stamps (2.8+ only noise)."""
    return tuple(r for r in chain(record) if not r.is_module_stamp)
