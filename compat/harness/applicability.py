"""Which (python, torch, torchao, stack) combinations can exist at all, and why not.

Every rule is a measured fact from reading the wheels (see ``version-landscape.md``):
a cell that breaks one is reported as *not applicable* with the reason, never run.
Versions newer than the newest known release inherit the newest known rule, so a
nightly is tried rather than silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

__all__ = ["STACKS", "not_applicable_reason"]

STACKS = ("torch.ao", "torchao")

Minor = tuple[int, int]


@dataclass(frozen=True)
class _Window:
    """Inclusive range of torch minors, ``None`` meaning open-ended."""

    first: Minor | None
    last: Minor | None
    why_first: str = ""
    why_last: str = ""

    def contains(self, torch: Minor) -> bool:
        return (self.first is None or torch >= self.first) and (
            self.last is None or torch <= self.last
        )

    def reason(self, torch: Minor) -> str | None:
        if self.first is not None and torch < self.first:
            return self.why_first
        if self.last is not None and torch > self.last:
            return self.why_last
        return None


# torch.ao's Quantizer-based pt2e flow: quantize_pt2e.py from 2.1, removed in 2.11.
_TORCH_AO_PT2E = _Window(
    (2, 1),
    (2, 10),
    why_first="torch.ao pt2e with a Quantizer starts in torch 2.1 (2.0 has only _quantize_pt2e)",
    why_last="torch.ao pt2e was removed in torch 2.11 (no torch/ao/quantization/quantize_pt2e.py)",
)

# torchao minor -> torch minors its pt2e imports against (landscape §3.9).
_TORCHAO_PT2E: dict[int, _Window] = {
    11: _Window((2, 3), None, why_first="torchao 0.11 pt2e was not checked below torch 2.3"),
    12: _Window(
        (2, 3),
        (2, 10),
        why_first="torchao 0.12 pt2e was not checked below torch 2.3",
        why_last="torchao 0.12 raises AttributeError at import on torch >= 2.11",
    ),
    **{
        minor: _Window(
            (2, 6),
            (2, 10),
            why_first=f"torchao 0.{minor} imports torch.fx.traceback.NodeSource (torch >= 2.6)",
            why_last=f"torchao 0.{minor} raises AttributeError at import on torch >= 2.11",
        )
        for minor in (13, 14, 15)
    },
    **{
        minor: _Window(
            (2, 6),
            None,
            why_first=f"torchao 0.{minor} imports torch.fx.traceback.NodeSource (torch >= 2.6)",
        )
        for minor in (16, 17)
    },
    18: _Window(
        (2, 7),
        None,
        why_first="torchao 0.18 imports torch._inductor.freezing_utils (torch >= 2.7)",
    ),
}
_NEWEST_TORCHAO = max(_TORCHAO_PT2E)

# CPython minor -> torch minors with a Linux x86_64 wheel for it (PyPI listings).
_PYTHON_WHEELS: dict[Minor, _Window] = {
    (3, 8): _Window((2, 0), (2, 4)),
    (3, 9): _Window((2, 0), (2, 8)),
    (3, 10): _Window((2, 0), (2, 14)),
    (3, 11): _Window((2, 0), None),
    (3, 12): _Window((2, 2), None),
    (3, 13): _Window((2, 5), None),
    (3, 14): _Window((2, 9), None),
}


def _minor(text: str) -> Minor | None:
    try:
        release = Version(text).release
    except InvalidVersion:
        return None
    return (release[0], release[1] if len(release) > 1 else 0)


def not_applicable_reason(
    *, python: str, torch: str, stack: str, torchao: str | None
) -> str | None:
    """Return why this cell cannot exist, or ``None`` when it is worth running.

    Unparseable versions (a nightly still to be resolved) are never ruled out here.
    """
    torch_minor = _minor(torch)
    py_minor = _minor(python)
    wheels = _PYTHON_WHEELS.get(py_minor) if py_minor else None
    if torch_minor is not None and wheels is not None and not wheels.contains(torch_minor):
        return f"torch {torch} has no wheel for CPython {python}"
    if stack == "torch.ao":
        if torchao is not None:
            return "the torch.ao stack does not use torchao; pair torchao with the torchao stack"
        return _TORCH_AO_PT2E.reason(torch_minor) if torch_minor else None
    if stack != "torchao":
        return f"unknown pt2e stack {stack!r}"
    if torchao is None:
        return "the torchao stack needs a torchao version"
    ao_minor = _minor(torchao)
    if ao_minor is None or torch_minor is None:
        return None
    if ao_minor < (0, 11):
        return f"torchao {torchao} has no pt2e (torchao.quantization.pt2e starts in 0.11)"
    window = _TORCHAO_PT2E.get(ao_minor[1], _TORCHAO_PT2E[_NEWEST_TORCHAO])
    if ao_minor[0] != 0:
        window = _TORCHAO_PT2E[_NEWEST_TORCHAO]
    return window.reason(torch_minor)
