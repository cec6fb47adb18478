"""Metadata contracts: what pt2e consumers read from a graph, at every stage, on every route.

Quantizers, partitioners and debuggers do not read raw ``node.meta`` keys; they call
``get_source_partitions``, the module-name filter behind ``set_module_name``, the lineage
of ``from_node`` (torchao's numeric debugger), and they count on ``stack_trace``,
``nn_module_stack``, ``custom`` and ``quantization_tag`` surviving the passes between
capture and lowering. For small models, every capture route this torch offers
(``compat.shims.export.capture_routes()``) and each stage (export, prepare, convert,
re-export, ``torch.export.save``/``load``, ``run_decompositions``) this file checks one
contract per test, so that one failing id has one cause (docs/metadata-contracts.md):

* ``test_stack_info[route-stage]``: every call_function node of the exported graph has
  ``stack_trace`` and ``nn_module_stack``; a later node derived from one that had them
  keeps them.
* ``test_source_partitions[route-stage]``: ``get_source_partitions`` finds a partition for
  each source of the model.
* ``test_module_name_filter[route-stage]``: the module-name filter behind
  ``set_module_name`` selects the nodes of each named submodule (``conv``,
  ``block.leaf.linear``...); ``test_module_name_filter_non_identifier``: the same for a
  submodule whose name is not a Python identifier (``encoder-0``).
* ``test_custom_survives`` / ``test_quantization_tag_survives[route-pass]``: ``custom`` /
  ``quantization_tag`` set on the previous stage before the pass are on every node
  derived from a stamped node; ``test_output_node_custom_survives``: the output node keeps
  the ``custom`` set on it.
* ``test_from_node_names_previous_stage[route-pass]``: ``from_node`` (through
  ``compat.shims.fx_meta``) of every node the pass made names a real node of the previous
  stage (save/load: the same nodes as before saving).

Each (route, model) pipeline runs once per file process and every test reads it; a model
that did not reach a stage is reported after the contract has been checked on the others.
A route or stage this torch lacks is skipped (its id is the same in every cell). Where a
key moves while the consumer call still answers (module paths), the form is recorded as a
route (``contracts ...`` rows), not failed; each stage's porting snapshot is recorded for
the drift view by ``test_quantization_tag_survives``. Verdicts per cell, with the upstream
reference of every failure: docs/metadata-contracts.md.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Set, Tuple

import pytest
import torch
from pt2e_models import (
    ConvBnReLU,
    CustomModuleName,
    MatmulWithConstInput,
    NestedSubmodules,
    SingleLinear,
)

from compat.shims import export as capture_shim
from compat.shims import fx_meta, meta_consumers, routes, snapshot
from compat.shims.pattern_cache import cached_pattern_capture
from compat.shims.pt2e import api

ROUTES = capture_shim.ROUTE_NAMES
STAGES = ("export", "prepare", "convert", "reexport", "save_load", "run_decompositions")
PREVIOUS = {
    "prepare": "export",
    "convert": "prepare",
    "reexport": "convert",
    "save_load": "reexport",
    "run_decompositions": "reexport",
}
KEPT_KEYS = ("stack_trace", "nn_module_stack")
CUSTOM_KEY = "contract"
OUTPUT_STAMP = "c:output"
TAG_PREFIX = "t:"
REBUILDING = ("reexport", "run_decompositions")  # passes that trace a new graph


@dataclass(frozen=True)
class ModelCase:
    make: Callable[[], torch.nn.Module]
    inputs: Callable[[], Tuple[torch.Tensor, ...]]
    sources: Tuple[Any, ...]  # what get_source_partitions is asked for
    module_names: Tuple[str, ...] = ()  # what set_module_name would be given
    export_only: Tuple[Any, ...] = ()  # sources fused away by prepare (BN into conv)


MODELS: Dict[str, ModelCase] = {
    "conv_bn_relu": ModelCase(
        ConvBnReLU,
        lambda: (torch.randn(1, 3, 6, 6),),
        (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU),
        ("conv",),
        export_only=(torch.nn.BatchNorm2d,),
    ),
    "linear": ModelCase(
        SingleLinear, lambda: (torch.randn(2, 4),), (torch.nn.Linear,), ("linear",)
    ),
    "matmul_const": ModelCase(
        MatmulWithConstInput,
        lambda: (torch.randn(16, 4), torch.randn(8, 4)),
        (torch.matmul, operator.add, torch.nn.functional.relu),
    ),
    "nested": ModelCase(
        NestedSubmodules,
        lambda: (torch.randn(1, 3, 5, 5),),
        (torch.nn.Conv2d, torch.nn.Linear),
        ("block.conv", "block.leaf.linear"),
    ),
    "custom_name": ModelCase(
        CustomModuleName, lambda: (torch.randn(2, 4),), (torch.nn.Linear,), ("encoder-0",)
    ),
}


@dataclass(frozen=True)
class NodeInfo:
    name: str
    op: str
    target: str
    keys: FrozenSet[str]
    custom: Optional[str]
    tag: Optional[str]
    sources: FrozenSet[Tuple[str, str]]  # every (name, target) in the lineage tree


@dataclass
class Stage:
    """One stage of one (route, model) pipeline, observed when it was made."""

    nodes: Dict[str, NodeInfo] = field(default_factory=dict)
    output_custom: Optional[str] = None
    problems: Dict[str, List[str]] = field(default_factory=dict)  # contract -> problems
    module_path: str = "none"
    porting: List[Dict[str, Optional[str]]] = field(default_factory=list)  # its snapshot
    graph: Any = None  # the live graph, stamped before the next pass
    stamped: bool = False


class NotReached(Exception):
    """An earlier stage of the pipeline failed; its message names that exception."""


def _walk(record: fx_meta.SourceRecord, out: Set[Tuple[str, str]]) -> None:
    if not record.is_module_stamp:
        out.add((record.name, record.target))
    for parent in record.parents:
        _walk(parent, out)


def _sources(node: torch.fx.Node) -> FrozenSet[Tuple[str, str]]:
    out: Set[Tuple[str, str]] = set()
    for record in fx_meta.lineage(node, record_route=False):
        _walk(record, out)
    return frozenset(out)


def _custom(node: torch.fx.Node) -> Optional[str]:
    custom = node.meta.get("custom")
    if isinstance(custom, dict) and CUSTOM_KEY in custom:
        return str(custom[CUSTOM_KEY])
    return None


def _observe(graph: torch.fx.Graph) -> Dict[str, NodeInfo]:
    out = {}
    for node in graph.nodes:
        fx_meta.original_source(node, record_route=False)  # the debugger's call must answer
        tag = node.meta.get("quantization_tag")
        out[node.name] = NodeInfo(
            name=node.name,
            op=node.op,
            target=str(node.target),
            keys=frozenset(k for k in KEPT_KEYS if node.meta.get(k) is not None),
            custom=_custom(node),
            tag=None if tag is None else str(tag),
            sources=_sources(node),
        )
    return out


def _output(graph: torch.fx.Graph) -> torch.fx.Node:
    return next(n for n in graph.nodes if n.op == "output")


def _stamp(stage: Stage) -> None:
    """Set ``custom`` and ``quantization_tag`` on the previous stage before the pass."""
    if stage.stamped:
        return
    for node in stage.graph.nodes:
        if node.op == "call_function":
            custom = dict(node.meta.get("custom") or {})
            custom[CUSTOM_KEY] = f"c:{node.name}"
            node.meta["custom"] = custom
            node.meta["quantization_tag"] = f"{TAG_PREFIX}{node.name}"
    out = _output(stage.graph)
    custom = dict(out.meta.get("custom") or {})
    custom[CUSTOM_KEY] = OUTPUT_STAMP
    out.meta["custom"] = custom
    stage.nodes = _observe(stage.graph)
    stage.stamped = True


def _porting(graph: torch.fx.Graph) -> List[Dict[str, Optional[str]]]:
    """The stage's porting snapshot; a tag this suite stamped reads ``stamped`` (the node
    names inside it differ between versions without meaning)."""
    entries = snapshot.snapshot(graph)
    for entry in entries:
        if (entry.get("tag") or "").startswith(TAG_PREFIX):
            entry["tag"] = "stamped"
    return entries


def _module_path_form(graph: torch.fx.Graph) -> str:
    """How nn_module_stack spells the deepest module path of the graph (drift, recorded):
    its innermost key (an ``id()`` in 2.15 strict export, shown as ``<id>``) and path."""
    deepest: Dict[str, Any] = {}
    for node in graph.nodes:
        stack = node.meta.get("nn_module_stack") if node.op == "call_function" else None
        if stack and len(stack) > len(deepest):
            deepest = stack
    if not deepest:
        return "none"
    key, value = list(deepest.items())[-1]
    path = value[0] if isinstance(value, tuple) else value
    return f"key {'<id>' if str(key).isdigit() else key} path {path}"


def _is_identifier_path(module_name: str) -> bool:
    return all(part.isidentifier() for part in module_name.split("."))


def _missing_keys(name: str, calls: List[torch.fx.Node]) -> List[str]:
    problems = []
    for node in calls:
        missing = [k for k in KEPT_KEYS if node.meta.get(k) is None]
        if missing:
            problems.append(f"{name}: {node.name} ({node.target}) has no {missing}")
    return problems


def _partition_problems(name: str, case: ModelCase, stage_name: str, graph: Any) -> List[str]:
    wanted = [s for s in case.sources if stage_name == "export" or s not in case.export_only]
    try:
        found = meta_consumers.source_partitions(graph, wanted)
    except Exception as exc:  # noqa: BLE001 - a consumer call that stops answering
        return [f"{name}: get_source_partitions raised {type(exc).__name__}: {exc}"]
    return [
        f"{name}: get_source_partitions finds no {getattr(s, '__name__', str(s))} partition"
        for s in wanted
        if not found.get(s)
    ]


def _filter_problems(name: str, names: List[str], calls: List[torch.fx.Node]) -> List[str]:
    problems = []
    for module_name in names:
        try:
            keep = meta_consumers.module_name_filter(module_name)
            selected = [n for n in calls if keep(n)]
        except Exception as exc:  # noqa: BLE001 - a consumer call that stops answering
            problems.append(f"{name}: module-name filter raised {type(exc).__name__}: {exc}")
            continue
        if not selected:
            problems.append(f"{name}: module-name filter {module_name!r} selects no node")
    return problems


def _make_stage(name: str, case: ModelCase, stage_name: str, graph: Any) -> Stage:
    calls = [n for n in graph.nodes if n.op == "call_function"]
    names = list(case.module_names)
    stage = Stage(graph=graph)
    stage.nodes = _observe(graph)
    stage.output_custom = _custom(_output(graph))
    stage.problems = {
        "stack_info": _missing_keys(name, calls) if stage_name == "export" else [],
        "partitions": _partition_problems(name, case, stage_name, graph),
        "module_filter": _filter_problems(
            name, [n for n in names if _is_identifier_path(n)], calls
        ),
        "module_filter_odd": _filter_problems(
            name, [n for n in names if not _is_identifier_path(n)], calls
        ),
    }
    stage.module_path = _module_path_form(graph)
    stage.porting = _porting(graph)
    return stage


def _min_max(config: Any) -> Any:
    """The XNNPACK config with MinMax activation observers instead of Histogram ones
    (whose qparam search costs ~0.3 s per observer); metadata does not depend on it."""
    spec = config.input_activation
    ctr = getattr(spec, "observer_or_fake_quant_ctr", None)
    cls = getattr(getattr(ctr, "p", None), "func", None)
    home = sys.modules.get(getattr(cls, "__module__", ""))
    min_max = getattr(home, "MinMaxObserver", None)
    if min_max is None or not dataclasses.is_dataclass(config):
        return config
    fast = dataclasses.replace(spec, observer_or_fake_quant_ctr=min_max.with_args(eps=2**-12))
    return dataclasses.replace(config, input_activation=fast, output_activation=fast)


def _quantizer() -> Any:
    pt2e = api()
    quantizer = pt2e.XNNPACKQuantizer()
    with routes.capture_warnings("XNNPACKQuantizer"):
        quantizer.set_global(_min_max(pt2e.get_symmetric_quantization_config()))
    return quantizer


def _run(route: Any, name: str, case: ModelCase) -> Dict[str, Any]:
    """Every stage of one model on one route; a failed stage holds its exception."""
    out: Dict[str, Any] = {}
    inputs = case.inputs()
    torch.manual_seed(0)
    model = case.make().eval()

    def step(stage_name: str, make_graph: Callable[[], Any]) -> Any:
        previous = PREVIOUS.get(stage_name)
        if previous is not None:
            before = out.get(previous)
            if not isinstance(before, Stage):
                out[stage_name] = NotReached(f"{previous} did not run: {before!r:.300}")
                return None
            _stamp(before)
        try:
            result, graph = make_graph()
            out[stage_name] = _make_stage(name, case, stage_name, graph)
            return result
        except Exception as exc:  # noqa: BLE001 - the stage's own test re-raises it
            out[stage_name] = exc
            return None

    captured = step("export", lambda: _pair(route(copy.deepcopy(model), inputs)))
    prepared = converted = program = None
    if captured is not None:
        prepared = step("prepare", lambda: _pair(_prepare(captured, inputs)))
    if prepared is not None:
        converted = step("convert", lambda: _pair(_convert(prepared, inputs)))
    if converted is not None:
        program = step("reexport", lambda: _program(route.program(converted, inputs)))
    passes = capture_shim.program_passes()
    for stage_name in ("save_load", "run_decompositions"):
        if stage_name not in passes:
            out[stage_name] = None  # this torch has no such pass: skipped
        elif program is not None:
            fn = passes[stage_name]
            step(stage_name, lambda fn=fn: _program(fn(program)))
    failed = next((out[s] for s in STAGES if isinstance(out.get(s), Exception)), None)
    for stage_name in STAGES:
        if stage_name not in out:  # an earlier stage failed: this one is not reached
            out[stage_name] = NotReached(f"not reached: {type(failed).__name__}: {failed}")
    return out


def _pair(gm: Any) -> Tuple[Any, Any]:
    return gm, gm.graph


def _program(ep: Any) -> Tuple[Any, Any]:
    return ep, ep.graph


def _prepare(gm: Any, inputs: Tuple[Any, ...]) -> Any:
    prepared = api().prepare_pt2e(gm, _quantizer())
    prepared(*inputs)
    return prepared


def _convert(gm: Any, inputs: Tuple[Any, ...]) -> Any:
    converted = api().convert_pt2e(gm, fold_quantize=True)
    converted(*inputs)
    return converted


_CACHE: Dict[str, Dict[str, Dict[str, Any]]] = {}


def _pipelines(route_name: str) -> Dict[str, Dict[str, Any]]:
    """``{model: {stage: Stage | exception | None}}`` for one route, made once."""
    if route_name not in _CACHE:
        available = capture_shim.capture_routes()
        if route_name not in available:
            _CACHE[route_name] = {}
        else:
            route = available[route_name]
            _CACHE[route_name] = {name: _run(route, name, case) for name, case in MODELS.items()}
            _record_drift(route_name, _CACHE[route_name])
    return _CACHE[route_name]


def _record_drift(route_name: str, runs: Dict[str, Dict[str, Any]]) -> None:
    """Module-path spellings of the nested model by stage: drift, recorded not failed."""
    forms: Dict[str, List[str]] = {}
    for stage_name in STAGES:
        stage = runs.get("nested", {}).get(stage_name)
        if isinstance(stage, Stage):
            form = stage.module_path
            forms.setdefault(form, []).append(stage_name)
    text = "; ".join(f"{'/'.join(stages)}: {form}" for form, stages in forms.items())
    routes.record(f"contracts module path {route_name}", text or "none")


def _stages_of(route_name: str, stage_name: str) -> Tuple[Dict[str, Stage], List[BaseException]]:
    """The stage of every model that reached it, and the exceptions of those that did not;
    skips what this torch lacks."""
    runs = _pipelines(route_name)
    if not runs:
        pytest.skip(f"this torch has no {route_name} capture route")
    stages: Dict[str, Stage] = {}
    errors: List[BaseException] = []
    for name, run in runs.items():
        result = run.get(stage_name)
        if result is None:
            pytest.skip(f"this torch has no {stage_name}")
        if isinstance(result, BaseException):
            errors.append(result)
        else:
            stages[name] = result
    return stages, errors


def _verdict(problems: List[str], errors: List[BaseException]) -> None:
    """Fail with every broken contract; else with the exception of a model that did not
    reach the stage (as the stage raised it: type and message intact)."""
    assert not problems, "\n".join(problems)
    if errors:
        raise next((e for e in errors if not isinstance(e, NotReached)), errors[0])


ROUTE_STAGE = [(r, s) for r in ROUTES for s in STAGES]
ROUTE_PASS = [(r, s) for r in ROUTES for s in STAGES if s in PREVIOUS]
# prepare changes no call_function node in place and makes none (observers are modules)
ROUTE_LINEAGE = [(r, s) for r, s in ROUTE_PASS if s != "prepare"]


def _ids(pairs: List[Tuple[str, str]]) -> List[str]:
    return [f"{r}-{s}" for r, s in pairs]


@pytest.fixture(scope="module", autouse=True)
def _shared_pattern_capture() -> Iterator[None]:
    """convert_pt2e's conv-bn fold patterns are captured once for the whole file (torch
    2.2 re-captures 24 of them in every convert: ~11 s each); the graphs under test are
    converted exactly as before (compat.shims.pattern_cache)."""
    with cached_pattern_capture():
        yield


def _stage_contract(route_name: str, stage_name: str, contract: str) -> None:
    stages, errors = _stages_of(route_name, stage_name)
    problems: List[str] = []
    for stage in stages.values():
        problems.extend(_dedupe(stage.problems[contract]))
    _verdict(problems, errors)


@pytest.mark.parametrize(("route_name", "stage_name"), ROUTE_STAGE, ids=_ids(ROUTE_STAGE))
def test_stack_info(route_name: str, stage_name: str) -> None:
    """At export every call_function node has ``stack_trace`` and ``nn_module_stack``;
    after a pass, a node derived from one that had them keeps them."""
    stages, errors = _stages_of(route_name, stage_name)
    runs = _pipelines(route_name)
    problems: List[str] = []
    for name, stage in stages.items():
        found = list(stage.problems["stack_info"])
        previous = PREVIOUS.get(stage_name)
        if previous is not None:
            before = runs[name][previous]
            for node in stage.nodes.values():
                if node.op != "call_function":
                    continue
                for origin in _derived_from(node, before, stage_name):
                    lost = [k for k in origin.keys if k not in node.keys]
                    if lost:
                        found.append(
                            f"{name}: {node.name} ({node.target}) lost {lost} of {origin.name}"
                        )
                        break
        problems.extend(_dedupe(found))
    _verdict(problems, errors)


@pytest.mark.parametrize(("route_name", "stage_name"), ROUTE_STAGE, ids=_ids(ROUTE_STAGE))
def test_source_partitions(route_name: str, stage_name: str) -> None:
    """``get_source_partitions`` finds a partition for every source of each model
    (BatchNorm2d only at export: prepare fuses it into the conv)."""
    _stage_contract(route_name, stage_name, "partitions")


@pytest.mark.parametrize(("route_name", "stage_name"), ROUTE_STAGE, ids=_ids(ROUTE_STAGE))
def test_module_name_filter(route_name: str, stage_name: str) -> None:
    """The module-name filter selects a node of each named submodule (identifier paths:
    ``conv``, ``linear``, ``block.conv``, ``block.leaf.linear``)."""
    _stage_contract(route_name, stage_name, "module_filter")


@pytest.mark.parametrize(("route_name", "stage_name"), ROUTE_STAGE, ids=_ids(ROUTE_STAGE))
def test_module_name_filter_non_identifier(route_name: str, stage_name: str) -> None:
    """The module-name filter selects the nodes of a submodule registered under a name
    that is not a Python identifier (``encoder-0``, reachable only through getattr)."""
    _stage_contract(route_name, stage_name, "module_filter_odd")


def _derived_from(node: NodeInfo, before: Stage, stage_name: str) -> List[NodeInfo]:
    """The previous stage's nodes this one comes from: itself (same name and target),
    else every node its lineage names."""
    same = before.nodes.get(node.name)
    if same is not None and same.target == node.target:
        return [same]
    if stage_name == "save_load":
        return []
    return [
        before.nodes[n]
        for n, target in sorted(node.sources)
        if n in before.nodes and before.nodes[n].target == target
    ]


@pytest.mark.parametrize(("route_name", "stage_name"), ROUTE_PASS, ids=_ids(ROUTE_PASS))
def test_custom_survives(route_name: str, stage_name: str) -> None:
    """``custom`` set on the previous stage before the pass is on every node derived from
    a stamped node, and at least one node derives from one."""
    _pass_contract(route_name, stage_name, _custom_problems)


@pytest.mark.parametrize(("route_name", "stage_name"), ROUTE_PASS, ids=_ids(ROUTE_PASS))
def test_quantization_tag_survives(route_name: str, stage_name: str) -> None:
    """``quantization_tag`` set on the previous stage before the pass is on every node
    derived from a stamped node. Records each model's porting snapshot of the stage."""
    stages, _ = _stages_of(route_name, stage_name)
    for name, stage in stages.items():
        snapshot.record_entries(f"{stage_name}/{name}", stage.porting)
    _pass_contract(route_name, stage_name, _tag_problems)


@pytest.mark.parametrize(("route_name", "stage_name"), ROUTE_PASS, ids=_ids(ROUTE_PASS))
def test_output_node_custom_survives(route_name: str, stage_name: str) -> None:
    """The output node keeps the ``custom`` set on it before the pass."""
    _pass_contract(route_name, stage_name, _output_problems)


@pytest.mark.parametrize(("route_name", "stage_name"), ROUTE_LINEAGE, ids=_ids(ROUTE_LINEAGE))
def test_from_node_names_previous_stage(route_name: str, stage_name: str) -> None:
    """``from_node`` of the nodes a pass made names real nodes of the previous stage
    (save/load: the same nodes it named before saving); ``fx_meta.original_source``
    answers for every node of every stage."""
    _pass_contract(route_name, stage_name, _lineage_problems)


def _pass_contract(route_name: str, stage_name: str, check: Callable) -> None:
    stages, errors = _stages_of(route_name, stage_name)
    runs = _pipelines(route_name)
    problems: List[str] = []
    for name, stage in stages.items():
        before: Stage = runs[name][PREVIOUS[stage_name]]
        problems.extend(_dedupe(check(name, stage, before, stage_name)))
    _verdict(problems, errors)


def _lineage_problems(name: str, stage: Stage, before: Stage, stage_name: str) -> List[str]:
    problems: List[str] = []
    answered = 0  # nodes the pass made whose lineage names a node of the previous stage
    made = 0
    before_pairs = {(n.name, n.target) for n in before.nodes.values()}
    for node in stage.nodes.values():
        if node.op != "call_function":
            continue
        same = before.nodes.get(node.name)
        carried = same is not None and same.target == node.target
        if stage_name == "save_load":
            if carried and same.sources and node.sources != same.sources:
                problems.append(
                    f"{name}: {node.name} from_node {_names(node.sources)} after load, "
                    f"{_names(same.sources)} before save"
                )
        elif not carried or stage_name in REBUILDING:
            made += 1
            if node.sources & before_pairs:
                answered += 1
            elif node.sources and not carried:
                problems.append(
                    f"{name}: {node.name} ({node.target}) from_node names "
                    f"{_names(node.sources)}, no node of {PREVIOUS[stage_name]}"
                )
    if stage_name in REBUILDING and made and not answered:
        problems.append(
            f"{name}: from_node of no node made by {stage_name} names a node of "
            f"{PREVIOUS[stage_name]}"
        )
    return problems


def _stamped_origins(node: NodeInfo, before: Stage, stage_name: str) -> List[NodeInfo]:
    return [o for o in _derived_from(node, before, stage_name) if o.custom]


def _carried(name: str, stage: Stage, before: Stage, stage_name: str, key: str) -> List[str]:
    """``key`` (``custom`` or ``tag``) on every call_function node derived from a stamped
    node of the previous stage; at least one node must derive from one."""
    problems: List[str] = []
    derived = 0
    for node in stage.nodes.values():
        if node.op != "call_function":
            continue
        origins = _stamped_origins(node, before, stage_name)
        if not origins:
            continue
        derived += 1
        if getattr(node, key) is None:
            label = "custom" if key == "custom" else "quantization_tag"
            problems.append(
                f"{name}: {node.name} ({node.target}) lost {label} of {origins[0].name}"
            )
    if not derived:
        problems.append(f"{name}: no node of {stage_name} derives from a stamped node")
    return problems


def _custom_problems(name: str, stage: Stage, before: Stage, stage_name: str) -> List[str]:
    return _carried(name, stage, before, stage_name, "custom")


def _tag_problems(name: str, stage: Stage, before: Stage, stage_name: str) -> List[str]:
    return _carried(name, stage, before, stage_name, "tag")


def _output_problems(name: str, stage: Stage, before: Stage, stage_name: str) -> List[str]:
    if stage.output_custom != OUTPUT_STAMP:
        return [f"{name}: output node custom {stage.output_custom!r} (set {OUTPUT_STAMP!r})"]
    return []


def _names(pairs: FrozenSet[Tuple[str, str]]) -> str:
    return ",".join(sorted(n for n, _ in pairs))[:120] or "nothing"


def _dedupe(problems: List[str], limit: int = 6) -> List[str]:
    seen: List[str] = []
    for p in problems:
        if p not in seen:
            seen.append(p)
    return seen[:limit] + ([f"(+{len(seen) - limit} more)"] if len(seen) > limit else [])
