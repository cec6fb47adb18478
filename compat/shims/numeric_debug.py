"""The pt2e numeric debugger: one API to generate, read and compare numeric debug handles.

The handle a node carries, and who puts it there, moved three times (found by feature
detection on the installed stack, never by version number; recorded as route
``numeric_debug``):

``custom-graphmodule``  torch.ao 2.5: ``generate_numeric_debug_handle(graph_module)``
                        writes ``node.meta["custom"]["numeric_debug_handle"]`` (the key moved
                        under ``custom`` in pytorch#134040, so it survives re-export) on
                        every node of the top graph but placeholders and the output, ids
                        from 0 (an id already present is kept, but a new node may reuse it).
``custom-program``      torch.ao 2.6 - 2.10: the same key, but ``generate_numeric_debug_handle``
                        takes the ``ExportedProgram``, walks control-flow submodules and
                        numbers new nodes after the greatest id present. The walk helper
                        moved: inside the function in 2.6 (``get_control_flow_submodules``
                        public in graph_utils), ``graph_utils.bfs_trace_with_node_process``
                        from 2.7 (:func:`compat.shims.graph_utils.walk_nodes` follows both).

On both ``custom`` routes generate skips placeholders and the output, so those need no
handle (:meth:`NumericDebugger.needs_handle`); a placeholder may still *carry* one (a
re-export lifts a handled get_attr into a placeholder), and :meth:`NumericDebugger.handles`
reports it wherever the stack's walk visits placeholders (2.5 and 2.6: every node, as
those releases' own tests read them; 2.7+: the bfs walk, which skips them).
``from_node``           torchao 0.11+ (pytorch/ao#2339, #2452): no stored handle; a node's
                        handle is the (name, graph_id) of the oldest ``NodeSource`` in its
                        ``from_node`` chain (``_extract_node_source_debug_info``), so any
                        pass that keeps ``from_node`` keeps the handle.

``prepare_for_propagation_comparison``, ``extract_results_from_loggers``, ``compare_results``
and ``OutputLogger`` come from the same stack's ``_numeric_debugger`` module.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, Callable, Dict, Optional

from compat.shims import routes
from compat.shims.graph_utils import walk_nodes
from compat.shims.stack import TORCH_AO, resolve_stack

__all__ = [
    "ROUTE_CUSTOM_GRAPHMODULE",
    "ROUTE_CUSTOM_PROGRAM",
    "ROUTE_FROM_NODE",
    "NumericDebugUnavailable",
    "NumericDebugger",
    "debugger",
]

ROUTE_CUSTOM_GRAPHMODULE = "custom-graphmodule"
ROUTE_CUSTOM_PROGRAM = "custom-program"
ROUTE_FROM_NODE = "from_node"

_MODULES = {
    TORCH_AO: "torch.ao.quantization.pt2e._numeric_debugger",
    "torchao": "torchao.quantization.pt2e._numeric_debugger",
}
_API = (
    "prepare_for_propagation_comparison",
    "extract_results_from_loggers",
    "compare_results",
    "OutputLogger",
)
# The call_module node ``ExportedProgram.module()`` adds from torch 2.9 (its guard check);
# it is no node of the user's program, so it needs no handle.
_GUARD_TARGET = "_guards_fn"


class NumericDebugUnavailable(RuntimeError):
    """This stack has no numeric debugger (torch.ao before 2.5)."""


class NumericDebugger:
    """The numeric debugger of this cell's stack (see the module doc for the routes)."""

    def __init__(self, route: str, module: Any) -> None:
        self.route = route
        self._module = module
        for name in _API:
            setattr(self, name, getattr(module, name))

    # --- handles --------------------------------------------------------------------
    def generate(self, program: Any) -> None:
        """Give every node of ``program`` (an ``ExportedProgram``) a handle.

        ``custom-graphmodule``: the program's ``graph_module`` is what gets handles (that
        era's function takes a GraphModule); ``from_node``: nothing to do, export stamped
        them already.
        """
        if self.route == ROUTE_FROM_NODE:
            return
        target = program
        if self.route == ROUTE_CUSTOM_GRAPHMODULE:
            target = getattr(program, "graph_module", program)
        with routes.capture_warnings("generate_numeric_debug_handle"):
            self._module.generate_numeric_debug_handle(target)

    def handle(self, node: Any) -> Optional[Any]:
        """The node's numeric debug handle, or None if it has none."""
        if self.route == ROUTE_FROM_NODE:
            info = self._module._extract_node_source_debug_info(node)
            return None if info is None else (info.name, info.graph_id)
        custom = node.meta.get(self._module.CUSTOM_KEY)
        if not isinstance(custom, dict):
            return None
        return custom.get(self._module.NUMERIC_DEBUG_HANDLE_KEY)

    def needs_handle(self, node: Any) -> bool:
        """Whether the contract wants a handle on ``node``: on the ``custom`` routes every
        node generate_numeric_debug_handle walks (all but placeholders and the output, on
        every release); on ``from_node`` every node but placeholders, the output and the
        2.9+ guard call."""
        if node.op in ("placeholder", "output"):
            return False
        if self.route != ROUTE_FROM_NODE:
            return True
        return not (node.op == "call_module" and node.target == _GUARD_TARGET)

    def walked(self, model: Any) -> list[str]:
        """``str(node)`` of every node ``generate`` gives a handle to in ``model`` (the
        top graph and, where the stack walks them, its control-flow submodules): the
        count upstream's tests hard-code as their number of loggers."""
        found: list[str] = []

        def visit(node: Any) -> None:
            if self.needs_handle(node):
                found.append(str(node))

        walk_nodes(model, visit)
        return found

    def has_handle(self, node: Any) -> bool:
        """Whether the node carries what its handle is read from (the ``custom`` key, or
        a ``from_node`` chain)."""
        if self.route == ROUTE_FROM_NODE:
            return bool(node.meta.get("from_node"))
        return self.handle(node) is not None

    def handles(self, model: Any) -> Dict[str, Any]:
        """``{str(node): handle}`` over every node of ``model`` that has one (control-flow
        submodules included where the stack walks them)."""
        found: Dict[str, Any] = {}

        def visit(node: Any) -> None:
            value = self.handle(node)
            if value is not None:
                found[str(node)] = value

        walk_nodes(model, visit)
        return found

    def handles_by_module_stack(self, model: Any) -> Dict[str, Any]:
        """``{str(nn_module_stack): handle}``: the handle each source op's nodes share
        (upstream's ``_extract_..._with_prev_decomp_op``); two nodes with the same stack and
        different handles raise AssertionError, as upstream's helper does."""
        found: Dict[str, Any] = {}

        def visit(node: Any) -> None:
            value = self.handle(node)
            if value is None:
                return
            stack = str(node.meta.get("nn_module_stack"))
            if stack not in found:
                found[stack] = value
            elif found[stack] != value:
                raise AssertionError(
                    f"Node {node} has handle {value}, not {found[stack]} as an earlier node "
                    f"of the same source op {stack}"
                )

        walk_nodes(model, visit)
        return found

    def missing_handles(self, model: Any) -> list:
        """The nodes of ``model`` that need a handle and carry none (should be empty)."""
        missing: list = []

        def visit(node: Any) -> None:
            if self.needs_handle(node) and not self.has_handle(node):
                missing.append(str(node))

        walk_nodes(model, visit)
        return missing


def _route(stack: str, module: Any) -> str:
    if stack != TORCH_AO and hasattr(module, "_extract_node_source_debug_info"):
        return ROUTE_FROM_NODE
    generate: Optional[Callable] = getattr(module, "generate_numeric_debug_handle", None)
    if generate is None or not hasattr(module, "CUSTOM_KEY"):
        raise NumericDebugUnavailable(f"{module.__name__}: no generate_numeric_debug_handle")
    first = next(iter(inspect.signature(generate).parameters))
    return ROUTE_CUSTOM_PROGRAM if first == "ep" else ROUTE_CUSTOM_GRAPHMODULE


@functools.lru_cache(maxsize=None)
def debugger() -> NumericDebugger:
    """Resolve the stack's numeric debugger once per process (raises
    :class:`NumericDebugUnavailable` where there is none)."""
    stack = resolve_stack()
    home = _MODULES[stack]
    try:
        with routes.capture_warnings(f"import {home}"):
            module = importlib.import_module(home)
    except ImportError as exc:
        raise NumericDebugUnavailable(f"{home}: {exc}") from exc
    route = _route(stack, module)
    routes.record("numeric_debug", f"{route} ({home})")
    return NumericDebugger(route, module)
