"""Checks a command makes before it creates anything: the folders it will write into.

A harness fault found here (the envs folder is a file, or cannot be written) is one line
naming the path and exit code 2, with nothing created; found later, by a cell, it would be
a fault of every cell.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from compat.harness.errors import UsageError
from compat.harness.locations import envs_root

__all__ = ["check_envs_root", "folder_problem"]


def folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a folder this process writes into (None: it can), without
    creating it: a missing folder is judged by the nearest folder above it that exists."""
    if path.exists() and not path.is_dir():
        return "is a file, not a folder"
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            return "no part of it exists"
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:  # a file made and gone at once: modes, read-only mounts and root's limits alike
        with tempfile.TemporaryFile(dir=existing, prefix=".compat-write-check."):
            pass
    except OSError as exc:
        where = "" if existing == path else f" ({existing})"
        return f"cannot write there{where}: {exc.strerror or exc}"
    return None


def check_envs_root() -> Path:
    """The envs folder (``$COMPAT_ENVS_DIR`` or ``.envs``), checked: a :class:`UsageError`
    naming it when it is a file or cannot be written. Call before anything is created."""
    root = envs_root()
    problem = folder_problem(root)
    if problem is not None:
        name = "COMPAT_ENVS_DIR" if os.environ.get("COMPAT_ENVS_DIR") else "envs folder"
        raise UsageError(f"{name} {root}: {problem}")
    return root
