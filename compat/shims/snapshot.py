"""Porting snapshots: what metadata porting did to a graph, in a form every version shares.

A test passes or fails; a snapshot says *what* the porting produced, so a change between
versions is seen before a test (or a user) trips on it. For one graph it lists, in graph
order, every quantize / dequantize / choose_qparams node and every node that carries a
``quantization_tag``, each as::

    {"op": "dequantize_per_tensor", "after": "add", "tag": "BackendA_add_1", "source": "add",
     "keys": ["stack_trace", "nn_module_stack", "torch_fn"]}

``op`` drops the op namespace (``quantized_decomposed``, ``pt2e_quant``, ``torchao``) and a
``.default`` overload; ``after`` is the first producer that is not itself a q/dq op (what
the q/dq belongs to); ``source`` is the node's original source from ``from_node``, through
:mod:`compat.shims.fx_meta`'s normalisation (one shape from torch 2.2 to 2.15); ``keys``
names the metadata keys consumers read (:data:`WATCHED_KEYS`) that a call_function node
carries (``None`` on other nodes), so a
key a pass stops porting reads as *metadata key lost* (format 2; a format-1 snapshot has
no ``keys`` and is compared without them). Node names, ids and graph ids are left out:
they differ between runs and versions without meaning.

A test records a graph with :func:`record` (``record("converted", model)``); the pytest
plugin starts a test's record and streams it with the test's result. It works the same in
a user's own suite. Import-light (no torch at import), like :mod:`compat.shims.routes`.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from compat.shims import fx_meta

__all__ = ["WATCHED_KEYS", "begin", "normalise_op", "record", "record_entries", "snapshot", "take"]

SNAPSHOT_FORMAT = 2
# The node.meta keys that quantizers, partitioners and debuggers read, beside the tag and
# from_node (the entry's ``source`` already says whether it names anything): their
# presence, not their values (which hold ids and paths), is kept.
WATCHED_KEYS = (
    "stack_trace",
    "nn_module_stack",
    "source_fn_stack",
    "torch_fn",
    "custom",
    "numeric_debug_handle",
)
_QDQ_PACKETS = frozenset(
    {
        "quantize_per_tensor",
        "quantize_per_channel",
        "dequantize_per_tensor",
        "dequantize_per_channel",
        "quantize_affine",
        "dequantize_affine",
        "choose_qparams",
        "choose_qparams_symmetric",
        "choose_qparams_affine",
    }
)
_NAMESPACES = ("quantized_decomposed.", "pt2e_quant.", "torchao.", "aten.")
# ``<built-in method matmul of type object at 0x..>``, ``<function relu at 0x..>``
_CALLABLE = re.compile(r"<(?:built-in )?(?:method|function) ([\w.]+)")

Entry = Dict[str, Any]

_CURRENT = ""
_TAKEN: Dict[str, Dict[str, List[Entry]]] = {}


def normalise_op(target: Any) -> str:
    """``quantized_decomposed.dequantize_per_tensor.default`` -> ``dequantize_per_tensor``;
    ``aten.add.Tensor`` -> ``add.Tensor``; ``<built-in method matmul of ... at 0x7f..>`` ->
    ``matmul`` (no address); a module path or a node name is kept as it is."""
    text = target if isinstance(target, str) else str(target)
    python_callable = _CALLABLE.match(text)
    if python_callable:
        return python_callable.group(1)
    for namespace in _NAMESPACES:
        if text.startswith(namespace):
            text = text[len(namespace) :]
            break
    return text[: -len(".default")] if text.endswith(".default") else text


def _op(node: Any) -> str:
    if node.op == "call_function":
        return normalise_op(node.target)
    return str(node.op)  # get_attr, placeholder, call_module, output


def _is_qdq(node: Any) -> bool:
    return node.op == "call_function" and _op(node).split(".")[0] in _QDQ_PACKETS


def _after(node: Any) -> Optional[str]:
    """The first producer up the first-input chain that is not a q/dq op or an observer
    (a ``call_module`` of a prepared graph): what the node belongs to."""
    current = node
    for _ in range(64):  # a graph is acyclic; the bound only guards a malformed one
        inputs = [a for a in current.args if hasattr(a, "op")]
        if not inputs:
            return None
        current = inputs[0]
        if not (_is_qdq(current) or current.op == "call_module"):
            return _op(current)
    return None


def _source(node: Any) -> Optional[str]:
    origin = fx_meta.original_source(node, record_route=False)
    return normalise_op(origin.target) if origin is not None else None


def _keys(node: Any) -> Optional[List[str]]:
    """The watched keys a ``call_function`` node carries; ``None`` for graph inputs and
    constants (placeholder, get_attr), whose keys no consumer reads and whose presence
    moves with every export change."""
    if node.op != "call_function":
        return None
    return [key for key in WATCHED_KEYS if node.meta.get(key)]


def snapshot(graph_or_module: Any) -> List[Entry]:
    """The canonical, version-independent porting snapshot of one graph."""
    graph = getattr(graph_or_module, "graph", graph_or_module)
    entries: List[Entry] = []
    for node in graph.nodes:
        tag = node.meta.get("quantization_tag")
        if not (_is_qdq(node) or tag is not None):
            continue
        entries.append(
            {
                "op": _op(node),
                "after": _after(node),
                "tag": None if tag is None else str(tag),
                "source": _source(node),
                "keys": _keys(node),
            }
        )
    return entries


def begin(test_id: str) -> None:
    """Start the record of one test (the pytest plugin calls this as each test starts)."""
    global _CURRENT
    _CURRENT = str(test_id)
    _TAKEN.pop(_CURRENT, None)


def record(stage: str, graph_or_module: Any) -> List[Entry]:
    """Snapshot a graph under ``stage`` (``prepared``, ``converted``, ``reexported``...) for
    the running test; a stage recorded twice in one test becomes ``stage#2``."""
    return record_entries(stage, snapshot(graph_or_module))


def record_entries(stage: str, entries: List[Entry]) -> List[Entry]:
    """Record a snapshot taken earlier (:func:`snapshot`) under ``stage`` for the running
    test: for a suite that builds its graphs once, before the tests that check them, and
    changes them afterwards (the metadata contracts stamp each stage before the next pass)."""
    taken = _TAKEN.setdefault(_CURRENT, {})
    key, n = str(stage), 1
    while key in taken:
        n += 1
        key = f"{stage}#{n}"
    taken[key] = [dict(e) for e in entries]
    return taken[key]


def take(test_id: str) -> Dict[str, List[Entry]]:
    """Everything recorded for ``test_id``, and forget it."""
    return _TAKEN.pop(str(test_id), {})
