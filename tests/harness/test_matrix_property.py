"""Property: any matrix file loads or fails with one ConfigError line; nothing else escapes."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat.harness.config.matrix import Matrix, load_matrix
from compat.harness.errors import ConfigError

KEYS = [
    "matrix",
    "torch",
    "include",
    "exclude",
    "expect",
    "channels",
    "python",
    "version",
    "torchao",
    "stack",
    "stacks",
    "tests",
    "timeout",
    "install-timeout",
    "name",
    "deps",
    "channel",
    "gating",
    "reason",
    "test",
    "link",
    "env",
    "memory-limit-mb",
    "bogus",
]
VERSIONS = [
    "2.8.0",
    "2.13.0",
    "0.18.0",
    "3.11",
    "3.12",
    ">=2.9",
    "latest",
    "2.x",
    "",
    "none",
    "torch.ao",
    "torchao",
    "release",
    "tests/core",
]

scalars = st.one_of(
    st.sampled_from(VERSIONS),
    st.text(max_size=8),
    st.integers(-5, 5000),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=5)
torch_entries = st.lists(st.dictionaries(st.sampled_from(KEYS), values, max_size=4), max_size=3)


def _load(path: Path) -> tuple[Matrix | None, str | None]:
    """The matrix, or the ConfigError's text; any other exception fails the property."""
    try:
        return load_matrix(path), None
    except ConfigError as exc:
        return None, str(exc)


def _check(document: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tests" / "core").mkdir(parents=True)
        path = Path(tmp) / "matrix.toml"
        path.write_text(tomli_w.dumps(document), encoding="utf-8")
        matrix, error = _load(path)
        if error is not None:
            assert "\n" not in error
            assert error.startswith(str(path))
            return
        assert matrix is not None
        assert matrix.cells
        assert len({c.id for c in matrix.cells}) == len(matrix.cells)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents(document: dict[str, Any]) -> None:
    _check(document)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(torch_entries, documents)
def test_random_torch_entries(entries: list[dict[str, Any]], rest: dict[str, Any]) -> None:
    _check({**rest, "torch": entries})


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "matrix.toml"
        path.write_bytes(blob)
        _, error = _load(path)
        assert error is None or "\n" not in error
