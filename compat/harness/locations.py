"""Where the harness keeps what outlives a run: the cell environments, the state files
beside them, and the layout of one env that readers outside ``install`` (the
applicability evidence) rely on.

``install.env_folder.Env`` owns an env's folder, lock and stamp; the site-packages
pattern is here because ``config`` sits below ``install`` and reads envs too. Every
state file is named once, here, with a function for its path in a given envs root.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "PIP_CONFIG",
    "RESOLVED",
    "SITE_PACKAGES",
    "TIMINGS",
    "UV_CACHE_SIZE",
    "VERDICTS",
    "envs_root",
    "pip_config_file",
    "resolved_file",
    "timings_file",
    "uv_cache_size_file",
    "verdict_store",
]

# An env's site-packages, relative to its folder (uv venv's POSIX layout).
SITE_PACKAGES = "lib/python*/site-packages"


def envs_root() -> Path:
    """Where cell environments live: ``$COMPAT_ENVS_DIR`` or ``.envs`` in the working dir."""
    return Path(os.environ.get("COMPAT_ENVS_DIR") or ".envs").resolve()


# State files in the envs root, each remembered between runs.
TIMINGS = ".timings.json"  # each cell's last wall time, to schedule the longest first
UV_CACHE_SIZE = ".uv-cache-size.json"  # the last measurement of uv's cache
PIP_CONFIG = ".pip-config.json"  # pip's last answer about its index configuration
RESOLVED = ".resolved.json"  # dated nightlies and upload times, found once, kept
VERDICTS = ".verdicts"  # the verdict cache: test files' verdicts by the hash of their inputs


def timings_file(root: Path) -> Path:
    return root / TIMINGS


def uv_cache_size_file(root: Path) -> Path:
    return root / UV_CACHE_SIZE


def pip_config_file(root: Path) -> Path:
    return root / PIP_CONFIG


def resolved_file(root: Path) -> Path:
    return root / RESOLVED


def verdict_store(root: Path) -> Path:
    """The verdict cache (``compat.harness.cache.store``): ``$COMPAT_VERDICTS_DIR``, else
    beside the envs it keys on, so one ``actions/cache`` path carries both."""
    given = os.environ.get("COMPAT_VERDICTS_DIR")
    return Path(given).resolve() if given else root / VERDICTS
