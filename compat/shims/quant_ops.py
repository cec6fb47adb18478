"""Quantize / dequantize op sets that pt2e convert inserts, per torch / torchao.

Standard observers emit ``quantized_decomposed.*`` in every version and stack (landscape
§3.6). That library lives in ``torch.ao.quantization.fx._decomposed`` and is registered only
when that module is imported, which from torch 2.11 no pt2e module of torch does for us, so
we import it explicitly. Affine observers use ``pt2e_quant.*`` (torch.ao 2.7-2.10) or
``torchao.*`` (torchao); those are added when their namespace is registered.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, FrozenSet, List, Tuple

from compat.shims import routes

# (namespace, packet.overload) per role; missing ones are skipped, never an error.
_QUANTIZE: Tuple[Tuple[str, str], ...] = (
    ("quantized_decomposed", "quantize_per_tensor.default"),
    ("quantized_decomposed", "quantize_per_tensor.tensor"),
    ("quantized_decomposed", "quantize_per_tensor.tensor2"),
    ("quantized_decomposed", "quantize_per_channel.default"),
    ("pt2e_quant", "quantize_affine.default"),
    ("torchao", "quantize_affine.default"),
)
_DEQUANTIZE: Tuple[Tuple[str, str], ...] = (
    ("quantized_decomposed", "dequantize_per_tensor.default"),
    ("quantized_decomposed", "dequantize_per_tensor.tensor"),
    ("quantized_decomposed", "dequantize_per_tensor.tensor2"),
    ("quantized_decomposed", "dequantize_per_channel.default"),
    ("pt2e_quant", "dequantize_affine.default"),
    ("torchao", "dequantize_affine.default"),
)
_CHOOSE_QPARAMS: Tuple[Tuple[str, str], ...] = (
    ("quantized_decomposed", "choose_qparams.tensor"),
    ("quantized_decomposed", "choose_qparams_symmetric.tensor"),
    ("torchao", "choose_qparams_affine.default"),
)
# Importing these registers a namespace; each may be absent in a given version.
_REGISTRARS: Dict[str, str] = {
    "quantized_decomposed": "torch.ao.quantization.fx._decomposed",
    "pt2e_quant": "torch.ao.quantization.pt2e._affine_quantization",
    "torchao": "torchao.quantization.quant_primitives",
}


def register(namespace: str = "quantized_decomposed") -> bool:
    """Import the module that defines ``namespace``; False if it is not in this env."""
    try:
        with routes.capture_warnings(f"register {namespace}"):
            importlib.import_module(_REGISTRARS[namespace])
    except Exception:  # noqa: BLE001 - absent namespace is a fact, not an error
        return False
    return True


def lookup(namespace: str, qualified: str) -> Any:
    """``torch.ops.<namespace>.<packet>.<overload>`` or None when not registered."""
    import torch

    packet, _, overload = qualified.partition(".")
    try:
        return getattr(getattr(getattr(torch.ops, namespace), packet), overload or "default")
    except (AttributeError, RuntimeError):
        return None


def qd(qualified: str) -> Any:
    """A ``quantized_decomposed`` op, registering the library first; KeyError if absent."""
    register("quantized_decomposed")
    op = lookup("quantized_decomposed", qualified)
    if op is None:
        raise KeyError(f"torch.ops.quantized_decomposed.{qualified} is not registered")
    return op


def _present(table: Tuple[Tuple[str, str], ...]) -> FrozenSet[Any]:
    register("quantized_decomposed")
    ops = (lookup(ns, name) for ns, name in table)
    return frozenset(op for op in ops if op is not None)


def quantize_ops() -> FrozenSet[Any]:
    """Every quantize op registered here (all namespaces)."""
    return _present(_QUANTIZE)


def dequantize_ops() -> FrozenSet[Any]:
    """Every dequantize op registered here (all namespaces)."""
    return _present(_DEQUANTIZE)


def choose_qparams_ops() -> FrozenSet[Any]:
    """Every choose-qparams op registered here (all namespaces)."""
    return _present(_CHOOSE_QPARAMS)


def namespaces_present() -> List[str]:
    """Which quant-op namespaces have at least one of our ops registered right now."""
    register("quantized_decomposed")
    found = []
    for ns in ("quantized_decomposed", "pt2e_quant", "torchao"):
        table = _QUANTIZE + _DEQUANTIZE + _CHOOSE_QPARAMS
        if any(lookup(n, name) is not None for n, name in table if n == ns):
            found.append(ns)
    routes.record("quant_ops", "+".join(found) or "none")
    return found
