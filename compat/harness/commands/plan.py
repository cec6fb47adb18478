"""``compat plan``: the cells as a CI matrix, and which cells a shard of a run owns.

A CI job plans the matrix once (``plan``: GitHub Actions ``strategy.matrix`` JSON, or
``--ids``), then every runner runs one cell (``cell ID``) or one shard (``matrix --shard
I/N``); both name the same cells, because both select them here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compat.harness.cache.reuse import CachePolicy, plan_cell
from compat.harness.cache.store import Store
from compat.harness.config.matrix import Cell, Matrix
from compat.harness.errors import UsageError
from compat.harness.execute.cell_runner import rootdir_of, scope_of
from compat.harness.install.env_folder import Env
from compat.harness.results.merge import shard_of

__all__ = ["cache_forecast", "ci_matrix", "ci_shards", "plan_cells", "shard_cells"]


def shard_cells(cells: Sequence[Cell], shard: str) -> list[Cell]:
    """Shard ``I/N`` of the applicable ``cells`` (a not applicable cell needs no runner); a
    shard that holds no cell is a usage error, not a green run of nothing."""
    applicable = [c for c in cells if c.applicable]
    chosen = [applicable[k] for k in shard_of(applicable, shard)]
    if not chosen:
        raise UsageError(
            f"--shard {shard}: no cell falls in this shard ({len(applicable)} "
            f"applicable cell(s), so at most {len(applicable)} shard(s))"
        )
    return chosen


def plan_cells(matrix: Matrix, shard: str | None = None) -> list[Cell]:
    """The cells a CI plan lists: every applicable one, or only shard ``I/N`` of them."""
    if shard:
        return shard_cells(matrix.cells, shard)
    return [c for c in matrix.cells if c.applicable]


def ci_matrix(cells: Sequence[Cell]) -> dict[str, Any]:
    """GitHub Actions ``strategy.matrix``: one ``include`` entry (and nox session) per cell."""
    return {
        "include": [
            {
                "cell": c.id,
                "session": f"cell({c.id})",
                "python": c.python,
                "torch": c.torch,
                "stack": c.stack,
                "torchao": c.torchao or "",
                "channel": c.channel,
                "gating": c.gating,
                "name": c.id,
                "args": f"--cells {c.id}",
            }
            for c in cells
        ]
    }


def ci_shards(matrix: Matrix, shards: int) -> dict[str, Any]:
    """``strategy.matrix`` of at most ``shards`` jobs, each ``matrix --shard I/N``, with the
    CPythons its cells need (one per line, as ``actions/setup-python`` takes them).

    The plan caps the shards at the applicable cells (``shards: 4`` over 3 cells is 3
    jobs, ``--shard I/3``): every job it lists runs at least one cell, and a shard of no
    cell stays a usage error for ``matrix --shard``, where it is a mistake."""
    applicable = sum(c.applicable for c in matrix.cells)
    if not applicable:
        raise UsageError("--shards: the matrix has no applicable cell to run")
    shards = min(shards, applicable)
    include = []
    for i in range(1, shards + 1):
        cells = shard_cells(matrix.cells, f"{i}/{shards}")
        pythons = sorted({c.python for c in cells}, key=lambda v: tuple(map(int, v.split("."))))
        include.append(
            {
                "name": f"shard {i} of {shards} ({len(cells)} cells)",
                "args": f"--shard {i}/{shards}",
                "python": "\n".join(pythons),
                "cell": f"shard-{i}-of-{shards}",
            }
        )
    return {"include": include}


def cache_forecast(matrix: Matrix, cells: Sequence[Cell], envs: Path, store: Store) -> list[str]:
    """One line per cell: whether the verdict cache answers it whole (the cell's Python
    will not start), in part (the files that will run), or not at all, and why. Keyed on
    the env as it is now: a nightly or "latest" cell hits only if it resolves to that
    build again."""
    if not matrix.cache:
        return [f"{c.id}: runs (cache = false in the matrix)" for c in cells]
    policy = CachePolicy(store, run_id="plan")
    lines = []
    for cell in cells:
        env_dir = envs / cell.id
        if not Env.at(env_dir).stamp_path.is_file():
            lines.append(f"{cell.id}: runs (no env yet)")
            continue
        scope = scope_of(matrix, cell)
        plans = plan_cell(
            policy,
            matrix,
            cell,
            scope.files,
            env_dir,
            base=matrix.path.parent,
            rootdir=rootdir_of(matrix),
        )
        hits = sum(p.entry is not None for p in plans)
        nightly = matrix.channel(cell.channel).is_nightly
        moving = " (if the nightly resolves to the same build)" if nightly else ""
        if plans and hits == len(plans):
            lines.append(f"{cell.id}: cache hit, all {hits} file(s){moving}")
            continue
        runs = [f"{p.test.nodeid} ({p.why})" for p in plans if p.entry is None]
        lines.append(f"{cell.id}: {hits}/{len(plans)} file(s) cached; runs {', '.join(runs)}")
    return lines
