"""Record real ``node.meta["from_node"]`` samples of the torch at hand as a JSON fixture.

Run inside an env of each torch version (not collected by pytest):
    python tests/shims/record_from_node.py tests/shims/data/
The fixtures let ``test_fx_meta.py`` check the normaliser on formats F1-F7 without those
torch versions installed. ``graph_id`` is an ``id()``, so it is kept only as "present".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3)
        self.linear = torch.nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(self.conv(x), (1, 1))
        return self.linear(x.view(-1, 3))


def _entry(e: Any) -> dict[str, Any]:
    if isinstance(e, tuple):
        return {
            "kind": "tuple",
            "name": e[0],
            "target": str(e[1]),
            "target_type": type(e[1]).__name__,
        }
    action = getattr(e, "action", None)
    return {
        "kind": "nodesource",
        "type": type(e).__name__,
        "name": e.name,
        "target": e.target,
        "graph_id_type": type(e.graph_id).__name__,
        "pass_name": e.pass_name,
        "action_kind": "list" if isinstance(action, list) else "single",
        "action": [a.name for a in action]
        if isinstance(action, list)
        else (action.name if action is not None else None),
        "to_dict_action": e.to_dict().get("action") if hasattr(e, "to_dict") else None,
        "from_node": [_entry(p) for p in e.from_node],
    }


def _samples(graph: Any, label: str) -> list[dict[str, Any]]:
    out = []
    for node in graph.nodes:
        raw = node.meta.get("from_node")
        if not raw:
            continue
        interesting = node.op in ("get_attr", "placeholder") or any(
            k in str(node.target) for k in ("linear", "addmm", "pool")
        )
        if interesting:
            out.append(
                {
                    "graph": label,
                    "op": node.op,
                    "node": node.name,
                    "target": str(node.target),
                    "from_node": [_entry(e) for e in raw],
                }
            )
    return out


def _shared(ep: Any, gm: Any) -> Any:
    """F7 check: is a stamp's nested record the very object of the EP node's from_node?"""
    ep_nodes = {n.name: n for n in ep.graph.nodes}
    for node in gm.graph.nodes:
        raw = node.meta.get("from_node") or []
        if not raw or getattr(raw[-1], "pass_name", "") != "ExportedProgram.module()":
            continue
        src = ep_nodes.get(node.name)
        parents = raw[-1].from_node
        if src is not None and parents and src.meta.get("from_node"):
            return parents[0] is src.meta["from_node"][0]
    return None


def main(out_dir: str) -> None:
    model = _Model().eval()
    args = (torch.randn(1, 3, 5, 5),)
    samples: list[dict[str, Any]] = []
    ep = torch.export.export(model, args)
    gm = ep.module()
    samples += _samples(gm.graph, "export().module()")
    ep2 = torch.export.export(gm, args)
    samples += _samples(ep2.graph_module.graph, "reexport.graph_module")
    payload = {
        "torch": torch.__version__,
        "shared_records": _shared(ep2, ep2.module()),
        "samples": samples,
    }
    version = torch.__version__.split("+")[0]
    path = Path(out_dir) / f"from_node_torch{version}.json"
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    print(path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
