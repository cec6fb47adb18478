"""Benchmark suite: the quantize/dequantize ops a lowering pattern-matches on."""

from __future__ import annotations

import pytest
import torch

from compat.shims import quant_ops


@pytest.mark.parametrize("scale", [0.05, 0.1, 0.5])
def test_per_tensor_roundtrip_is_within_half_a_step(scale: float) -> None:
    x = torch.linspace(-3, 3, 101)
    q = quant_ops.qd("quantize_per_tensor.default")(x, scale, 0, -128, 127, torch.int8)
    back = quant_ops.qd("dequantize_per_tensor.default")(q, scale, 0, -128, 127, torch.int8)
    inside = x.abs() <= 127 * scale
    assert torch.all((back - x)[inside].abs() <= scale / 2 + 1e-6)
