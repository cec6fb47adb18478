"""The shims against the torch (+ torchao) of this env; skipped where torch is absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from compat.shims import export as capture_shim  # noqa: E402
from compat.shims import fx_meta, probe, quant_ops, routes, stack  # noqa: E402
from compat.shims.pt2e import api  # noqa: E402
from compat.shims.versions import parse_version  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 3)

    def forward(self, x: Any) -> Any:
        return torch.relu(self.linear(x))


def _model() -> tuple[Any, tuple[Any, ...]]:
    return _Model().eval(), (torch.randn(2, 3),)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(stack.ENV_VAR, raising=False)
    monkeypatch.delenv(capture_shim.ENV_VAR, raising=False)
    api.cache_clear()
    yield
    api.cache_clear()


def test_parse_version() -> None:
    assert parse_version("2.13.0+cpu") == (2, 13, 0)
    assert parse_version("2.10.0a0+git123") == (2, 10, 0)
    assert parse_version("2.9") == (2, 9, 0)


def test_pt2e_surface_resolves_from_one_stack(no_env: None) -> None:
    p = api()
    # torch.ao wins wherever it still imports; the shim, not a version number, says where
    expected = stack.TORCH_AO if stack.available_stacks()[stack.TORCH_AO] == "ok" else stack.TORCHAO
    assert p.stack == expected
    assert routes.routes()["pt2e"] == p.label
    root = "torch.ao" if p.stack == stack.TORCH_AO else "torchao"
    for name in ("Quantizer", "QuantizationAnnotation", "QuantizationSpec"):
        assert getattr(p, name).__module__.startswith(root), name
    for key in ("linear", "conv", "adaptive_avg_pool2d"):
        assert key in p.OP_TO_ANNOTATOR
    cfg = p.get_symmetric_quantization_config(is_per_channel=True)
    assert cfg.input_activation is not None
    assert p.folds_quantize is True
    assert "fold_quantize" in routes.routes()["convert"]


def test_unknown_stack_name_raises(no_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(stack.ENV_VAR, "tensorflow")
    with pytest.raises(stack.StackUnavailable, match="not one of"):
        api()


@pytest.mark.skipif(
    stack.available_stacks()[stack.TORCH_AO] == "ok",
    reason="torch.ao pt2e still imports here (torch <= 2.10)",
)
def test_torch_ao_stack_unavailable_on_new_torch(
    no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(stack.ENV_VAR, "torch.ao")
    with pytest.raises(stack.StackUnavailable, match="quantize_pt2e"):
        api()


def test_capture_and_reexport(no_env: None) -> None:
    model, args = _model()
    gm = capture_shim.capture(model, args)
    assert isinstance(gm, torch.fx.GraphModule)
    targets = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
    assert "aten.linear.default" in targets
    assert not [n for n in gm.graph.nodes if n.op == "call_module"]  # no _guards_fn
    assert routes.routes()["capture"].startswith(capture_shim.default_capture())
    if routes.routes()["capture"].endswith(".module(check_guards=False)"):
        assert "check_guards=False" in routes.adaptations()["capture"]  # a departure, said
    else:
        assert "capture" not in routes.adaptations()
    ep = capture_shim.reexport(gm, args)
    assert "strict=True" in routes.routes()["reexport"]
    linear = [n for n in ep.graph_module.graph.nodes if str(n.target) == "aten.linear.default"]
    assert linear
    records = fx_meta.lineage(linear[0])
    assert any(r.target == "aten.linear.default" for r in records)
    assert fx_meta.original_source(linear[0]) is not None
    assert routes.routes()["from_node"] in (
        fx_meta.FLAT,
        fx_meta.NESTED_SINGLE,
        fx_meta.NESTED_LIST,
    )


def test_capture_override(no_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(capture_shim.ENV_VAR, "export")
    assert capture_shim.default_capture() == "export"
    monkeypatch.setenv(capture_shim.ENV_VAR, "bogus")
    with pytest.raises(capture_shim.CaptureUnavailable):
        capture_shim.default_capture()


def test_quant_op_sets() -> None:
    q, dq, cq = quant_ops.quantize_ops(), quant_ops.dequantize_ops(), quant_ops.choose_qparams_ops()
    assert quant_ops.qd("quantize_per_tensor.default") in q
    assert quant_ops.qd("quantize_per_channel.default") in q
    assert quant_ops.qd("dequantize_per_tensor.tensor") in dq
    assert quant_ops.qd("choose_qparams.tensor") in cq
    assert not q & dq
    assert quant_ops.lookup("quantized_decomposed", "no_such_op.default") is None
    with pytest.raises(KeyError):
        quant_ops.qd("no_such_op.default")
    assert "quantized_decomposed" in quant_ops.namespaces_present()
    assert routes.routes()["quant_ops"].startswith("quantized_decomposed")


def test_convert_inserts_known_ops(no_env: None) -> None:
    p = api()
    model, args = _model()
    gm = capture_shim.capture(model, args)
    cfg = p.get_symmetric_quantization_config(is_per_channel=True)

    class Q(p.Quantizer):
        def annotate(self, gm: Any) -> Any:
            p.OP_TO_ANNOTATOR["linear"](gm, cfg)
            return gm

        def validate(self, model: Any) -> None:
            pass

    prepared = p.prepare_pt2e(gm, Q())
    prepared(*args)
    converted = p.convert_pt2e(prepared, fold_quantize=True)
    targets = {n.target for n in converted.graph.nodes if n.op == "call_function"}
    assert quant_ops.qd("quantize_per_tensor.default") in targets
    assert quant_ops.qd("dequantize_per_channel.default") in targets
    assert quant_ops.qd("quantize_per_channel.default") not in targets  # folded


PROBE_KEYS = {
    "python",
    "platform",
    "torch.version",
    "torch.git_version",
    "torchao.version",
    "pt2e.stack.torch.ao",
    "pt2e.stack.torchao",
    "pt2e.resolved",
    "pt2e.convert",
    "pt2e.QuantizationAnnotation.fields",
    "pt2e.Quantizer.methods",
    "pt2e.OP_TO_ANNOTATOR.count",
    "pt2e.OP_TO_ANNOTATOR.keys",
    "pt2e.get_symmetric_quantization_config.params",
    "pt2e.PortNodeMetaForQDQ",
    "capture.capture_pre_autograd_graph",
    "capture.export_for_training",
    "capture.export",
    "capture.default",
    "capture.module_check_guards",
    "from_node.format",
    "fx.copy_meta.quantization_tag",
    "quant_ops.namespaces",
}


def test_probe_capabilities(no_env: None) -> None:
    caps = probe.capabilities()
    assert set(caps) >= PROBE_KEYS, PROBE_KEYS - set(caps)
    assert all(isinstance(v, str) for v in caps.values())
    assert not [k for k, v in caps.items() if v.startswith("error:")], caps
    assert caps["torch.version"] == torch.__version__
    assert caps["from_node.format"][:2] in {"F1", "F2", "F3", "F4", "F5", "F6", "F7"}


def test_probe_section_error_becomes_value(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict:
        raise ImportError("no such thing")

    monkeypatch.setattr(probe, "_SECTIONS", (("torch", probe._torch), ("boom", broken)))
    caps = probe.capabilities()
    assert caps["boom"] == "error: ImportError: no such thing"
    assert caps["torch.version"] == torch.__version__


def test_probe_main_prints_one_json_object() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "compat.shims.probe"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=str(ROOT),
        timeout=600,
    )
    caps = json.loads(out.stdout)
    assert set(caps) >= PROBE_KEYS
