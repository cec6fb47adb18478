"""Find a CPython for a cell without downloading one (the machine may be offline)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["find_interpreter"]


def _pyenv_candidates(minor: str) -> list[Path]:
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    versions = Path(root) / "versions"
    if not versions.is_dir():
        return []
    found = [p / "bin" / f"python{minor}" for p in versions.glob(f"{minor}.*")]
    return sorted((p for p in found if p.exists()), reverse=True)


def _reports_version(path: Path | str, minor: str) -> bool:
    try:
        out = subprocess.run(
            [str(path), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == minor


@functools.cache
def find_interpreter(python: str) -> str | None:
    """Absolute path of a working ``python<X.Y>``, pyenv installs first, then ``PATH``."""
    minor = ".".join(python.split(".")[:2])
    candidates: list[Path | str] = [*_pyenv_candidates(minor)]
    on_path = shutil.which(f"python{minor}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        if _reports_version(candidate, minor):
            return str(candidate)
    return None
