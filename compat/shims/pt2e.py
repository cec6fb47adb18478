"""The pt2e quantization surface, from exactly one stack (see :mod:`compat.shims.stack`).

torch.ao (torch 2.1-2.10) and torchao (>= 0.11; the only stack on torch >= 2.11) ship the
same API under different modules with separate classes, so mixing them silently breaks
``isinstance`` checks. :func:`api` resolves every name from one stack and records the route.
Names are also importable directly (``from compat.shims.pt2e import prepare_pt2e``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict

from compat.shims import routes
from compat.shims.stack import TORCH_AO, StackUnavailable, resolve_stack
from compat.shims.versions import torch_version, torchao_version_string

__all__ = ["Pt2eApi", "StackUnavailable", "api"]

# name -> (module under torch.ao, module under torchao); None means "not in that stack".
_LOCATIONS: Dict[str, tuple] = {
    "prepare_pt2e": (
        "torch.ao.quantization.quantize_pt2e",
        "torchao.quantization.pt2e.quantize_pt2e",
    ),
    "prepare_qat_pt2e": (
        "torch.ao.quantization.quantize_pt2e",
        "torchao.quantization.pt2e.quantize_pt2e",
    ),
    "convert_pt2e": (
        "torch.ao.quantization.quantize_pt2e",
        "torchao.quantization.pt2e.quantize_pt2e",
    ),
    "Quantizer": ("torch.ao.quantization.quantizer", "torchao.quantization.pt2e.quantizer"),
    "QuantizationAnnotation": (
        "torch.ao.quantization.quantizer",
        "torchao.quantization.pt2e.quantizer",
    ),
    "QuantizationSpec": ("torch.ao.quantization.quantizer", "torchao.quantization.pt2e.quantizer"),
    "QuantizationSpecBase": (
        "torch.ao.quantization.quantizer",
        "torchao.quantization.pt2e.quantizer",
    ),
    "SharedQuantizationSpec": (
        "torch.ao.quantization.quantizer",
        "torchao.quantization.pt2e.quantizer",
    ),
    "DerivedQuantizationSpec": (
        "torch.ao.quantization.quantizer",
        "torchao.quantization.pt2e.quantizer",
    ),
    "FixedQParamsQuantizationSpec": (
        "torch.ao.quantization.quantizer",
        "torchao.quantization.pt2e.quantizer",
    ),
    "get_symmetric_quantization_config": (
        "torch.ao.quantization.quantizer.xnnpack_quantizer",
        "torchao.testing.pt2e._xnnpack_quantizer",
    ),
    "XNNPACKQuantizer": (
        "torch.ao.quantization.quantizer.xnnpack_quantizer",
        "torchao.testing.pt2e._xnnpack_quantizer",
    ),
    "OP_TO_ANNOTATOR": (
        "torch.ao.quantization.quantizer.xnnpack_quantizer_utils",
        "torchao.testing.pt2e._xnnpack_quantizer_utils",
    ),
    "move_exported_model_to_eval": ("torch.ao.quantization", "torchao.quantization.pt2e"),
    "PortNodeMetaForQDQ": (
        "torch.ao.quantization.pt2e.port_metadata_pass",
        "torchao.quantization.pt2e.quantizer",
    ),
}
_OPTIONAL = {"PortNodeMetaForQDQ", "prepare_qat_pt2e", "move_exported_model_to_eval"}


@dataclass(frozen=True)
class Pt2eApi:
    """Every pt2e name the test core needs, all from one stack.

    ``convert_pt2e`` is wrapped: call it as ``convert_pt2e(model, fold_quantize=True)`` on
    every version; ``folds_quantize`` says whether weight quantize ops are really folded.
    """

    stack: str
    label: str
    names: Dict[str, Any] = field(repr=False)
    fold_quantize_param: bool
    folds_quantize: bool
    fold_reason: str

    def __getattr__(self, name: str) -> Any:
        names = object.__getattribute__(self, "names")
        if name in names:
            return names[name]
        raise AttributeError(f"pt2e stack {self.stack!r} has no {name!r}")


def _load(stack: str, name: str) -> Any:
    ao_mod, tao_mod = _LOCATIONS[name]
    module = importlib.import_module(ao_mod if stack == TORCH_AO else tao_mod)
    return getattr(module, name)


def _recording(fn: Callable, where: str) -> Callable:
    """Wrap ``fn`` so warnings it emits are recorded, not raised."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with routes.capture_warnings(where):
            return fn(*args, **kwargs)

    return call


def _fold_facts(stack: str, convert: Callable) -> tuple:
    """(has fold_quantize param, folds when asked, why): docs/version-landscape.md §3.2."""
    has_param = "fold_quantize" in inspect.signature(convert).parameters
    if not has_param:
        return False, False, "convert_pt2e has no fold_quantize (torch 2.1): never folds"
    if stack != TORCH_AO and torch_version() < (2, 7, 0):
        return True, False, "torchao folds only on torch >= 2.7"
    return True, True, "fold_quantize=True passed explicitly"


def _make_convert(raw: Callable, has_param: bool) -> Callable:
    def convert_pt2e(
        model: Any, *, use_reference_representation: bool = False, fold_quantize: bool = True
    ) -> Any:
        kwargs: Dict[str, Any] = {"use_reference_representation": use_reference_representation}
        if has_param:
            kwargs["fold_quantize"] = fold_quantize
        with routes.capture_warnings("convert_pt2e"):
            return raw(model, **kwargs)

    convert_pt2e.__doc__ = raw.__doc__
    return convert_pt2e


@functools.lru_cache(maxsize=None)
def api() -> Pt2eApi:
    """Resolve the pt2e surface once per process (raises :class:`StackUnavailable`)."""
    stack = resolve_stack()
    label = stack if stack == TORCH_AO else f"torchao-{torchao_version_string()}"
    names: Dict[str, Any] = {}
    with routes.capture_warnings(f"import {stack} pt2e"):
        for name in _LOCATIONS:
            try:
                names[name] = _load(stack, name)
            except (ImportError, AttributeError) as exc:
                if name not in _OPTIONAL:
                    raise StackUnavailable(f"{label}: cannot import {name}: {exc}") from exc
    raw_convert = names["convert_pt2e"]
    has_param, folds, reason = _fold_facts(stack, raw_convert)
    param = inspect.signature(raw_convert).parameters.get("fold_quantize")
    if param is not None and param.default is False:  # torch 2.2
        routes.adapted(
            "convert",
            "this convert_pt2e defaults to fold_quantize=False (upstream's "
            "test calls convert_pt2e(m)); the shim passes fold_quantize=True so the "
            "converted graph has the same shape as on every later version",
        )
    names["convert_pt2e"] = _make_convert(raw_convert, has_param)
    for fn in (
        "prepare_pt2e",
        "prepare_qat_pt2e",
        "move_exported_model_to_eval",
        "get_symmetric_quantization_config",
    ):
        if fn in names:
            names[fn] = _recording(names[fn], fn)
    routes.record("pt2e", label)
    routes.record(
        "convert",
        f"convert_pt2e(fold_quantize={'True' if has_param else 'n/a'})"
        f"{'' if folds else ' no-fold'}: {reason}",
    )
    return Pt2eApi(stack, label, names, has_param, folds, reason)


def __getattr__(name: str) -> Any:  # PEP 562: lazy ``from compat.shims.pt2e import X``
    if name in _LOCATIONS:
        return getattr(api(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
