"""Upstream's pt2e numeric-debugger contracts (torchao, handles derived from ``from_node``).

Our own code; the contracts, models, inputs and test names are upstream's, test for test:
pytorch/ao ``test/quantization/pt2e/test_numeric_debugger.py`` at v0.13.0 = v0.16.0 (sha256
f34e4cd1...) and v0.18.0 (7282c7fb...; the same tests, only its torch>=2.8 gate dropped),
with the helpers of ``torchao/testing/pt2e/utils.py`` (``PT2ENumericDebuggerTestCase``).
From torchao 0.11 (pytorch/ao#2339, #2452) a node's handle is the (name, graph_id) of the
oldest NodeSource in its ``from_node`` chain, so no ``generate`` call appears here: the
handle exists if and only if export and every later pass kept ``from_node``.

A separate file from test_numeric_debugger.py because the tests differ, not only the
handle: torchao's copy has no quantize/compare tests (test_quantize_pt2e_preserve_handle,
test_extract_results_from_loggers*), captures with ``.module()`` first, and skips
test_control_flow (kept here with upstream's own reason). Scoped in matrix.toml to the
torchao stack on torch >= 2.8 (upstream's class skip below 2.8 at v0.13 - v0.16).
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
import torch
from pt2e_models import ControlFlow, Conv2dThenConv1d, TwoLinearModule

from compat.shims.numeric_debug import NumericDebugger, debugger


@pytest.fixture(scope="module")
def nd() -> NumericDebugger:
    return debugger()


def _export(model: Any, example_inputs: tuple) -> Any:
    return torch.export.export(model, example_inputs, strict=True)


def test_simple(nd: NumericDebugger) -> None:
    m = Conv2dThenConv1d()
    gm = _export(m, m.example_inputs()).module()
    assert nd.missing_handles(gm) == []
    handles = nd.handles(gm)
    assert len(set(handles.values())) == len(handles)


@pytest.mark.skip(reason="debug flow not working on model with conditional control flow")
def test_control_flow(nd: NumericDebugger) -> None:
    m = ControlFlow()
    gm = _export(m, m.example_inputs()).module()
    assert nd.missing_handles(gm) == []
    handles = nd.handles(gm)
    assert len(set(handles.values())) == len(handles)


def test_copy_preserve_handle(nd: NumericDebugger) -> None:
    m = Conv2dThenConv1d()
    ep = _export(m, m.example_inputs())
    gm = ep.module()
    assert nd.missing_handles(gm) == []
    ref = nd.handles(gm)
    assert nd.handles(copy.copy(ep).module()) == ref
    assert nd.missing_handles(ep) == []


def test_deepcopy_preserve_handle(nd: NumericDebugger) -> None:
    m = Conv2dThenConv1d()
    ep = _export(m, m.example_inputs())
    ref = nd.handles(ep.module())
    copied = nd.handles(copy.deepcopy(ep).module())
    assert nd.missing_handles(ep.module()) == []
    assert copied == ref
    assert set(copied.values()) == set(ref.values())


def test_re_export_preserve_handle(nd: NumericDebugger) -> None:
    m = Conv2dThenConv1d()
    example_inputs = m.example_inputs()
    gm = _export(m, example_inputs).module()
    assert nd.missing_handles(gm) == []
    ref = nd.handles(gm)
    gm_again = _export(gm, example_inputs).module()
    assert nd.missing_handles(gm_again) == []
    assert nd.handles(gm_again) == ref


def test_run_decompositions_same_handle_id(nd: NumericDebugger) -> None:
    m = Conv2dThenConv1d()
    ep = _export(m, m.example_inputs())
    gm = ep.module()
    assert nd.missing_handles(gm) == []
    ref = nd.handles(gm)
    decomposed = copy.copy(ep).run_decompositions().module()
    assert nd.missing_handles(decomposed) == []
    # the nodes may change; the set of handles may not
    assert set(nd.handles(decomposed).values()) == set(ref.values())


def test_run_decompositions_map_handle_to_new_nodes(nd: NumericDebugger) -> None:
    for m in (TwoLinearModule(), Conv2dThenConv1d()):
        ep = _export(m, m.example_inputs())
        gm = ep.module()
        assert nd.missing_handles(gm) == []
        ref = nd.handles_by_module_stack(gm)
        decomposed = copy.copy(ep).run_decompositions().module()
        assert nd.missing_handles(decomposed) == []
        assert nd.handles_by_module_stack(decomposed) == ref


def test_prepare_for_propagation_comparison(nd: NumericDebugger) -> None:
    m = Conv2dThenConv1d()
    example_inputs = m.example_inputs()
    gm = _export(m, example_inputs).module()
    m_logger = nd.prepare_for_propagation_comparison(gm)
    ref = gm(*example_inputs)
    res = m_logger(*example_inputs)
    loggers = [mod for mod in m_logger.modules() if isinstance(mod, nd.OutputLogger)]
    assert len(loggers) == 3  # one per op: conv2d, squeeze, conv1d
    assert "conv2d" in [logger.node_name for logger in loggers]
    torch.testing.assert_close(res, ref)


def test_added_node_gets_unique_id(nd: NumericDebugger) -> None:
    m = Conv2dThenConv1d()
    ep = _export(m, m.example_inputs())
    ref = nd.handles(ep.module())
    ref_counter = Counter(ref.values())
    assert set(ref_counter.values()) == {1}, ref_counter
    # insert a relu before the output of the program's graph; only it gets a new handle
    last = next(iter(reversed(ep.graph.nodes)))
    with ep.graph.inserting_before(last):
        outputs = last.args[0]
        assert isinstance(outputs, (list, tuple))
        arg = outputs[0]
        relu = ep.graph.call_function(torch.ops.aten.relu.default, args=(arg,))
        arg.replace_all_uses_with(relu, lambda user: user != relu)
    ep.graph_module.recompile()
    gm = ep.module()
    assert nd.missing_handles(gm) == []
    after = nd.handles(gm)
    after_counter = Counter(after.values())
    for name, handle in ref.items():
        assert after[name] == handle
        assert after_counter[handle] == ref_counter[handle]
    assert after["relu_default"] not in ref_counter
    assert after_counter[after["relu_default"]] == 1
