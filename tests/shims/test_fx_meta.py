"""from_node normalisation on every format F0-F7, without torch.

Fakes are rebuilt from real samples recorded by ``record_from_node.py`` in torch 2.2.2,
2.5.1, 2.6.0, 2.8.0, 2.10.0, 2.13.0 and 2.15.0 (``data/from_node_torch*.json``): tuples whose
target is an OpOverload-like object (F1), NodeSource with one action enum (F2) or a list (F3+),
``ExportedProgram.module()`` stamps (F4+), value equality (F5+) and shared records (F7).
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

import pytest

from compat.shims import fx_meta, routes
from compat.shims.fx_meta import SourceRecord

DATA = Path(__file__).parent / "data"


class NodeSourceAction(enum.Enum):
    CREATE = "create"
    REPLACE = "replace"


class FakeOpOverload:
    """Stands in for torch's OpOverload / functions: only ``str()`` matters to NodeSource."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


class FakeNodeInfo:
    def __init__(self, name: str, target: str, graph_id: int) -> None:
        self.name, self.target, self.graph_id = name, target, graph_id


class FakeNodeSource:
    """Shape of torch.fx.traceback.NodeSource: node_info + pass_name + action + from_node."""

    def __init__(
        self,
        name: str,
        target: str,
        pass_name: str,
        action: Any,
        from_node: list[FakeNodeSource],
        value_eq: bool = False,
    ) -> None:
        self.node_info = FakeNodeInfo(name, target, 1234)
        self.pass_name = pass_name
        self.action = action
        self.from_node = from_node
        self._value_eq = value_eq

    name = property(lambda self: self.node_info.name)
    target = property(lambda self: self.node_info.target)
    graph_id = property(lambda self: self.node_info.graph_id)

    def to_dict(self) -> dict[str, Any]:
        acts = self.action if isinstance(self.action, list) else [self.action]
        return {
            "name": self.name,
            "target": self.target,
            "graph_id": self.graph_id,
            "pass_name": self.pass_name,
            "action": "+".join(a.name.lower() for a in acts if a is not None),
            "from_node": [p.to_dict() for p in self.from_node],
        }

    def __eq__(self, other: object) -> bool:  # F5+: by value; before: identity
        if self._value_eq and isinstance(other, FakeNodeSource):
            return self.to_dict() == other.to_dict()
        return self is other

    __hash__ = object.__hash__


def _fake(entry: dict[str, Any], value_eq: bool = False) -> Any:
    if entry["kind"] == "tuple":
        target: Any = entry["target"]
        if entry["target_type"] != "str":
            target = FakeOpOverload(entry["target"])
        return (entry["name"], target)
    if entry["action_kind"] == "list":
        action: Any = [NodeSourceAction[a] for a in entry["action"]]
    else:
        action = NodeSourceAction[entry["action"]] if entry["action"] else None
    parents = [_fake(p, value_eq) for p in entry["from_node"]]
    return FakeNodeSource(
        entry["name"], entry["target"], entry["pass_name"], action, parents, value_eq
    )


def _load(version: str) -> dict[str, Any]:
    return json.loads((DATA / f"from_node_torch{version}.json").read_text())


def _samples(version: str, graph: str = "", op: str = "", node: str = "") -> list[Any]:
    out = []
    for s in _load(version)["samples"]:
        wanted = {"graph": graph, "op": op, "node": node}
        if any(v and s[k] != v for k, v in wanted.items()):
            continue
        out.append(s)
    assert out, (version, graph, op, node)
    return out


def _raw(sample: dict[str, Any], value_eq: bool = False) -> list[Any]:
    return [_fake(e, value_eq) for e in sample["from_node"]]


class FakeNode:
    def __init__(self, raw: Any) -> None:
        self.meta: dict[str, Any] = {} if raw is None else {"from_node": raw}


ALL_VERSIONS = ["2.2.2", "2.5.1", "2.6.0", "2.8.0", "2.10.0", "2.13.0", "2.15.0"]


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_every_recorded_sample_normalises(version: str) -> None:
    for sample in _load(version)["samples"]:
        records = fx_meta.lineage(FakeNode(_raw(sample)))
        assert len(records) == len(sample["from_node"])
        stack = list(records)
        while stack:
            rec = stack.pop()
            assert isinstance(rec.name, str)
            assert isinstance(rec.target, str)
            assert all(a in ("create", "replace") for a in rec.actions)
            stack.extend(rec.parents)


def test_f0_absent() -> None:
    assert fx_meta.lineage(FakeNode(None)) == ()
    assert fx_meta.format_name(FakeNode(None)) == fx_meta.ABSENT
    assert fx_meta.original_source(FakeNode(None)) is None
    assert fx_meta.lineage(FakeNode([])) == ()


@pytest.mark.parametrize("version", ["2.2.2", "2.5.1"])
def test_f1_flat_tuples_with_opoverload_targets(version: str) -> None:
    sample = _samples(version, graph="reexport.graph_module")[0]
    node = FakeNode(_raw(sample))
    assert fx_meta.format_name(node) == fx_meta.FLAT
    records = fx_meta.lineage(node)
    assert fx_meta.is_flat(records)
    assert [r.target for r in records] == [e["target"] for e in sample["from_node"]]
    assert all(r.pass_name == "" and r.actions == () for r in records)
    # F1 appends newest last: the original is the first tuple.
    assert fx_meta.original_source(node) == records[0]
    assert routes.routes()["from_node"] == "tuple-flat"


def test_f1_target_compares_like_upstream_meta_1() -> None:
    # Upstream (torch <= 2.5): ``meta[1] == torch.ops.aten.linear.default``; the shim: str().
    op = FakeOpOverload("aten.linear.default")
    records = fx_meta.lineage([("linear", op), ("addmm", FakeOpOverload("aten.addmm.default"))])
    assert [r.target for r in records] == [str(op), "aten.addmm.default"]


def test_f1_from_json_lists() -> None:
    assert fx_meta.lineage([["x", "L__self___x"]]) == (SourceRecord("x", "L__self___x"),)


def test_f2_single_action_nested() -> None:
    sample = _samples("2.6.0", graph="reexport.graph_module", op="placeholder")[0]
    assert sample["from_node"][0]["action_kind"] == "single"
    node = FakeNode(_raw(sample))
    assert fx_meta.format_name(node) == fx_meta.NESTED_SINGLE
    (top,) = fx_meta.lineage(node)
    assert top.actions == ("create",)
    assert top.parents
    assert not fx_meta.is_flat([top])
    chain = fx_meta.chain(top)
    assert fx_meta.original_source(node) == chain[-1]
    assert chain[-1].pass_name == "Interpreter_FlattenInputOutputSignature"


def test_f2_action_none() -> None:
    ns = FakeNodeSource("a", "aten.relu.default", "", None, [])
    assert fx_meta.lineage([ns])[0].actions == ()


def test_f3_list_action() -> None:
    ns = FakeNodeSource(
        "add",
        "aten.add.Tensor",
        "Interpreter_Foo",
        [NodeSourceAction.CREATE, NodeSourceAction.REPLACE],
        [],
    )
    assert fx_meta.format_name([ns]) == fx_meta.NESTED_LIST
    assert fx_meta.lineage([ns])[0].actions == ("create", "replace")


@pytest.mark.parametrize("version", ["2.8.0", "2.10.0", "2.13.0", "2.15.0"])
def test_f4_module_stamp_and_unlift(version: str) -> None:
    linear = _samples(version, graph="export().module()", node="linear")[0]
    node = FakeNode(_raw(linear))
    assert fx_meta.format_name(node) == fx_meta.NESTED_LIST + "+module-stamp"
    (stamp,) = fx_meta.lineage(node)
    assert stamp.is_module_stamp
    assert stamp.pass_name == fx_meta.MODULE_STAMP
    assert stamp.target == "aten.linear.default"
    assert fx_meta.original_source(node) is not None

    weight = _samples(version, graph="export().module()", op="get_attr")[0]
    wnode = FakeNode(_raw(weight))
    assert fx_meta.lineage(wnode)[-1].pass_name == fx_meta.UNLIFT_STAMP
    assert fx_meta.lineage(wnode)[-1].actions == ("create", "replace")
    assert fx_meta.original_source(wnode) is None  # not in the user graph (torchao rule)

    reexported = _samples(version, graph="reexport.graph_module", op="call_function")[0]
    (top,) = fx_meta.lineage(FakeNode(_raw(reexported)))
    assert not top.is_module_stamp
    assert [r.pass_name for r in fx_meta.without_stamps(top)] == [top.pass_name]


def test_f5_value_equality_does_not_change_records() -> None:
    sample = _samples("2.10.0", graph="reexport.graph_module", op="call_function")[0]
    a, b = _raw(sample, value_eq=True), _raw(sample, value_eq=True)
    assert a[0] == b[0]  # F5+ compare by value ...
    assert _raw(sample)[0] != _raw(sample)[0]  # ... F2-F4 by identity
    assert fx_meta.lineage(a) == fx_meta.lineage(b) == fx_meta.lineage(_raw(sample))


@pytest.mark.parametrize("version", ["2.6.0", "2.8.0", "2.13.0"])
def test_f6_dict_form_matches_object_form(version: str) -> None:
    for sample in _load(version)["samples"]:
        raw = _raw(sample)
        if not hasattr(raw[0], "to_dict"):
            continue
        as_dicts = json.loads(json.dumps([e.to_dict() for e in raw]))
        assert fx_meta.format_name(as_dicts) == fx_meta.DICT
        assert fx_meta.lineage(as_dicts) == fx_meta.lineage(raw)


def test_f7_shared_records() -> None:
    data = _load("2.15.0")
    assert data["shared_records"] is True
    assert _load("2.13.0")["shared_records"] is False
    sample = _samples("2.15.0", graph="reexport.graph_module", op="call_function")[0]
    ep_node_sources = _raw(sample)
    # 2.15: the stamp's from_node is list(ep_node.meta["from_node"]): the same objects.
    stamp = FakeNodeSource(
        sample["node"],
        sample["target"],
        fx_meta.MODULE_STAMP,
        [NodeSourceAction.CREATE],
        list(ep_node_sources),
    )
    assert stamp.from_node[0] is ep_node_sources[0]
    (rec,) = fx_meta.lineage([stamp])
    assert rec.parents == fx_meta.lineage(ep_node_sources)
    assert fx_meta.original_source([stamp]) == fx_meta.original_source(ep_node_sources)


def test_unknown_shape_is_an_error() -> None:
    with pytest.raises(TypeError):
        fx_meta.lineage([object()])
    with pytest.raises(TypeError):
        fx_meta.lineage("not a list")
