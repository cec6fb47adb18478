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
