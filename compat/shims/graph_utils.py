"""The pt2e graph utilities backend quantizers find their patterns with, from one stack.

Homes, found by import (never by version number):

* ``get_source_partitions`` / ``SourcePartition``: ``torch.fx.passes.utils.source_matcher_utils``
  in every torch 2.1 - 2.15 (both stacks: torchao imports them from there too).
* ``find_sequential_partitions``, ``get_equivalent_types``, ``update_equivalent_types_dict``:
  ``torch.ao.quantization.pt2e.graph_utils`` (torch.ao 2.1 - 2.10) or
  ``torchao.quantization.pt2e.graph_utils`` (torchao 0.11+).
* ``bfs_trace_with_node_process`` (walks control-flow submodules too, skipping placeholders
  and the output): the same module, from torch.ao 2.7 and torchao 0.11. Where absent,
  :func:`walk_nodes` walks every node of the top graph and, through
  ``get_control_flow_submodules`` (public in torch.ao 2.6 only), of its cond/map
  submodules: the walk each release's own numeric-debugger test reads handles with.
* ``collect_producer_nodes``: ``torchao.quantization.pt2e.graph_utils`` from torchao 0.18 (in
  torch.ao it is the private ``_collect_producer_nodes`` of ``pt2e.utils``, not a graph util).

Every name is resolved once per process and its home recorded as route ``graph_utils``.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable, Dict, Optional

from compat.shims import routes
from compat.shims.stack import TORCH_AO, resolve_stack

__all__ = ["GraphUtilUnavailable", "GraphUtils", "graph_utils", "walk_nodes"]

_HOMES = {
    TORCH_AO: "torch.ao.quantization.pt2e.graph_utils",
    "torchao": "torchao.quantization.pt2e.graph_utils",
}
_SOURCE_MATCHER = "torch.fx.passes.utils.source_matcher_utils"
_STACK_NAMES = (
    "find_sequential_partitions",
    "get_equivalent_types",
    "update_equivalent_types_dict",
    "bfs_trace_with_node_process",
    "get_control_flow_submodules",
    "collect_producer_nodes",
)
_MATCHER_NAMES = ("get_source_partitions", "SourcePartition")


class GraphUtilUnavailable(RuntimeError):
    """The graph utility asked for has no home in this env (the message says which)."""


class GraphUtils:
    """The graph utilities of this cell's stack; a missing one raises on use, not on load."""

    def __init__(self, home: str, names: Dict[str, Any]) -> None:
        self.home = home
        self._names = names

    def has(self, name: str) -> bool:
        """Whether this env has ``name`` (tests skip on a utility their era lacks)."""
        return name in self._names

    def __getattr__(self, name: str) -> Any:
        names = self.__dict__.get("_names", {})
        if name in names:
            return names[name]
        if name in _STACK_NAMES + _MATCHER_NAMES:
            raise GraphUtilUnavailable(f"{name} is not in {self.__dict__.get('home')}")
        raise AttributeError(name)


@functools.lru_cache(maxsize=None)
def graph_utils() -> GraphUtils:
    """Resolve the stack's graph utilities once per process."""
    home = _HOMES[resolve_stack()]
    names: Dict[str, Any] = {}
    with routes.capture_warnings(f"import {home}"):
        module = importlib.import_module(home)
        matcher = importlib.import_module(_SOURCE_MATCHER)
    for name in _STACK_NAMES:
        if hasattr(module, name):
            names[name] = getattr(module, name)
    for name in _MATCHER_NAMES:
        names[name] = getattr(matcher, name)
    routes.record("graph_utils", home)
    return GraphUtils(home, names)


def walk_nodes(model: Any, process: Callable[[Any], None]) -> None:
    """Call ``process`` on the nodes of ``model`` (GraphModule or ExportedProgram), the
    way this stack walks a graph for the numeric debugger: its
    ``bfs_trace_with_node_process`` where it has one (control-flow submodules too, no
    placeholders nor output); else every node of the top graph and of the cond/map
    submodules ``get_control_flow_submodules`` finds (torch.ao 2.6), or of the top graph
    only (torch.ao 2.5)."""
    utils = graph_utils()
    if utils.has("bfs_trace_with_node_process"):
        utils.bfs_trace_with_node_process(model, process)
        return
    graph_module: Optional[Any] = getattr(model, "graph_module", None) or model
    queue = [graph_module]
    while queue:
        current = queue.pop(0)
        for node in current.graph.nodes:
            process(node)
        if utils.has("get_control_flow_submodules"):
            queue.extend(sub for _, sub, _ in utils.get_control_flow_submodules(current))
