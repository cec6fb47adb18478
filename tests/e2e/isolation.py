"""The isolation check both e2e suites plant in a user's test folder: the cell imports the
shims from its own env, and nothing of the host (its site-packages, this checkout) is on
the cell's path."""

from __future__ import annotations

from pathlib import Path

ISOLATION = """
import os
import sys

import compat.shims.pt2e

HOST = {host!r}


def test_nothing_of_the_host_is_on_the_path():
    env = os.environ["COMPAT_ENVS_DIR"]
    leaked = [p for p in sys.path if not p.startswith(env)
              and any(p == h or p.startswith(h + os.sep) for h in HOST)]
    assert leaked == []
    assert compat.shims.pt2e.__file__.startswith(env)
"""


def write_isolation_test(folder: Path, host: list[str]) -> Path:
    """``folder/test_isolation.py`` failing if any of ``host`` is on the cell's path."""
    path = folder / "test_isolation.py"
    path.write_text(ISOLATION.format(host=host), encoding="utf-8")
    return path
