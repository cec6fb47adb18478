"""Disk use of envs and of the shared uv cache, counting hardlinked files honestly.

uv links installed files from its cache, so an env's apparent size (several GB for a
CUDA torch) is mostly shared. ``own`` counts only blocks no other path links to: what
deleting the env would give back.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from compat.harness import processes

__all__ = ["DiskUse", "disk_use", "tree_bytes", "uv_cache_dir"]


@dataclass(frozen=True)
class DiskUse:
    apparent: int  # bytes, every file counted
    own: int  # bytes in files with a single link

    def to_dict(self) -> dict[str, int]:
        return {"apparent_bytes": self.apparent, "own_bytes": self.own}


def disk_use(root: Path) -> DiskUse:
    apparent = own = 0
    seen: set[tuple[int, int]] = set()
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                stat = (Path(folder) / name).lstat()
            except OSError:
                continue
            key = (stat.st_dev, stat.st_ino)
            if key in seen:
                continue
            seen.add(key)
            size = stat.st_blocks * 512
            apparent += size
            if stat.st_nlink == 1:
                own += size
    return DiskUse(apparent, own)


def tree_bytes(root: Path) -> int:
    """Apparent size of a tree, hardlinks once; ``du`` when present (several times faster)."""
    proc = processes.run(["du", "-s", "--bytes", str(root)], capture=True
                         ) if shutil.which("du") else None
    if proc is not None and proc.returncode == 0 and proc.stdout.split():
        return int(proc.stdout.split()[0])
    return disk_use(root).apparent


def uv_cache_dir(uv: str) -> Path | None:
    proc = processes.run([uv, "cache", "dir"], capture=True, timeout=120)
    return Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None
