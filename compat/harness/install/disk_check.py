"""Disk before and after a run: the refusal when the envs to build would not fit, and the
size of uv's shared cache for the report, measured beside the cells.

Both were in ``commands/matrix``; they belong with the disk code of this stage, and sit
in a module of their own so that ``disk``, ``disk_estimate`` and ``disk_budget`` keep
their own jobs (sizing trees, estimating growth, enforcing a budget).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Sequence

from compat.harness.config.matrix import Cell, Matrix
from compat.harness.config.sizes import format_size
from compat.harness.errors import InfraError
from compat.harness.files import atomic_write_text, read_json_object
from compat.harness.install.disk import footprint, tree_bytes
from compat.harness.install.disk_budget import RunDisk
from compat.harness.install.disk_estimate import (
    UNPACK_RATIO,
    DiskEstimate,
    estimate_growth,
    free_bytes,
    reusable,
    uv_cache_guess,
)
from compat.harness.install.install_plan import plan_for
from compat.harness.install.pipconfig import PipIndexConfig
from compat.harness.install.resolve import ResolutionFailed
from compat.harness.locations import envs_root, uv_cache_size_file

__all__ = ["check_disk", "measure_cache_in_background"]


def check_disk(
    matrix: Matrix, cells: Sequence[Cell], pip_config: PipIndexConfig, limit: int | None = None
) -> DiskEstimate | None:
    """Before anything is downloaded: what the envs to build will add to uv's cache, and a
    refusal (exit 3, one line) when that exceeds the free disk. Warm runs print nothing.

    Under a disk budget (``limit`` bytes for the cache and the envs together) the growth is
    at most what the budget leaves, or the largest single env, whichever is more.
    """
    root = envs_root()
    plans = []
    for cell in cells:
        if matrix.channel(cell.channel).is_nightly:
            continue  # resolving a nightly reads its index: the run does that once
        try:
            plans.append(plan_for(cell, matrix, envs_root=root, pip_config=pip_config)[1])
        except ResolutionFailed:
            continue  # the cell reports it itself, as install-failed
    if not any(not reusable(plan) for plan in plans):
        return None
    cache = uv_cache_guess()
    estimate = estimate_growth(plans, root, uv_cache=cache)
    free = free_bytes(cache)
    growth = estimate.cache_bytes
    unknown = f"; not sized: {len(estimate.unknown)} cell(s)" if estimate.unknown else ""
    kept = ""
    if limit is not None:
        held = footprint([root, cache])
        largest = int(max(estimate.cell_download.values(), default=0) * UNPACK_RATIO)
        growth = min(growth, max(limit - held, largest))
        kept = (
            f"; budget {format_size(limit)} for the cache and envs (they hold "
            f"{format_size(held)}): at most {format_size(growth)} more"
        )
    print(
        f"compat: disk: {len(estimate.cells)} env(s) to build: about "
        f"{format_size(estimate.download_bytes)} to download, "
        f"{format_size(estimate.cache_bytes)} of uv cache{kept}; {format_size(free)} free"
        f"{unknown}",
        flush=True,
    )
    if growth > free:
        raise InfraError(
            f"disk: the {len(estimate.cells)} env(s) to build need about "
            f"{format_size(growth)} of uv cache and "
            f"{cache} has {format_size(free)} free; free space "
            "(nox -s gc), set --disk-budget, or run fewer cells (--cells)"
        )
    return estimate


def measure_cache_in_background() -> Callable[..., RunDisk]:
    """The shared uv cache's size for the report. ``du`` of a cache of CUDA builds costs
    seconds of disk reads, beside a cell's tests on a small machine; a warm run builds
    nothing and so reuses the last figure (with its time), and a run that built envs
    measures again at its end. With no figure yet, it is measured while the cells run.

    Returns ``result(wait=True, again=False) -> RunDisk``: what was measured; ``again``
    (the run built envs) measures anew, ``wait=False`` (interrupted) takes what is known."""
    stored = uv_cache_size_file(envs_root())
    last = read_json_object(stored)
    found = RunDisk()
    if (
        isinstance(last.get("bytes"), int)
        and isinstance(last.get("measured"), str)
        and last.get("dir") == str(uv_cache_guess())
    ):
        found = RunDisk(str(last["dir"]), last["bytes"], last["measured"])

    def measure() -> None:
        with contextlib.suppress(Exception):
            folder = uv_cache_guess()
            if folder.is_dir():
                size, when = tree_bytes(folder), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                found.uv_cache_dir, found.uv_cache_bytes = str(folder), size
                found.uv_cache_measured = when
                atomic_write_text(
                    stored, json.dumps({"dir": str(folder), "bytes": size, "measured": when})
                )

    worker = threading.Thread(target=measure, daemon=True)
    if found.uv_cache_bytes is None:
        worker.start()

    def result(*, wait: bool = True, again: bool = False) -> RunDisk:
        if worker.is_alive():
            worker.join(timeout=60 if wait else 0)  # interrupted: what is known, at once
        if again and wait:
            measure()
        return dataclasses.replace(found)

    return result
