"""Upstream's pt2e graph-utils contracts (sequential source partitions), on our shims.

Our own code; the contracts, models, inputs and test names are upstream's, test for test:

* pytorch/pytorch ``test/quantization/pt2e/test_graph_utils.py`` (index commit
  01cdd593551d4ce0d0fe0bbab606656815ce87d9, sha256 in docs/ported-suites-vs-upstream.md);
* pytorch/ao ``test/quantization/pt2e/test_graph_utils.py`` at v0.13.0 / v0.16.0 (sha256
  87ac414d...) and v0.18.0 (1cc6c014..., adds ``test_collect_producer_nodes_no_placeholder``).

Capture is ``torch._dynamo.export(..., aten_graph=True)`` as upstream's (the partitions are
read from dynamo's ``source_fn_stack``). Where the utilities live is the shim's business
(:mod:`compat.shims.graph_utils`); a utility this stack lacks skips the test, by feature.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch._dynamo as torchdynamo

from compat.shims.graph_utils import GraphUtils, graph_utils


@pytest.fixture(scope="module")
def utils() -> GraphUtils:
    return graph_utils()


def _dynamo_graph(model: torch.nn.Module, example_inputs: tuple) -> torch.fx.GraphModule:
    gm, _guards = torchdynamo.export(model, *copy.deepcopy(example_inputs), aten_graph=True)
    return gm


class _ConvBnConvRelu(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 3, 3)
        self.bn1 = torch.nn.BatchNorm2d(3)
        self.conv2 = torch.nn.Conv2d(3, 3, 3)
        self.relu2 = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.relu(self.bn1(self.conv1(x)))
        return self.relu2(self.conv2(y))


class _BnConvRelu(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn1 = torch.nn.BatchNorm2d(3)
        self.conv2 = torch.nn.Conv2d(3, 3, 3)
        self.relu2 = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(self.conv2(self.bn1(x)))


class _ConvRelu6(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.relu6(self.conv(x))


class _AddBuffer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight


_INPUT = (torch.randn(1, 3, 5, 5),)


def test_conv_bn_conv_relu(utils: GraphUtils) -> None:
    gm = _dynamo_graph(_ConvBnConvRelu().eval(), _INPUT)
    nn = torch.nn
    assert len(utils.find_sequential_partitions(gm, [nn.Conv2d, nn.BatchNorm2d])) == 1
    assert len(utils.find_sequential_partitions(gm, [nn.Conv2d, nn.BatchNorm2d, nn.ReLU])) == 1
    # conv2d twice in one sequence (module and functional are equivalent types): refused.
    with pytest.raises(ValueError):  # noqa: PT011 - upstream asserts the type only
        utils.find_sequential_partitions(
            gm, [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, torch.nn.functional.conv2d]
        )


def test_conv_bn_relu(utils: GraphUtils) -> None:
    gm = _dynamo_graph(_BnConvRelu().eval(), _INPUT)
    nn = torch.nn
    assert len(utils.find_sequential_partitions(gm, [nn.Conv2d, nn.BatchNorm2d])) == 0
    assert len(utils.find_sequential_partitions(gm, [nn.BatchNorm2d, nn.Conv2d])) == 1
    assert len(utils.find_sequential_partitions(gm, [nn.BatchNorm2d, nn.ReLU])) == 0


def test_customized_equivalet_types_dict(utils: GraphUtils) -> None:  # upstream's spelling
    gm = _dynamo_graph(_ConvRelu6().eval(), _INPUT)
    types = utils.get_equivalent_types()
    types.append({torch.nn.ReLU6, torch.nn.functional.relu6})
    utils.update_equivalent_types_dict(types)
    assert len(utils.find_sequential_partitions(gm, [torch.nn.Conv2d, torch.nn.ReLU6])) == 1


def test_collect_producer_nodes_no_placeholder(utils: GraphUtils) -> None:
    if not utils.has("collect_producer_nodes"):
        pytest.skip(f"{utils.home} has no collect_producer_nodes")
    gm = _dynamo_graph(_AddBuffer().eval(), (torch.randn(3),))
    adds = [n for n in gm.graph.nodes if n.op == "call_function" and "add" in str(n.target)]
    # the add reads a placeholder: no producer chain; its buffer operand has one.
    assert utils.collect_producer_nodes(adds[0]) is None
    assert utils.collect_producer_nodes(adds[0].args[1]) is not None
