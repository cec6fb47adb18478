"""Capture each of ``convert_pt2e``'s conv-bn fold patterns once per process, not per call.

``convert_pt2e`` folds QAT conv-bn patterns (``qat_utils._fold_conv_bn_qat``). Where that
function has no early exit for a graph without batch norm (torch 2.2's torch.ao: it calls
``_fold_conv_bn_qat_helper`` unconditionally), every convert re-captures 24 match and
replacement patterns with ``capture_pre_autograd_graph`` through
``qat_utils.get_aten_graph_module``: about 11 s per ``convert_pt2e`` on a 2-core machine,
whatever the model (later versions return at once when the graph has no batch norm). A suite
that converts many small graphs pays that for each.

:func:`cached_pattern_capture` wraps ``get_aten_graph_module`` as ``qat_utils`` sees it
with a cache keyed by what the capture depends on: the pattern function's code and closure
values, the shapes and dtypes of its example inputs and keyword tensors, and ``is_cuda``.
Each hit returns a deep copy, so the fold still matches and rewrites the graph under test
exactly as it would (only the pattern graphs are shared). A pattern whose key cannot be
formed is captured as before. Found by feature detection; records the route
``pattern capture``.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
from typing import Any, Callable, Dict, Hashable, Iterator, Optional

from compat.shims import routes
from compat.shims.stack import TORCH_AO, resolve_stack

ROUTE = "pattern capture"
_QAT_UTILS = {
    TORCH_AO: "torch.ao.quantization.pt2e.qat_utils",
    "torchao": "torchao.quantization.pt2e.qat_utils",
}
_NAME = "get_aten_graph_module"


def _value_key(value: Any) -> Hashable:
    """A tensor by its shape and dtype (what tracing a pattern depends on), else the value
    itself when hashable; raises ``TypeError`` for anything else."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return ("tensor", tuple(shape), str(dtype), str(getattr(value, "device", "")))
    hash(value)
    return value


def _key(pattern: Callable, example_inputs: Any, is_cuda: bool, kwargs: Dict) -> Hashable:
    code = getattr(pattern, "__code__", None)
    if code is None:
        raise TypeError("not a Python function")
    cells = tuple(_value_key(c.cell_contents) for c in (pattern.__closure__ or ()))
    inputs = tuple(_value_key(x) for x in example_inputs)
    named = tuple(sorted((k, _value_key(v)) for k, v in kwargs.items()))
    return (code, cells, inputs, bool(is_cuda), named)


def _cached(capture: Callable) -> Callable:
    store: Dict[Hashable, Any] = {}

    def get_aten_graph_module(
        pattern: Callable, example_inputs: Any, is_cuda: bool = False, **kwargs: Any
    ) -> Any:
        try:
            key: Optional[Hashable] = _key(pattern, example_inputs, is_cuda, kwargs)
        except (TypeError, ValueError):
            key = None
        if key is None:
            return capture(pattern, example_inputs, is_cuda, **kwargs)
        if key not in store:
            store[key] = capture(pattern, example_inputs, is_cuda, **kwargs)
        return copy.deepcopy(store[key])

    get_aten_graph_module.__wrapped__ = capture  # type: ignore[attr-defined]
    get_aten_graph_module.cache = store  # type: ignore[attr-defined]
    return get_aten_graph_module


@contextlib.contextmanager
def cached_pattern_capture() -> Iterator[bool]:
    """Within the block, ``qat_utils`` captures each fold pattern once; yields whether the
    cache is in place (False: this stack's ``qat_utils`` has no ``get_aten_graph_module``)."""
    try:
        module = importlib.import_module(_QAT_UTILS[resolve_stack()])
    except Exception:  # noqa: BLE001 - no qat_utils: nothing to cache
        module = None
    original = getattr(module, _NAME, None)
    if original is None:
        routes.record(ROUTE, "not cached (no qat_utils.get_aten_graph_module)")
        yield False
        return
    routes.record(ROUTE, f"cached per pattern ({module.__name__}.{_NAME})")
    setattr(module, _NAME, _cached(original))
    try:
        yield True
    finally:
        setattr(module, _NAME, original)
