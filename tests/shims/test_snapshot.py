"""Porting snapshots: canonical, deterministic, small; the registry the plugin drives."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from compat.shims import routes, snapshot


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("quantized_decomposed.dequantize_per_tensor.default", "dequantize_per_tensor"),
        ("quantized_decomposed.quantize_per_tensor.tensor", "quantize_per_tensor.tensor"),
        ("pt2e_quant.quantize_affine.default", "quantize_affine"),
        ("torchao.dequantize_affine.default", "dequantize_affine"),
        ("aten.add.Tensor", "add.Tensor"),
        ("<built-in method matmul of type object at 0x7f798d5957c0>", "matmul"),
        ("<function relu at 0x7f78dd921c60>", "relu"),
        ("<built-in function add>", "add"),
        ("L__self___linear", "L__self___linear"),
    ],
)
def test_ops_are_named_without_namespaces_overloads_or_addresses(
    target: str, expected: str
) -> None:
    assert snapshot.normalise_op(target) == expected


def _node(op: str, target: str, args: tuple[Any, ...] = (), **meta: Any) -> Any:
    return SimpleNamespace(op=op, target=target, args=args, meta=meta)


def test_a_graph_without_torch_snapshots_qdq_and_tagged_nodes_in_order() -> None:
    weight = _node("get_attr", "w", quantization_tag="T")
    x = _node("placeholder", "x")
    q = _node("call_function", "quantized_decomposed.quantize_per_tensor.default", (x,))
    dq = _node("call_function", "quantized_decomposed.dequantize_per_tensor.default", (q,))
    add = _node(
        "call_function",
        "aten.add.Tensor",
        (dq, weight),
        quantization_tag="T",
        stack_trace="File model.py, line 3",
        custom={"k": 1},
        nn_module_stack={},  # present but empty: a consumer finds nothing in it
        val="a fake tensor",  # not a key consumers read for metadata
    )
    plain = _node("call_function", "aten.relu.default", (add,))
    graph = SimpleNamespace(nodes=[weight, x, q, dq, add, plain])
    assert snapshot.snapshot(graph) == [
        {"op": "get_attr", "after": None, "tag": "T", "source": None, "keys": None},
        {
            "op": "quantize_per_tensor",
            "after": "placeholder",
            "tag": None,
            "source": None,
            "keys": [],
        },
        {
            "op": "dequantize_per_tensor",
            "after": "placeholder",
            "tag": None,
            "source": None,
            "keys": [],
        },
        {
            "op": "add.Tensor",
            "after": "placeholder",
            "tag": "T",
            "source": None,
            "keys": ["stack_trace", "custom"],
        },
    ]


def test_record_take_and_repeated_stages() -> None:
    graph = SimpleNamespace(nodes=[])
    snapshot.begin("t.py::test_a")
    snapshot.record("converted", graph)
    snapshot.record("converted", graph)
    assert snapshot.take("t.py::test_a") == {"converted": [], "converted#2": []}
    assert snapshot.take("t.py::test_a") == {}


def test_entries_taken_earlier_are_recorded_as_copies() -> None:
    entries = [{"op": "dequantize_per_tensor", "after": "conv2d", "tag": None, "source": "conv2d"}]
    snapshot.begin("t.py::test_b")
    snapshot.record_entries("convert/linear", entries)
    snapshot.record_entries("convert/linear", [])
    entries[0]["tag"] = "changed after recording"
    taken = snapshot.take("t.py::test_b")
    assert taken == {
        "convert/linear": [
            {"op": "dequantize_per_tensor", "after": "conv2d", "tag": None, "source": "conv2d"}
        ],
        "convert/linear#2": [],
    }


def test_a_real_converted_graph_snapshot_is_deterministic_and_small() -> None:
    torch = pytest.importorskip("torch")
    from compat.shims import export as capture_shim
    from compat.shims.pt2e import api

    def converted() -> list[dict[str, Any]]:
        p = api()
        model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU()).eval()
        args = (torch.randn(2, 3),)
        cfg = p.get_symmetric_quantization_config(is_per_channel=True)

        class Q(p.Quantizer):
            def annotate(self, gm: Any) -> Any:
                for partition in p.OP_TO_ANNOTATOR["linear"](gm, cfg):
                    for node in partition:
                        node.meta["quantization_tag"] = "BackendA_linear_0"
                return gm

            def validate(self, model: Any) -> None:
                pass

        prepared = p.prepare_pt2e(capture_shim.capture(model, args), Q())
        prepared(*args)
        return snapshot.snapshot(p.convert_pt2e(prepared, fold_quantize=True))

    routes.reset()
    first, second = converted(), converted()
    assert first == second
    text = json.dumps(first)
    assert "0x" not in text
    assert len(text) < 4000
    ops = [e["op"] for e in first]
    assert "quantize_per_tensor" in ops
    assert "dequantize_per_channel" in ops
    assert any(e["op"] == "linear" and e["tag"] == "BackendA_linear_0" for e in first)
    linear = next(e for e in first if e["op"] == "linear")
    assert {"stack_trace", "nn_module_stack"} <= set(linear["keys"])  # export's own keys
    assert "from_node" not in routes.routes()  # reading lineage claims no route
