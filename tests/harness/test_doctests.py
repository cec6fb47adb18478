"""The examples in the harness's docstrings run, as ``packaging``'s do.

Not ``--doctest-modules``: over the test paths that would also import every ``.py`` under
``tests/`` (stand-in torch packages, cell-side tests), so the harness's modules that hold
examples are found here and run with ``doctest`` instead.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import compat.harness

HARNESS = Path(compat.harness.__file__).parent


def modules_with_examples() -> list[str]:
    found = []
    for path in sorted(HARNESS.rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            parts = path.relative_to(HARNESS.parent.parent).with_suffix("").parts
            found.append(".".join(parts))
    return found


def test_some_module_has_examples() -> None:
    assert "compat.harness.config.sizes" in modules_with_examples()


@pytest.mark.parametrize("name", modules_with_examples())
def test_the_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), verbose=False, report=True)
    assert result.attempted > 0
    assert result.failed == 0
