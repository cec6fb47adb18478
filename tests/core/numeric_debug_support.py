"""What the numeric-debugger ports share (as upstream's files share ``TestCase`` helpers and
``common_quantization``): the XNNPACK quantizer they prepare with, the handles of
``Conv2dThenConv1d``'s ops, and an ``ExportedProgram`` by upstream's capture call. The tests
themselves stay one file per upstream text, test for test."""

from __future__ import annotations

from typing import Any

from compat.shims.export import CaptureRoute
from compat.shims.numeric_debug import NumericDebugger
from compat.shims.pt2e import Pt2eApi

OPS = ("conv2d", "squeeze", "conv1d")  # the call_function ops of Conv2dThenConv1d


def xnnpack_quantizer(pt2e: Pt2eApi) -> Any:
    """Upstream's quantizer for these tests: XNNPACK, symmetric, per tensor."""
    return pt2e.XNNPACKQuantizer().set_global(
        pt2e.get_symmetric_quantization_config(is_per_channel=False)
    )


def handles_of_ops(nd: NumericDebugger, model: Any) -> list:
    """The handles of the model's conv2d, squeeze and conv1d nodes."""
    graph = getattr(model, "graph_module", model).graph
    return [
        nd.handle(n)
        for n in graph.nodes
        if n.op == "call_function" and any(op in str(n.target) for op in OPS)
    ]


def exported(captures: dict, name: str, m: Any, example_inputs: tuple) -> Any:
    """``m`` captured by the route upstream's call names (``export``,
    ``export_for_training``): an ExportedProgram."""
    route: CaptureRoute = captures[name]
    return route.program(m, example_inputs)
