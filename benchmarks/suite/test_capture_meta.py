"""Benchmark suite: what a backend's tests read after capture (node metadata)."""

from __future__ import annotations

import pytest
import torch

from compat.shims import export


class ConvBnRelu(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.relu(self.bn(self.conv(x)))


@pytest.fixture(scope="module")
def captured() -> torch.fx.GraphModule:
    return export.capture(ConvBnRelu().eval(), (torch.randn(1, 3, 8, 8),))


def test_every_call_keeps_a_stack_trace(captured: torch.fx.GraphModule) -> None:
    calls = [n for n in captured.graph.nodes if n.op == "call_function"]
    assert calls
    assert all(n.meta.get("stack_trace") for n in calls)


def test_every_call_keeps_its_module_stack(captured: torch.fx.GraphModule) -> None:
    calls = [n for n in captured.graph.nodes if n.op == "call_function"]
    assert any("conv" in str(n.meta.get("nn_module_stack")) for n in calls)
