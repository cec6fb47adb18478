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
