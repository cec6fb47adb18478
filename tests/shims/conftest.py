"""Shim tests: make ``compat`` importable and give each test a clean route registry."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from compat.shims import routes  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_routes() -> Iterator[None]:
    routes.reset()
    yield
    routes.reset()
