"""Where the harness keeps what outlives a run: the cell environments, and the layout of
one env that readers outside ``install`` (the applicability evidence) rely on.

``install.env_folder.Env`` owns an env's folder, lock and stamp; the site-packages
pattern is here because ``config`` sits below ``install`` and reads envs too.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SITE_PACKAGES", "envs_root"]

# An env's site-packages, relative to its folder (uv venv's POSIX layout).
SITE_PACKAGES = "lib/python*/site-packages"


def envs_root() -> Path:
    """Where cell environments live: ``$COMPAT_ENVS_DIR`` or ``.envs`` in the working dir."""
    return Path(os.environ.get("COMPAT_ENVS_DIR") or ".envs").resolve()
