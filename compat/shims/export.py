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


# Capture routes for the metadata contracts (tests/core/test_metadata_contracts.py): every
# route this torch offers, found by feature detection, never by version number. Evidence
# (docs/version-landscape.md §1 column (6), §4):
#   export_strict       ``torch.export.export`` (2.1+); ``strict`` is a parameter from 2.2,
#                       default True up to 2.7, False from 2.8, so it is always passed.
#   export_nonstrict    ``torch.export.export(..., strict=False)``: only where the signature
#                       has ``strict`` (2.2+).
#   export_for_training ``torch.export.export_for_training(..., strict=True)``: 2.5 - 2.10
#                       (FutureWarning from 2.9, removed in 2.11).
#   capture_pre_autograd_graph  ``torch._export.capture_pre_autograd_graph``: 2.1 - 2.6
#                       (warns from 2.4/2.5, removed in 2.7); returns a GraphModule, no
#                       ExportedProgram, so its route re-exports with strict ``export``.
ROUTE_EXPORT_STRICT = "export_strict"
ROUTE_EXPORT_NONSTRICT = "export_nonstrict"
ROUTE_EXPORT_FOR_TRAINING = "export_for_training"
ROUTE_CPAG = "capture_pre_autograd_graph"
ROUTE_NAMES = (ROUTE_EXPORT_STRICT, ROUTE_EXPORT_NONSTRICT, ROUTE_EXPORT_FOR_TRAINING, ROUTE_CPAG)


class CaptureRoute:
    """One named capture route: ``route(model, inputs)`` -> the GraphModule pt2e consumes.

    ``route.program(model, inputs)`` -> an ``ExportedProgram`` of ``model`` on this route
    (a GraphModule-only route such as capture_pre_autograd_graph uses strict ``export``);
    ``route.how`` says which call it made.
    """

    def __init__(self, name: str, fn: Callable, kwargs: Dict[str, Any], how: str) -> None:
        self.name = name
        self._fn = fn
        self._kwargs = kwargs
        self.how = how

    def __repr__(self) -> str:
        return f"CaptureRoute({self.name!r}: {self.how})"

    def program(self, model: Any, example_inputs: Tuple[Any, ...]) -> Any:
        if self.name == ROUTE_CPAG:
            import torch

            kwargs, _ = _strict_kwargs(torch.export.export, True)
            with routes.capture_warnings(f"{self.name} program"):
                return torch.export.export(model, example_inputs, **kwargs)
        with routes.capture_warnings(self.name):
            return self._fn(model, example_inputs, **self._kwargs)

    def __call__(self, model: Any, example_inputs: Tuple[Any, ...]) -> Any:
        if self.name == ROUTE_CPAG:
            with routes.capture_warnings(self.name):
                return self._fn(model, example_inputs, **self._kwargs)
        ep = self.program(model, example_inputs)
        with routes.capture_warnings(self.name):
            if "check_guards" in inspect.signature(ep.module).parameters:
                return ep.module(check_guards=False)  # no 2.9+ _guards_fn node
            return ep.module()


def capture_routes() -> Dict[str, CaptureRoute]:
    """``{route name: CaptureRoute}`` for every capture route this torch has, in
    :data:`ROUTE_NAMES` order; a route whose API is absent is left out."""
    out: Dict[str, CaptureRoute] = {}
    export_fn = _capture_fn(EXPORT)
    if export_fn is not None:
        has_strict = "strict" in inspect.signature(export_fn).parameters
        kwargs = {"strict": True} if has_strict else {}
        out[ROUTE_EXPORT_STRICT] = CaptureRoute(
            ROUTE_EXPORT_STRICT, export_fn, kwargs, "export(strict=True)"
        )
        if has_strict:
            out[ROUTE_EXPORT_NONSTRICT] = CaptureRoute(
                ROUTE_EXPORT_NONSTRICT, export_fn, {"strict": False}, "export(strict=False)"
            )
    eft = _capture_fn(EXPORT_FOR_TRAINING)
    if eft is not None:
        kwargs, text = _strict_kwargs(eft, True)
        out[ROUTE_EXPORT_FOR_TRAINING] = CaptureRoute(
            ROUTE_EXPORT_FOR_TRAINING, eft, kwargs, f"export_for_training({text})"
        )
    cpag = _capture_fn(CPAG)
    if cpag is not None:
        out[ROUTE_CPAG] = CaptureRoute(ROUTE_CPAG, cpag, {}, "capture_pre_autograd_graph()")
    return out


def program_passes() -> Dict[str, Callable]:
    """``{name: fn(ExportedProgram) -> ExportedProgram}`` for the program-level passes this
    torch has: ``run_decompositions`` (``ExportedProgram.run_decompositions``, 2.1+) and
    ``save_load`` (``torch.export.save`` then ``torch.export.load`` through memory, 2.1+)."""
    import io

    import torch

    out: Dict[str, Callable] = {}
    ep_class = getattr(torch.export, "ExportedProgram", None)
    if ep_class is not None and hasattr(ep_class, "run_decompositions"):

        def run_decompositions(ep: Any) -> Any:
            with routes.capture_warnings("run_decompositions"):
                return ep.run_decompositions()

        out["run_decompositions"] = run_decompositions
    save = getattr(torch.export, "save", None)
    load = getattr(torch.export, "load", None)
    if save is not None and load is not None:

        def save_load(ep: Any) -> Any:
            buffer = io.BytesIO()
            with routes.capture_warnings("save_load"):
                save(ep, buffer)
                buffer.seek(0)
                return load(buffer)

        out["save_load"] = save_load
    return out
