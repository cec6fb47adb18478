"""Upstream's numeric-debugger contracts as released in torch 2.6 (torch.ao), on our shims.

Our own code; the contracts, models, inputs and test names are upstream's, test for test:
pytorch/pytorch ``test/quantization/pt2e/test_numeric_debugger.py`` at **v2.6.0**, read
verbatim in Debian's source package ``pytorch 2.6.0+dfsg-7`` (``pytorch_2.6.0+dfsg.orig.tar.xz``,
sha256 ``099a9601bc40d67656e75735c44abedb0fbe92d08817852ab7472eebb7e6ddff``, top folder
``pytorch-v2.6.0/``; no Debian patch touches the file): 10,008 bytes, sha256
``cffea389b653731462c1ec362db7c19e32b21bf4a6be4260bf4f5651e885fa92``. 2.6 is the first
release whose ``generate_numeric_debug_handle`` takes the ``ExportedProgram`` and walks
control-flow submodules; its test reads handles on ``ep.module()`` and does not assert that
every node carries one (the 2.7+ text, tests/core/test_numeric_debugger.py, does). Per-cell verdicts
in docs/ported-suites-vs-upstream.md. Scoped in matrix.toml to torch.ao, torch 2.6.

Adaptations (no assertion changed in meaning):

* captures go through :func:`compat.shims.export.capture_routes` by the name upstream's
  call has (``export_for_training``, ``export``), with ``strict=True``, both defaults in 2.6;
* handles are read through :mod:`compat.shims.numeric_debug` (``node.meta["custom"]``),
  walking every node of the graph and of its cond/map submodules as upstream's
  ``_extract_debug_handles`` does (``get_control_flow_submodules``);
* hard-coded numbers are asserted by what they mean: ``[1, 2, 3]`` are the handles of the
  conv2d, squeeze and conv1d nodes; ``3`` loggers is one per node generate gave a handle;
* ``@skipIfCrossRef`` on test_re_export_preserve_handle matters only under
  ``PYTORCH_TEST_WITH_CROSSREF``, which no cell sets; it is left out.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
import torch
from numeric_debug_support import exported, handles_of_ops, xnnpack_quantizer
from pt2e_models import ControlFlow, Conv2dThenConv1d

from compat.shims.export import (
    ROUTE_EXPORT_FOR_TRAINING,
    ROUTE_EXPORT_STRICT,
    capture_routes,
)
from compat.shims.numeric_debug import NumericDebugger, debugger
from compat.shims.pt2e import Pt2eApi, api


@pytest.fixture(scope="module")
def nd() -> NumericDebugger:
    return debugger()


@pytest.fixture(scope="module")
def pt2e() -> Pt2eApi:
    return api()


@pytest.fixture(scope="module")
def captures() -> dict:
    return capture_routes()


def _for_training(captures: dict, m: Any, example_inputs: tuple) -> Any:
    return exported(captures, ROUTE_EXPORT_FOR_TRAINING, m, example_inputs)


def _assert_unique(handles: dict) -> None:
    assert len(set(handles.values())) == len(handles), handles


def test_simple(nd: NumericDebugger, captures: dict) -> None:
    m = Conv2dThenConv1d()
    ep = _for_training(captures, m, m.example_inputs())
    nd.generate(ep)
    _assert_unique(nd.handles(ep.module()))


def test_control_flow(nd: NumericDebugger, captures: dict) -> None:
    m = ControlFlow()
    ep = _for_training(captures, m, m.example_inputs())
    nd.generate(ep)
    _assert_unique(nd.handles(ep.module()))


def test_quantize_pt2e_preserve_handle(nd: NumericDebugger, pt2e: Pt2eApi, captures: dict) -> None:
    m = Conv2dThenConv1d()
    example_inputs = m.example_inputs()
    ep = _for_training(captures, m, example_inputs)
    nd.generate(ep)
    op_handles = handles_of_ops(nd, ep)
    assert len(op_handles) == 3
    assert None not in op_handles
    gm = pt2e.prepare_pt2e(ep.module(), xnnpack_quantizer(pt2e))
    counts = Counter(nd.handles(gm).values())
    # each op's handle is copied onto its output observer (upstream: ids [1, 2, 3])
    assert [counts[h] for h in op_handles] == [2, 2, 2]
    gm(*example_inputs)
    gm = pt2e.convert_pt2e(gm)
    counts = Counter(nd.handles(gm).values())
    # ... and from the observer onto the dequantize node that replaces it
    assert [counts[h] for h in op_handles] == [2, 2, 2]


def test_copy_preserve_handle(nd: NumericDebugger, captures: dict) -> None:
    m = Conv2dThenConv1d()
    ep = exported(captures, ROUTE_EXPORT_STRICT, m, m.example_inputs())
    nd.generate(ep)
    ref = nd.handles(ep)
    assert nd.handles(copy.copy(ep)) == ref


def test_deepcopy_preserve_handle(nd: NumericDebugger, captures: dict) -> None:
    m = Conv2dThenConv1d()
    ep = exported(captures, ROUTE_EXPORT_STRICT, m, m.example_inputs())
    nd.generate(ep)
    ref = nd.handles(ep)
    assert nd.handles(copy.deepcopy(ep)) == ref


def test_re_export_preserve_handle(nd: NumericDebugger, captures: dict) -> None:
    m = Conv2dThenConv1d()
    example_inputs = m.example_inputs()
    ep = _for_training(captures, m, example_inputs)
    nd.generate(ep)
    gm = ep.module()
    ref = nd.handles(gm)
    again = nd.handles(_for_training(captures, gm, example_inputs).module())
    assert again == ref, (
        f"re-export changed the handles: only after {sorted(set(again) - set(ref))}, "
        f"only before {sorted(set(ref) - set(again))}"
    )


def test_run_decompositions_preserve_handle(nd: NumericDebugger, captures: dict) -> None:
    m = Conv2dThenConv1d()
    ep = _for_training(captures, m, m.example_inputs())
    nd.generate(ep)
    ref = nd.handles(ep)
    decomposed = copy.copy(ep).run_decompositions()
    # the nodes may change; the set of handles may not
    assert set(nd.handles(decomposed).values()) == set(ref.values())


def test_prepare_for_propagation_comparison(nd: NumericDebugger, captures: dict) -> None:
    m = Conv2dThenConv1d()
    example_inputs = m.example_inputs()
    ep = _for_training(captures, m, example_inputs)
    nd.generate(ep)
    walked = nd.walked(ep)  # upstream: 3 (conv2d, squeeze, conv1d)
    gm = ep.module()
    m_logger = nd.prepare_for_propagation_comparison(gm)
    ref = gm(*example_inputs)
    res = m_logger(*example_inputs)
    loggers = [mod for mod in m_logger.modules() if isinstance(mod, nd.OutputLogger)]
    assert len(loggers) == len(walked), (len(loggers), walked)
    assert "conv2d" in [logger.node_name for logger in loggers]
    torch.testing.assert_close(res, ref)


def test_extract_results_from_loggers(nd: NumericDebugger, pt2e: Pt2eApi, captures: dict) -> None:
    m = Conv2dThenConv1d()
    example_inputs = m.example_inputs()
    ep = _for_training(captures, m, example_inputs)
    nd.generate(ep)
    gm = ep.module()
    m_ref_logger = nd.prepare_for_propagation_comparison(gm)
    gm = pt2e.prepare_pt2e(gm, xnnpack_quantizer(pt2e))
    gm(*example_inputs)
    gm = pt2e.convert_pt2e(gm)
    m_quant_logger = nd.prepare_for_propagation_comparison(gm)
    m_ref_logger(*example_inputs)
    m_quant_logger(*example_inputs)
    ref_results = nd.extract_results_from_loggers(m_ref_logger)
    quant_results = nd.extract_results_from_loggers(m_quant_logger)
    comparison = nd.compare_results(ref_results, quant_results)
    for summary in comparison.values():
        if len(summary.results) > 0:
            assert summary.results[0].sqnr >= 35


def test_added_node_gets_unique_id(nd: NumericDebugger, captures: dict) -> None:
    m = Conv2dThenConv1d()
    ep = _for_training(captures, m, m.example_inputs())
    nd.generate(ep)
    ref = nd.handles(ep)
    ref_counter = Counter(ref.values())
    assert set(ref_counter.values()) == {1}, ref_counter
    # insert a relu before the output, then generate again: only it gets a new handle
    last = next(iter(reversed(ep.graph.nodes)))
    with ep.graph.inserting_before(last):
        outputs = last.args[0]
        assert isinstance(outputs, (list, tuple))
        arg = outputs[0]
        relu = ep.graph.call_function(torch.ops.aten.relu.default, args=(arg,))
        arg.replace_all_uses_with(relu, lambda user: user != relu)
    ep.graph_module.recompile()
    nd.generate(ep)
    after = nd.handles(ep)
    after_counter = Counter(after.values())
    for name, handle in ref.items():
        assert after[name] == handle
        assert after_counter[handle] == ref_counter[handle]
    assert after["relu_default"] != 0
    assert after_counter[after["relu_default"]] == 1
