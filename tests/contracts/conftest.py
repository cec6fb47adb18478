"""The metadata-contract suite (docs/metadata-contracts.md), kept apart from the test core.

It is not yet in the default matrix: it fails in every cell for reasons traced to upstream
(each one in the doc), and each must become an ``[[expect]]`` with ``raises``, ``match``
and ``issue`` first. It runs on its own with ``contracts.toml``. Its models are the test
core's (``tests/core/pt2e_models.py``); torch's warnings are recorded, never raised.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent / "core"), str(_HERE.parents[1])):
    if _path not in sys.path:
        sys.path.append(_path)

from compat.shims import routes  # noqa: E402


@pytest.fixture(autouse=True)
def _record_torch_warnings(request: pytest.FixtureRequest) -> Iterator[None]:
    with routes.capture_warnings(request.node.name):
        yield
