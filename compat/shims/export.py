"""Program capture for pt2e, the way upstream's pt2e tests captured in each torch era.

Era table (docs/version-landscape.md §3.4, §4; upstream's PT2EQuantizationTestCase):
  torch < 2.5  ``torch._export.capture_pre_autograd_graph`` - the only pre-dispatch capture;
               2.2's ``torch.export.export`` returns a decomposed graph XNNPACK cannot match.
  2.5 - 2.8    ``torch.export.export_for_training(..., strict=True).module()``.
  >= 2.9       ``torch.export.export(..., strict=True).module()`` (export_for_training is
               deprecated in 2.9 and gone in 2.11; ``export`` is the same training-IR trace).
``strict`` is passed explicitly wherever the signature has it (its default flips to False in
2.8). From 2.9 ``.module()`` inserts a ``_guards_fn`` call_module node; we ask for
``check_guards=False`` so graphs keep one shape. ``COMPAT_CAPTURE`` overrides the era choice.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable, Dict, Optional, Tuple

from compat.shims import routes
from compat.shims.versions import torch_version

ENV_VAR = "COMPAT_CAPTURE"
CPAG = "capture_pre_autograd_graph"
EXPORT_FOR_TRAINING = "export_for_training"
EXPORT = "export"
CAPTURES = (CPAG, EXPORT_FOR_TRAINING, EXPORT)


class CaptureUnavailable(RuntimeError):
    """The requested capture API does not exist in this torch."""


def _capture_fn(kind: str) -> Optional[Callable]:
    import torch

    if kind == CPAG:
        import torch._export as private_export

        return getattr(private_export, CPAG, None)
    return getattr(torch.export, kind, None)


def available_captures() -> Dict[str, str]:
    """``{api: "strict=<default>" | "no strict param" | "absent"}`` for each capture API."""
    out = {}
    for kind in CAPTURES:
        fn = _capture_fn(kind)
        if fn is None:
            out[kind] = "absent"
            continue
        param = inspect.signature(fn).parameters.get("strict")
        out[kind] = "no strict param" if param is None else f"strict default={param.default}"
    return out


def default_capture() -> str:
    """The capture API upstream's pt2e tests used for this torch (overridable by env)."""
    wanted = os.environ.get(ENV_VAR, "").strip()
    if wanted:
        if wanted not in CAPTURES:
            raise CaptureUnavailable(f"{ENV_VAR}={wanted!r} is not one of {CAPTURES}")
        return wanted
    version = torch_version()
    if version < (2, 5, 0):
        return CPAG
    if version < (2, 9, 0):
        return EXPORT_FOR_TRAINING
    return EXPORT


def _strict_kwargs(fn: Callable, strict: bool) -> Tuple[Dict[str, Any], str]:
    if "strict" in inspect.signature(fn).parameters:
        return {"strict": strict}, f"strict={strict}"
    return {}, "no strict param"


def _module_of(ep: Any) -> Tuple[Any, str]:
    """``ep.module()``, without the 2.9+ ``_guards_fn`` node when torch lets us."""
    if "check_guards" in inspect.signature(ep.module).parameters:
        routes.adapted(
            "capture",
            "upstream calls .module(), which inserts a _guards_fn "
            "call_module node from torch 2.9; the shim passes check_guards=False "
            "so graphs keep one shape",
        )
        return ep.module(check_guards=False), ".module(check_guards=False)"
    return ep.module(), ".module()"


def capture(model: Any, example_inputs: Tuple[Any, ...], *, strict: bool = True) -> Any:
    """Capture ``model`` into the pre-autograd ATen GraphModule that prepare_pt2e wants."""
    kind = default_capture()
    fn = _capture_fn(kind)
    if fn is None:
        raise CaptureUnavailable(f"torch has no {kind}")
    kwargs, strict_text = _strict_kwargs(fn, strict)
    with routes.capture_warnings(kind):
        if kind == CPAG:
            gm, how = fn(model, example_inputs, **kwargs), ""
        else:
            gm, how = _module_of(fn(model, example_inputs, **kwargs))
    routes.record("capture", f"{kind}({strict_text}){how}")
    if kind == EXPORT_FOR_TRAINING and os.environ.get("COMPAT_PT2E_STACK") == "torchao":
        routes.adapted(
            "capture",
            "torchao's own test (0.13+) captures with "
            "torch.export.export(m, inputs, strict=True).module(); the shim uses "
            "this torch's export_for_training, as torch's own test did",
        )
    return gm


def reexport(model: Any, example_inputs: Tuple[Any, ...], *, strict: bool = True) -> Any:
    """``torch.export.export`` of a (converted) model: upstream's decomposition check step.

    Returns the ExportedProgram; callers read ``ep.graph_module`` (no ``.module()`` stamp).
    """
    import torch

    fn = torch.export.export
    kwargs, strict_text = _strict_kwargs(fn, strict)
    with routes.capture_warnings("reexport"):
        ep = fn(model, example_inputs, **kwargs)
    routes.record("reexport", f"export({strict_text}).graph_module")
    return ep
