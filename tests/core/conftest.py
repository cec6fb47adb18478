"""Self-contained setup for the test core: it must not depend on the project's pytest config.

* makes ``compat`` (repo root) and this folder importable under any ``--import-mode``;
* records, never raises, warnings torch emits during a test (``-W error`` must not turn a
  torch deprecation into a failure: it is evidence for the grid, kept in the routes file).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE.parents[1])):
    if _path not in sys.path:
        sys.path.append(_path)

from compat.shims import routes  # noqa: E402

with routes.capture_warnings("import torch"):
    import torch  # noqa: F401


@pytest.fixture(autouse=True)
def _record_torch_warnings(request: pytest.FixtureRequest) -> Iterator[None]:
    with routes.capture_warnings(request.node.name):
        yield
