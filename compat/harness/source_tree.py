"""The git commit of the tree holding the tests, as a run records it (``run.json``).

Between two runs of a release cell only the tests, the shims, the other packages or the
user's own code can change; this is the evidence for the last two (``history`` names the
commit range). Read with ``git`` itself; no git, no work tree, a slow or broken git:
nothing recorded, never a failed run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["tree_state"]

_TIMEOUT = 10.0  # seconds: a git on a network mount must not hold up a run


def _git(folder: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def tree_state(folder: Path) -> dict[str, object] | None:
    """``{"commit": sha, "dirty": bool}`` of the git work tree holding ``folder``, else None.

    Dirty: a tracked file differs from the commit (untracked files are not counted: a run's
    own reports and envs would be among them)."""
    commit = _git(folder, "rev-parse", "--verify", "HEAD")
    if not commit:
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
