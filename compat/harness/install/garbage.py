"""``nox -s gc``: drop envs the matrix no longer has, and keep the uv cache under a budget.

Envs are removed by :meth:`.env_folder.Env.remove`'s rule (waiting for one in use, the
stamp first, the lock file kept). The cache is only trimmed with
uv's own ``uv cache prune`` (entries no env references any more); if that is not
enough the user is told what remains, since cleaning the rest would throw away wheels
the matrix still needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compat.harness import processes
from compat.harness.config import sizes
from compat.harness.config.matrix import Matrix
from compat.harness.install.disk import disk_use, tree_bytes, uv_cache_dir
from compat.harness.install.env_folder import Env
from compat.harness.install.uv_cli import uv_bin

__all__ = ["GcReport", "collect", "parse_size"]


def parse_size(text: str, option: str = "--cache-budget") -> int:
    """``config.sizes.parse_size_option``, under the name the commands import it by."""
    return sizes.parse_size_option(text, option)


@dataclass
class GcReport:
    removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    cache_before: int | None = None
    cache_after: int | None = None
    notes: list[str] = field(default_factory=list)


def collect(
    matrix: Matrix, envs_root: Path, *, cache_budget: int | None = None, dry_run: bool = False
) -> GcReport:
    report = GcReport()
    wanted = {c.id for c in matrix.cells}
    if envs_root.is_dir():
        for folder in sorted(p for p in envs_root.iterdir() if p.is_dir()):
            env = Env.at(folder)
            if env.name in wanted or not env.stamp_path.exists():
                continue
            own = disk_use(env.path).own
            if not dry_run and not env.remove(wait=True):
                report.notes.append(f"{env.name}: could not be removed whole")
                continue
            report.freed_bytes += own
            report.removed.append(env.name)
    if cache_budget is None:
        return report
    cache = uv_cache_dir(uv_bin())
    if cache is None or not cache.is_dir():
        report.notes.append("no uv cache found")
        return report
    report.cache_before = tree_bytes(cache)
    if report.cache_before > cache_budget and not dry_run:
        processes.run([uv_bin(), "cache", "prune"])
    report.cache_after = tree_bytes(cache) if not dry_run else report.cache_before
    if report.cache_after > cache_budget:
        report.notes.append(
            f"the uv cache is still {report.cache_after / 2**30:.1f} GiB, over the budget of "
            f"{cache_budget / 2**30:.1f} GiB: what is left is in use; `uv cache clean` "
            "empties it (the next run downloads again)"
        )
    return report
