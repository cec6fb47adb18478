"""Capability grid of this env, without running the test core.

``python -m compat.shims.probe`` prints one JSON object on stdout: which shape each API has
here (versions, pt2e stacks, capture APIs, from_node format measured on a real export, quant
op namespaces, quantizer surface). It never crashes: a failing capability becomes the value
``"error: <ExcType: msg>"`` and the other keys are still reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import platform
import sys
from typing import Any, Callable, Dict, List, Tuple

from compat.shims import routes

Value = str


def _err(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"error: {type(exc).__name__}: {text[:300]}"


def _torch() -> Dict[str, Value]:
    import torch

    git = getattr(getattr(torch, "version", None), "git_version", None)
    return {"torch.version": str(torch.__version__), "torch.git_version": str(git)}


def _torchao() -> Dict[str, Value]:
    from compat.shims.versions import torchao_version_string

    with routes.capture_warnings("import torchao"):
        version = torchao_version_string()
    return {"torchao.version": version if version is not None else "absent"}


def _stacks() -> Dict[str, Value]:
    from compat.shims.stack import available_stacks

    return {f"pt2e.stack.{k}": v for k, v in available_stacks().items()}


def _pt2e_surface() -> Dict[str, Value]:
    from compat.shims.pt2e import api

    p = api()
    out: Dict[str, Value] = {"pt2e.resolved": p.label, "pt2e.convert": p.fold_reason}
    ann = p.QuantizationAnnotation
    fields = [f.name for f in dataclasses.fields(ann)] if dataclasses.is_dataclass(ann) else []
    out["pt2e.QuantizationAnnotation.fields"] = ",".join(fields)
    spec = p.QuantizationSpec
    if dataclasses.is_dataclass(spec):
        out["pt2e.QuantizationSpec.fields"] = ",".join(f.name for f in dataclasses.fields(spec))
    methods = ("annotate", "validate", "transform_for_annotation", "prepare_obs_or_fq_callback")
    out["pt2e.Quantizer.methods"] = ",".join(m for m in methods if hasattr(p.Quantizer, m))
    keys = list(p.OP_TO_ANNOTATOR)
    out["pt2e.OP_TO_ANNOTATOR.count"] = str(len(keys))
    out["pt2e.OP_TO_ANNOTATOR.keys"] = ",".join(keys)
    cfg = inspect.signature(inspect.unwrap(p.get_symmetric_quantization_config))
    out["pt2e.get_symmetric_quantization_config.params"] = ",".join(cfg.parameters)
    port = p.names.get("PortNodeMetaForQDQ")
    if port is None:
        out["pt2e.PortNodeMetaForQDQ"] = "absent"
    else:
        mod = sys.modules.get(port.__module__)
        fields_to_port = getattr(mod, "_METADATA_TO_PORT", None)
        out["pt2e.PortNodeMetaForQDQ"] = f"{port.__module__}; ports={fields_to_port}"
    out["pt2e.move_exported_model_to_eval"] = (
        "present" if "move_exported_model_to_eval" in p.names else "absent"
    )
    return out


def _capture() -> Dict[str, Value]:
    import torch

    from compat.shims.export import available_captures, default_capture

    out = {f"capture.{k}": v for k, v in available_captures().items()}
    out["capture.default"] = default_capture()
    ep_cls = getattr(getattr(torch, "export", None), "ExportedProgram", None)
    has_guards = (
        ep_cls is not None and "check_guards" in inspect.signature(ep_cls.module).parameters
    )
    out["capture.module_check_guards"] = "yes" if has_guards else "no"
    return out


def _fx_meta_fields() -> Dict[str, Value]:
    import torch.fx.proxy as proxy

    fields = list(getattr(proxy, "_COPY_META_FIELDS", []))
    return {
        "fx.copy_meta.quantization_tag": str("quantization_tag" in fields),
        "fx.copy_meta.source_fn": ",".join(f for f in fields if f.startswith("source_fn")),
    }


class _Tiny:
    """Built lazily so importing this module never needs torch."""

    @staticmethod
    def build() -> Tuple[Any, Tuple[Any, ...]]:
        import torch

        class Tiny(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.linear = torch.nn.Linear(3, 3)

            def forward(self, x: Any) -> Any:
                return torch.relu(self.linear(x))

        return Tiny().eval(), (torch.randn(2, 3),)


def _from_node() -> Dict[str, Value]:
    """Determine F0-F7 by exporting, re-exporting and unlifting a tiny model."""
    import torch
    import torch.fx.traceback as fx_tb

    from compat.shims import fx_meta

    if not hasattr(torch, "export") or not hasattr(torch.export, "export"):
        return {"from_node.format": "F0 absent (no torch.export)"}
    model, args = _Tiny.build()
    with routes.capture_warnings("probe export"):
        ep = torch.export.export(model, args)
        gm = ep.module()
        ep2 = torch.export.export(gm, args)
        gm2 = ep2.module()
    nodes = ep2.graph_module.graph.nodes
    raws = [n.meta.get("from_node") for n in nodes if n.op == "call_function"]
    raws = [r for r in raws if r]
    if not raws:
        return {"from_node.format": "F0 absent"}
    shape = fx_meta.format_name(raws[0])
    if shape == fx_meta.FLAT:
        fid = "F1"
    elif shape == fx_meta.NESTED_SINGLE:
        fid = "F2"
    else:
        fid = "F3"
    stamps = [
        n
        for n in gm2.graph.nodes
        if (n.meta.get("from_node") or [None])[-1] is not None
        and getattr(n.meta["from_node"][-1], "pass_name", "") == fx_meta.MODULE_STAMP
    ]
    ns_cls = getattr(fx_tb, "NodeSource", None)
    eq_by_value = ns_cls is not None and hasattr(ns_cls, "_from_dict")
    serde = _serde_from_node()
    shared = _shared_records(ep2, gm2, stamps)
    if stamps:
        fid = "F4"
        if eq_by_value:
            fid = "F5"
        if serde:
            fid = "F6"
        if shared:
            fid = "F7"
    return {
        "from_node.format": f"{fid} {shape}" + ("+module-stamp" if stamps else ""),
        "from_node.module_stamp": str(bool(stamps)),
        "from_node.nodesource_eq": "value" if eq_by_value else "identity-or-none",
        "from_node.serialized_by_export_save": str(serde),
        "from_node.shared_records": str(shared),
    }


def _serde_from_node() -> bool:
    try:
        from torch._export.serde import serialize
    except Exception:  # noqa: BLE001 - no serde means no serialisation of from_node
        return False
    return any(
        hasattr(c, "_serialize_from_node") for c in vars(serialize).values() if inspect.isclass(c)
    )


def _shared_records(ep: Any, gm: Any, stamps: List[Any]) -> bool:
    """F7: the stamp's nested record *is* the ExportedProgram node's record (no deepcopy)."""
    ep_nodes = {n.name: n for n in ep.graph.nodes}
    for node in stamps:
        src = ep_nodes.get(node.name)
        parents = node.meta["from_node"][-1].from_node
        if src is not None and parents and src.meta.get("from_node"):
            return parents[0] is src.meta["from_node"][0]
    return False


def _quant_ops() -> Dict[str, Value]:
    import torch

    from compat.shims import quant_ops

    for ns in ("quantized_decomposed", "pt2e_quant", "torchao"):
        quant_ops.register(ns)
    out = {"quant_ops.namespaces": "+".join(quant_ops.namespaces_present()) or "none"}
    names = getattr(torch._C, "_dispatch_get_all_op_names", None)
    if names is not None:
        qd = sorted(n for n in names() if n.startswith("quantized_decomposed::"))
        out["quant_ops.quantized_decomposed.count"] = str(len(qd))
    return out


_SECTIONS: Tuple[Tuple[str, Callable[[], Dict[str, Value]]], ...] = (
    ("torch", _torch),
    ("torchao", _torchao),
    ("pt2e.stack", _stacks),
    ("pt2e", _pt2e_surface),
    ("capture", _capture),
    ("fx", _fx_meta_fields),
    ("from_node", _from_node),
    ("quant_ops", _quant_ops),
)


def capabilities() -> Dict[str, str]:
    """Every capability of this env as ``{key: human-readable value}``; never raises."""
    out: Dict[str, str] = {
        "python": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
    }
    for name, section in _SECTIONS:
        try:
            with routes.capture_warnings(f"probe {name}"):
                out.update(section())
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            out[name] = _err(exc)
    return out


def main() -> int:
    """Print :func:`capabilities` as one JSON object; torch chatter goes to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        caps = capabilities()
        caps["warnings"] = " | ".join(routes.warnings_seen())
    sys.stdout.write(json.dumps(caps, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
