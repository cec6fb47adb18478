"""Disk use of envs and of the shared uv cache, counting hardlinked files honestly.

uv links installed files from its cache, so an env's apparent size (several GB for a
CUDA torch) is mostly shared. ``own`` counts only blocks no other path links to: what
deleting the env would give back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from compat.harness import processes

__all__ = ["DiskUse", "disk_use", "footprint", "tree_bytes", "uv_cache_dir"]


@dataclass(frozen=True)
class DiskUse:
    apparent: int  # bytes, every file counted
    own: int  # bytes in files with a single link

    def to_dict(self) -> dict[str, int]:
        return {"apparent_bytes": self.apparent, "own_bytes": self.own}


def disk_use(*roots: Path) -> DiskUse:
    """Blocks of the files under ``roots``, an inode once across all of them."""
    apparent = own = 0
    seen: set[tuple[int, int]] = set()
    for folder, _, files in (step for root in roots for step in os.walk(root)):
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


def _du_total(flags: list[str], roots: list[Path]) -> int | None:
    """``du -s -c FLAGS ROOTS``'s grand total. du exits 1 when a file vanishes under it
    (uv replaces files while it installs) and still prints the total, so the total is
    read whatever the exit code; None without du or without a total."""
    if not shutil.which("du"):
        return None
    with contextlib.suppress(OSError, ValueError, IndexError):
        proc = processes.run(
            ["du", "-s", "-c", *flags, *map(str, roots)], capture=True, timeout=600
        )
        last = proc.stdout.strip().splitlines()[-1].split()
        if len(last) == 2 and last[1] == "total":
            return int(last[0])
    return None


def tree_bytes(root: Path) -> int:
    """Apparent size of a tree, hardlinks once; ``du`` when present (several times faster)."""
    total = _du_total(["--bytes"], [root])
    return total if total is not None else disk_use(root).apparent


def footprint(paths: Iterable[Path]) -> int:
    """Bytes on disk under ``paths`` together, a file hardlinked into several counted once
    (never a per-tree sum, which counts every file an env links from the cache twice)."""
    roots = [p for p in paths if p.exists()]
    if not roots:
        return 0
    total = _du_total(["-B1"], roots)
    return total if total is not None else disk_use(*roots).apparent


def uv_cache_dir(uv: str) -> Path | None:
    proc = processes.run([uv, "cache", "dir"], capture=True, timeout=120)
    return Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None
