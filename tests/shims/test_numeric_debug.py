"""The numeric-debug and graph-utils shims against the real torch / torchao of this env."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from compat.shims import routes  # noqa: E402
from compat.shims.graph_utils import graph_utils  # noqa: E402
from compat.shims.numeric_debug import (  # noqa: E402
    ROUTE_CUSTOM_GRAPHMODULE,
    ROUTE_CUSTOM_PROGRAM,
    ROUTE_FROM_NODE,
    NumericDebugUnavailable,
    debugger,
)
from compat.shims.stack import StackUnavailable  # noqa: E402


class _TwoOps(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + 1)


def _debugger():
    debugger.cache_clear()
    try:
        return debugger()
    except (NumericDebugUnavailable, StackUnavailable) as exc:
        pytest.skip(str(exc))


def test_route_is_recorded_and_known() -> None:
    nd = _debugger()
    assert nd.route in (ROUTE_CUSTOM_GRAPHMODULE, ROUTE_CUSTOM_PROGRAM, ROUTE_FROM_NODE)
    assert routes.routes()["numeric_debug"].startswith(nd.route)


def test_every_op_gets_a_distinct_handle() -> None:
    nd = _debugger()
    ep = torch.export.export(_TwoOps(), (torch.randn(2),), strict=True)
    nd.generate(ep)
    gm = ep.module() if nd.route == ROUTE_FROM_NODE else ep
    handles = nd.handles(gm)
    ops = [str(n) for n in gm.graph.nodes if n.op == "call_function"]
    assert ops
    assert all(name in handles for name in ops)
    assert len({handles[name] for name in ops}) == len(ops)
    assert nd.missing_handles(gm) == []


def test_a_node_stripped_of_its_handle_is_reported_missing() -> None:
    nd = _debugger()
    ep = torch.export.export(_TwoOps(), (torch.randn(2),), strict=True)
    nd.generate(ep)
    gm = ep.module() if nd.route == ROUTE_FROM_NODE else ep
    graph = getattr(gm, "graph_module", gm).graph
    victim = next(n for n in graph.nodes if n.op == "call_function")
    victim.meta.pop("from_node" if nd.route == ROUTE_FROM_NODE else "custom", None)
    assert nd.handle(victim) is None
    assert str(victim) in nd.missing_handles(gm)


def test_graph_utils_resolve_from_one_stack() -> None:
    graph_utils.cache_clear()
    try:
        utils = graph_utils()
    except StackUnavailable as exc:
        pytest.skip(str(exc))
    for name in ("find_sequential_partitions", "get_equivalent_types", "get_source_partitions"):
        assert utils.has(name), name
    assert routes.routes()["graph_utils"] == utils.home


class _Cond(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda t: t.sin(), lambda t: t.cos(), (x,))


def test_placeholders_and_output_need_no_handle() -> None:
    nd = _debugger()
    ep = torch.export.export(_TwoOps(), (torch.randn(2),), strict=True)
    nd.generate(ep)
    gm = ep.module() if nd.route == ROUTE_FROM_NODE else ep
    graph = getattr(gm, "graph_module", gm).graph
    ends = [n for n in graph.nodes if n.op in ("placeholder", "output")]
    assert ends
    assert not any(nd.needs_handle(n) for n in ends)
    walked = nd.walked(gm)
    assert not {str(n) for n in ends} & set(walked)
    assert {str(n) for n in graph.nodes if n.op == "call_function"} <= set(walked)


def test_walk_reaches_control_flow_submodules() -> None:
    from compat.shims.graph_utils import walk_nodes

    graph_utils.cache_clear()
    try:
        utils = graph_utils()
    except StackUnavailable as exc:
        pytest.skip(str(exc))
    if not (utils.has("bfs_trace_with_node_process") or utils.has("get_control_flow_submodules")):
        pytest.skip(f"{utils.home} walks no control-flow submodule (torch.ao 2.5)")
    if not hasattr(torch, "cond"):
        pytest.skip("torch.cond is not public in this torch")
    ep = torch.export.export(_Cond(), (torch.randn(3),), strict=True)
    top = {str(n) for n in ep.graph.nodes}
    seen: list = []
    walk_nodes(ep, lambda node: seen.append(node))
    graphs = {id(node.graph) for node in seen}
    assert len(graphs) == 3, f"walked {len(graphs)} graphs (top, true branch, false branch)"
    assert {str(n) for n in seen if id(n.graph) == id(ep.graph)} <= top
