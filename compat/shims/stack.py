"""Which pt2e stack this cell uses: torch's ``torch.ao`` or ``torchao.quantization.pt2e``.

The two stacks have separate Quantizer / QuantizationSpec / observer classes, so a cell
picks exactly one and every pt2e name comes from it. The harness sets
``COMPAT_PT2E_STACK`` per cell; without it, torch.ao wins where it still exists (<= 2.10).
"""

from __future__ import annotations

import importlib
import os
from typing import Optional

from compat.shims import routes

ENV_VAR = "COMPAT_PT2E_STACK"
TORCH_AO = "torch.ao"
TORCHAO = "torchao"

# The module whose import proves a stack usable (docs/version-landscape.md §3.1, §4); keys:
# stacks, in the order tried. The harness declares the same names for the matrix (its
# STACKS); neither side imports the other, the cell only checks what it was given.
_PROBE_MODULE = {
    TORCH_AO: "torch.ao.quantization.quantize_pt2e",
    TORCHAO: "torchao.quantization.pt2e.quantize_pt2e",
}


class StackUnavailable(RuntimeError):
    """The requested pt2e stack cannot be imported next to this torch."""


def _import_error(stack: str) -> Optional[str]:
    """None if the stack's entry module imports, else ``"ExcType: message"``."""
    try:
        with routes.capture_warnings(f"import {stack}"):
            importlib.import_module(_PROBE_MODULE[stack])
    except Exception as exc:  # noqa: BLE001 - torchao can fail with AttributeError too
        return f"{type(exc).__name__}: {exc}"
    return None


def available_stacks() -> dict:
    """``{stack: "ok" | "unavailable: <reason>"}`` for both stacks."""
    out = {}
    for stack in _PROBE_MODULE:
        err = _import_error(stack)
        out[stack] = "ok" if err is None else f"unavailable: {err}"
    return out


def requested_stack() -> Optional[str]:
    """The stack named by ``COMPAT_PT2E_STACK``, or None when unset/empty."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    if value not in _PROBE_MODULE:
        raise StackUnavailable(f"{ENV_VAR}={value!r} is not one of {tuple(_PROBE_MODULE)}")
    return value


def resolve_stack() -> str:
    """The stack to use here; raises :class:`StackUnavailable` with the import error."""
    wanted = requested_stack()
    if wanted is not None:
        err = _import_error(wanted)
        if err is not None:
            raise StackUnavailable(f"pt2e stack {wanted!r} ({ENV_VAR}) unavailable: {err}")
        return wanted
    ao_err = _import_error(TORCH_AO)
    if ao_err is None:
        return TORCH_AO
    tao_err = _import_error(TORCHAO)
    if tao_err is None:
        return TORCHAO
    raise StackUnavailable(f"no pt2e stack imports: torch.ao -> {ao_err}; torchao -> {tao_err}")
