"""Models from upstream's ``TestHelperModules`` used by the test core (plain nn.Modules)."""

from __future__ import annotations

import torch


class Conv2dWithObsSharingOps(torch.nn.Module):
    """conv2d -> adaptive_avg_pool2d -> hardtanh -> view -> linear (upstream verbatim)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3)
        self.hardtanh = torch.nn.Hardtanh()
        self.adaptive_avg_pool2d = torch.nn.AdaptiveAvgPool2d((1, 1))
        self.linear = torch.nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = self.adaptive_avg_pool2d(x)
        x = self.hardtanh(x)
        x = x.view(-1, 3)
        x = self.linear(x)
        return x


class MatmulWithConstInput(torch.nn.Module):
    """matmul(get_attr, x) -> add -> relu (defined inline in upstream's last test)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_parameter("w", torch.nn.Parameter(torch.rand(8, 16)))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = torch.matmul(self.w, x)
        z = x + y
        return torch.nn.functional.relu(z)


class ConvBnReLU(torch.nn.Module):
    """conv2d -> batch_norm -> relu, as modules (the metadata contracts' conv-bn-relu)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3)
        self.bn = torch.nn.BatchNorm2d(3)
        self.relu = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class SingleLinear(torch.nn.Module):
    """One nn.Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class _Leaf(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3)
        self.leaf = _Leaf()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(self.conv(x), (1, 1))
        return self.leaf(x.view(-1, 3))


class NestedSubmodules(torch.nn.Module):
    """block.conv and block.leaf.linear: an nn_module_stack three modules deep."""

    def __init__(self) -> None:
        super().__init__()
        self.block = _Block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class OddlyNamedBlock(torch.nn.Module):
    """A user module class of its own, under a name that is not a Python-style path."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.proj(x))


class CustomModuleName(torch.nn.Module):
    """``add_module("encoder-0", ...)``: a submodule name with a dash, reachable only
    through ``getattr``, and a module class that is not torch's."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module("encoder-0", OddlyNamedBlock())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, "encoder-0")(x)


# --- models of upstream's numeric-debugger tests (TestHelperModules, same layers/shapes) ---


class Conv2dThenConv1d(torch.nn.Module):
    """conv2d(3->3, k3) -> squeeze(0) -> conv1d(3->3, k3), on a 1x3x5x5 input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1d = torch.nn.Conv1d(3, 3, 3)
        self.conv2d = torch.nn.Conv2d(3, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1d(self.conv2d(x).squeeze(0))

    def example_inputs(self) -> tuple:
        return (torch.randn(1, 3, 5, 5),)


class TwoLinearModule(torch.nn.Module):
    """linear(8->16, no bias) -> linear(16->8), on a 2x8 input."""

    def __init__(self) -> None:
        super().__init__()
        self.linear1 = torch.nn.Linear(8, 16, bias=False)
        self.linear2 = torch.nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.linear1(x))

    def example_inputs(self) -> tuple:
        return (torch.randn(2, 8),)


class Conv2dWithSplit(torch.nn.Module):
    """conv2d -> split(2, dim=1) -> cat: an op whose output is a list of tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 3, 3)
        self.conv2 = torch.nn.Conv2d(3, 3, 3)  # unused, as upstream's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(self.conv1(x), 2, dim=1)
        return torch.cat(list(parts), dim=1)

    def example_inputs(self) -> tuple:
        return (torch.randn(1, 3, 16, 16),)


class ControlFlow(torch.nn.Module):
    """mm, then a ``map`` over rows whose body holds a ``cond`` nesting another ``cond``."""

    def forward(
        self, xs: torch.Tensor, pred1: torch.Tensor, pred2: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        from functorch.experimental import control_flow

        def inner_true(t: torch.Tensor) -> torch.Tensor:
            doubled = t + t
            return torch.mm(doubled, doubled)

        def inner_false(t: torch.Tensor) -> torch.Tensor:
            return torch.mm(t, t)

        def outer_true(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
            return t + control_flow.cond(p, inner_true, inner_false, [t])

        def outer_false(t: torch.Tensor, _p: torch.Tensor) -> torch.Tensor:
            return t.cos()

        def body(
            x: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, t: torch.Tensor
        ) -> torch.Tensor:
            chosen = control_flow.cond(p1, outer_true, outer_false, [t, p2])
            return (x.cos() + chosen).sin()

        return control_flow.map(body, xs, pred1, pred2, torch.mm(y, y))

    def example_inputs(self) -> tuple:
        return (torch.ones(2, 2), torch.tensor([False]), torch.tensor([False]), torch.ones(2, 2))
