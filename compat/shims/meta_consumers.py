"""What pt2e consumers (quantizers, partitioners, debuggers) call to read node metadata.

The metadata contracts (tests/core/test_metadata_contracts.py) check the answers of these
calls, not raw ``node.meta`` keys, so a key that moves while the call still answers is
drift, and a call that stops answering is a failure. Found by feature detection, one stack
at a time (:mod:`compat.shims.stack`):

* ``get_source_partitions``: ``torch/fx/passes/utils/source_matcher_utils.py`` in every
  torch 2.1 - 2.15 (reads ``source_fn_stack``; ``source_fn`` in 2.1).
* the module-name filter behind ``XNNPACKQuantizer.set_module_name``
  (``_get_module_name_filter``): torch.ao 2.2 - 2.4
  ``torch/ao/quantization/quantizer/xnnpack_quantizer.py`` (keys ``L__self___a_b`` read
  back as ``a.b``), torch.ao 2.5 - 2.10 ``torch/ao/quantization/quantizer/utils.py``
  (the qualified name, value[0]), torchao 0.11 - 0.18
  ``torchao/quantization/pt2e/quantizer/utils.py`` (public: ``get_module_name_filter``).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Iterable, List

from compat.shims import routes
from compat.shims.stack import TORCH_AO, resolve_stack

_FILTER_HOMES = {
    TORCH_AO: (
        "torch.ao.quantization.quantizer.utils",
        "torch.ao.quantization.quantizer.xnnpack_quantizer",
    ),
    "torchao": ("torchao.quantization.pt2e.quantizer.utils",),
}


# torch.ao keeps it private; torchao names it public (0.11+: get_module_name_filter).
_FILTER_NAMES = ("_get_module_name_filter", "get_module_name_filter")


class ConsumerUnavailable(RuntimeError):
    """No home of the consumer API imports in this env."""


def module_name_filter(module_name: str) -> Callable[[Any], bool]:
    """The predicate ``set_module_name(module_name)`` quantizes with, from this stack."""
    stack = resolve_stack()
    errors: List[str] = []
    for home in _FILTER_HOMES.get(stack, ()):
        try:
            with routes.capture_warnings(f"import {home}"):
                module = importlib.import_module(home)
        except Exception as exc:  # noqa: BLE001 - any failure: try the next home
            errors.append(f"{home}: {type(exc).__name__}: {exc}")
            continue
        for attr in _FILTER_NAMES:
            make = getattr(module, attr, None)
            if make is not None:
                routes.record("module_name_filter", f"{home.rsplit('.', 1)[-1]}.{attr}")
                return make(module_name)
        errors.append(f"{home}: none of {_FILTER_NAMES}")
    raise ConsumerUnavailable("; ".join(errors) or f"no home for stack {stack!r}")


def source_partitions(graph: Any, wanted: Iterable[Any]) -> Dict[Any, list]:
    """``get_source_partitions(graph, wanted)``: ``{source: [SourcePartition, ...]}``."""
    from torch.fx.passes.utils.source_matcher_utils import get_source_partitions

    with routes.capture_warnings("get_source_partitions"):
        return get_source_partitions(graph, list(wanted))
