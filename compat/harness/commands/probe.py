"""``nox -s probe``: which shape each API has in every cell, without running the tests.

Each cell's env is built or reused exactly as for a run; inside it
``python -m compat.shims.probe`` prints one JSON object of capabilities.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from compat.harness import processes
from compat.harness.config.matrix import Cell, Matrix
from compat.harness.execute.cell_runner import cell_environment
from compat.harness.install.envs import ensure_env, env_lock
from compat.harness.install.index import Listings
from compat.harness.install.install_plan import plan_for
from compat.harness.install.pipconfig import PipIndexConfig
from compat.harness.install.resolve import ResolutionFailed
from compat.harness.install.uv_cli import InstallFailed
from compat.harness.reports.bands import render_banded
from compat.harness.reports.findings import not_applicable_lines

__all__ = ["probe_cell", "probe_cells", "render_probe"]

PROBE_TIMEOUT = 600.0
WIDTH = 28


def probe_cell(
    cell: Cell,
    matrix: Matrix,
    *,
    envs_root: Path,
    pip_config: PipIndexConfig,
    log_dir: Path,
    listings: Listings | None = None,
    wheelhouse: Path | None = None,
) -> dict[str, str]:
    """Build or reuse the cell's env (from ``wheelhouse`` alone, with ``--offline``), then
    ask it what shape each API has."""
    try:
        _, plan = plan_for(
            cell,
            matrix,
            envs_root=envs_root,
            pip_config=pip_config,
            listings=listings,
            wheelhouse=wheelhouse,
        )
    except ResolutionFailed as exc:
        return {"status": f"install-failed: {exc.kind}: {exc.message}"}
    try:
        with env_lock(plan.env_dir, exclusive=True):
            record = ensure_env(
                plan, log=log_dir / f"{cell.id}.install.log", timeout=matrix.install_timeout
            )
    except InstallFailed as exc:
        return {"status": f"install-failed: {exc.kind}: {exc.message}"}
    with env_lock(plan.env_dir, exclusive=False):
        proc = processes.run(
            [str(record.python), "-m", "compat.shims.probe"],
            capture=True,
            timeout=PROBE_TIMEOUT,
            env=cell_environment(cell, env_dir=plan.env_dir),
        )
    if proc.timed_out:
        return {"status": f"probe timed out after {PROBE_TIMEOUT:.0f}s"}
    start = proc.stdout.find("{")  # anything torch printed before the object is skipped
    try:
        found, _ = json.JSONDecoder().raw_decode(proc.stdout[start:]) if start >= 0 else ({}, 0)
        if not found:
            raise ValueError("no JSON object")
    except ValueError:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": f"probe failed (exit {proc.returncode}): {tail}"}
    return {"status": "ok", **{str(k): str(v) for k, v in found.items()}}


def probe_cells(
    cells: Sequence[Cell],
    matrix: Matrix,
    *,
    envs_root: Path,
    pip_config: PipIndexConfig,
    log_dir: Path,
    jobs: int,
    wheelhouse: Path | None = None,
) -> list[dict[str, str]]:
    listings = Listings()

    def one(cell: Cell) -> dict[str, str]:
        if not cell.applicable:
            return {"status": f"not applicable: {cell.not_applicable}"}
        return probe_cell(
            cell,
            matrix,
            envs_root=envs_root,
            pip_config=pip_config,
            log_dir=log_dir,
            listings=listings,
            wheelhouse=wheelhouse,
        )

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, cells))


def render_probe(
    cells: Sequence[Cell], found: Sequence[dict[str, str]], *, width: int | None = None
) -> str:
    """The capability grid; cells that cannot exist are listed under it, not given columns."""
    probed = [(c, caps) for c, caps in zip(cells, found, strict=True) if c.applicable]
    keys: list[str] = []
    for _, caps in probed:
        keys += [k for k in caps if k not in keys]
    # Wrapped here, not with tabulate's maxcolwidths: that path turns the string "False"
    # into True (it re-parses wrapped cells as booleans; tabulate 0.9/0.10).
    rows = [[key, *(textwrap.fill(caps.get(key, ""), WIDTH) for _, caps in probed)] for key in keys]
    headers = ["capability", *(c.id.replace("-", "\n", 2) for c, _ in probed)]
    text = render_banded(headers, rows, width=width, align="left") if probed else ""
    skipped = [(c.id, c.not_applicable or "") for c in cells if not c.applicable]
    if skipped:
        text += "\n\nNot applicable (not probed):\n" + "\n".join(not_applicable_lines(skipped))
    return text.lstrip("\n")
