"""Benchmark suite: prepare and convert a linear model with the stack's XNNPACK quantizer."""

from __future__ import annotations

import torch

from compat.shims import export, pt2e


def test_linear_converts_to_q_dq() -> None:
    api = pt2e.api()
    model = torch.nn.Sequential(torch.nn.Linear(8, 4)).eval()
    inputs = (torch.randn(2, 8),)
    quantizer = api.XNNPACKQuantizer().set_global(api.get_symmetric_quantization_config())
    prepared = api.prepare_pt2e(export.capture(model, inputs), quantizer)
    prepared(*inputs)
    converted = api.convert_pt2e(prepared)
    targets = [str(n.target) for n in converted.graph.nodes if n.op == "call_function"]
    assert any("dequantize_per_tensor" in t for t in targets)
