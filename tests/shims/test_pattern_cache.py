"""``compat.shims.pattern_cache``: one capture per fold pattern, copies out, restored after.

No torch needed: the capture function, the patterns and the tensors are stand-ins with the
shapes the cache keys on (a pattern's code and closure values, tensor shape and dtype).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from compat.shims import pattern_cache, routes


def _pattern(per_channel: bool) -> Callable:
    def pattern(x: Any) -> Any:  # a fresh closure per call, as qat_utils makes them
        return (x, per_channel)

    return pattern


def _tensor(*shape: int, dtype: str = "float32") -> SimpleNamespace:
    return SimpleNamespace(shape=shape, dtype=dtype, device="cpu")


class _Capture:
    """Counts captures; returns a fresh mutable 'graph' each time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, pattern: Callable, inputs: Any, is_cuda: bool = False, **kw: Any) -> Any:
        self.calls += 1
        return {"pattern": pattern.__code__.co_name, "nodes": [self.calls]}


def test_the_same_pattern_is_captured_once_and_handed_out_as_copies() -> None:
    capture = _Capture()
    cached = pattern_cache._cached(capture)
    first = cached(_pattern(True), (_tensor(1, 3),), False, scale=_tensor(1))
    second = cached(_pattern(True), (_tensor(1, 3),), False, scale=_tensor(1))
    assert capture.calls == 1
    assert first == second
    assert first is not second
    first["nodes"].append("mutated by a caller")
    assert cached(_pattern(True), (_tensor(1, 3),), False, scale=_tensor(1))["nodes"] == [1]


@pytest.mark.parametrize(
    "other",
    [
        lambda c: c(_pattern(False), (_tensor(1, 3),), False, scale=_tensor(1)),  # closure
        lambda c: c(_pattern(True), (_tensor(2, 3),), False, scale=_tensor(1)),  # shape
        lambda c: c(_pattern(True), (_tensor(1, 3, dtype="f16"),), False, scale=_tensor(1)),
        lambda c: c(_pattern(True), (_tensor(1, 3),), True, scale=_tensor(1)),  # is_cuda
        lambda c: c(_pattern(True), (_tensor(1, 3),), False, scale=_tensor(3)),  # kwarg
    ],
    ids=["closure", "shape", "dtype", "is_cuda", "kwarg"],
)
def test_anything_the_capture_depends_on_makes_a_new_entry(other: Callable) -> None:
    capture = _Capture()
    cached = pattern_cache._cached(capture)
    cached(_pattern(True), (_tensor(1, 3),), False, scale=_tensor(1))
    other(cached)
    assert capture.calls == 2


def test_a_pattern_without_a_key_is_captured_every_time() -> None:
    capture = _Capture()
    cached = pattern_cache._cached(capture)
    for _ in range(2):
        cached(_pattern(True), ([1, 2],), False)  # a list: unhashable, no key
    assert capture.calls == 2


@pytest.fixture
def fake_qat_utils(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    module = types.ModuleType("fake_qat_utils")
    module.get_aten_graph_module = _Capture()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_qat_utils", module)
    monkeypatch.setattr(pattern_cache, "resolve_stack", lambda: "torch.ao")
    monkeypatch.setattr(pattern_cache, "_QAT_UTILS", {"torch.ao": "fake_qat_utils"})
    routes.reset()
    yield module
    routes.reset()


def test_the_cache_is_in_place_only_inside_the_block(fake_qat_utils: types.ModuleType) -> None:
    original = fake_qat_utils.get_aten_graph_module
    with pattern_cache.cached_pattern_capture() as active:
        assert active is True
        wrapped = fake_qat_utils.get_aten_graph_module
        assert wrapped is not original
        assert wrapped.__wrapped__ is original
        wrapped(_pattern(True), (_tensor(1),))
        wrapped(_pattern(True), (_tensor(1),))
    assert fake_qat_utils.get_aten_graph_module is original
    assert original.calls == 1
    assert routes.routes()[pattern_cache.ROUTE].startswith("cached per pattern")


def test_a_stack_without_the_capture_function_is_left_alone(
    fake_qat_utils: types.ModuleType,
) -> None:
    del fake_qat_utils.get_aten_graph_module
    with pattern_cache.cached_pattern_capture() as active:
        assert active is False
    assert not hasattr(fake_qat_utils, "get_aten_graph_module")
    assert routes.routes()[pattern_cache.ROUTE].startswith("not cached")
