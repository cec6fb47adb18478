"""Where the harness keeps what outlives a run: the cell environments."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["envs_root"]


def envs_root() -> Path:
    """Where cell environments live: ``$COMPAT_ENVS_DIR`` or ``.envs`` in the working dir."""
    return Path(os.environ.get("COMPAT_ENVS_DIR") or ".envs").resolve()
