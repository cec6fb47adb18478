"""``capture_routes()`` / ``program_passes()`` / ``meta_consumers`` against this env's torch.

Skipped where torch is absent. Which routes exist is decided by feature detection; these
tests hold each route to what its detection claims (a route is offered iff its API is
there, and calling it gives a GraphModule whose nodes carry the metadata consumers read).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from compat.shims import export as capture_shim  # noqa: E402
from compat.shims import meta_consumers  # noqa: E402


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 3)

    def forward(self, x: Any) -> Any:
        return torch.relu(self.linear(x))


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = _Block()

    def forward(self, x: Any) -> Any:
        return self.block(x)


ARGS = (torch.randn(2, 3),)


def test_routes_follow_feature_detection() -> None:
    found = capture_shim.capture_routes()
    assert list(found) == [r for r in capture_shim.ROUTE_NAMES if r in found]  # stable order
    has_export = hasattr(torch.export, "export")
    assert (capture_shim.ROUTE_EXPORT_STRICT in found) == has_export
    strict_param = has_export and "strict" in inspect.signature(torch.export.export).parameters
    assert (capture_shim.ROUTE_EXPORT_NONSTRICT in found) == strict_param
    assert (capture_shim.ROUTE_EXPORT_FOR_TRAINING in found) == hasattr(
        torch.export, "export_for_training"
    )
    import torch._export as private_export

    assert (capture_shim.ROUTE_CPAG in found) == hasattr(
        private_export, "capture_pre_autograd_graph"
    )
    for name, route in found.items():
        assert route.name == name
        assert name.split("_")[0] in route.how or "capture_pre_autograd_graph" in route.how


@pytest.mark.parametrize("route_name", capture_shim.ROUTE_NAMES)
def test_each_route_captures_a_graph_module(route_name: str) -> None:
    found = capture_shim.capture_routes()
    if route_name not in found:
        pytest.skip(f"this torch has no {route_name}")
    route = found[route_name]
    gm = route(_Model().eval(), ARGS)
    assert isinstance(gm, torch.fx.GraphModule)
    assert not [n for n in gm.graph.nodes if n.op == "call_module"]  # no _guards_fn
    calls = [n for n in gm.graph.nodes if n.op == "call_function"]
    assert calls
    assert all("nn_module_stack" in n.meta for n in calls)
    ep = route.program(_Model().eval(), ARGS)
    assert isinstance(ep, torch.export.ExportedProgram)


def test_program_passes_round_trip() -> None:
    passes = capture_shim.program_passes()
    assert set(passes) <= {"run_decompositions", "save_load"}
    ep = torch.export.export(_Model().eval(), ARGS)
    for name, fn in passes.items():
        out = fn(ep)
        assert isinstance(out, torch.export.ExportedProgram), name
        assert [n for n in out.graph.nodes if n.op == "call_function"], name


def test_consumers_answer_on_a_strict_export() -> None:
    gm = capture_shim.capture_routes()[capture_shim.ROUTE_EXPORT_STRICT](_Model().eval(), ARGS)
    partitions = meta_consumers.source_partitions(gm.graph, [torch.nn.Linear])
    assert isinstance(partitions, dict)
    try:
        keep = meta_consumers.module_name_filter("block.linear")
    except meta_consumers.ConsumerUnavailable:
        pytest.skip("no pt2e stack in this env")
    assert any(keep(n) for n in gm.graph.nodes if n.op == "call_function")
