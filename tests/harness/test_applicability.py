from __future__ import annotations

import pytest

from compat.harness.config.applicability import not_applicable_reason


@pytest.mark.parametrize(
    ("python", "torch", "stack", "torchao", "expected"),
    [
        ("3.11", "2.0.1", "torch.ao", None, "starts in torch 2.1"),
        ("3.11", "2.1.2", "torch.ao", None, None),
        ("3.11", "2.10.0", "torch.ao", None, None),
        ("3.11", "2.11.0", "torch.ao", None, "removed in torch 2.11"),
        ("3.11", "2.16.0.dev20261120+cpu", "torch.ao", None, "removed in torch 2.11"),
        ("3.11", "2.5.1", "torchao", "0.13.0", "NodeSource (torch >= 2.6)"),
        ("3.11", "2.6.0", "torchao", "0.13.0", "torchao's own pt2e tests require torch 2.7"),
        ("3.11", "2.7.1", "torchao", "0.11.0", None),
        ("3.11", "2.11.0", "torchao", "0.15.0", "AttributeError at import"),
        ("3.11", "2.6.0", "torchao", "0.18.0", "freezing_utils (torch >= 2.7)"),
        ("3.11", "2.15.0", "torchao", "0.18.0", None),
        ("3.11", "2.15.0", "torchao", "0.10.0", "has no pt2e"),
        ("3.11", "2.17.0", "torchao", "0.20.0", None),  # newer than known: try it
        ("3.11", "2.5.1", "torchao", "0.12.0", "convert folds only from 2.7"),
        ("3.13", "2.4.1", "torch.ao", None, "no wheel for CPython 3.13"),
        ("3.10", "2.15.0", "torchao", "0.18.0", "no wheel for CPython 3.10"),
        ("3.9", "2.8.0", "torch.ao", None, None),
        ("3.11", "2.8.0", "torch.ao", "0.13.0", "does not use torchao"),
        ("3.11", "2.8.0", "torchao", None, "needs a torchao version"),
        ("3.11", "latest", "torch.ao", None, None),  # unresolved nightly: decided later
    ],
)
def test_rules(
    python: str, torch: str, stack: str, torchao: str | None, expected: str | None
) -> None:
    reason = not_applicable_reason(python=python, torch=torch, stack=stack, torchao=torchao)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason
