"""Fan-in: fold the cell folders of many runs (CI shards, one job per cell) into one run.

The merged folder is an ordinary run folder, reported by the same code as a local run.
Runs of different matrix files are refused; a cell that no shard delivered is reported
as not run, so a lost runner shows up in the grid instead of vanishing from it. A cell
found in two runs keeps its finished copy over a not-run one, else its newer copy by the
cell's own time stamps (never by the order the folders were named in), one line saying so.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from compat.harness.config.matrix import Cell
from compat.harness.errors import ResultFileError, UsageError
from compat.harness.results.model import CellResult, CellStatus, is_safe_id
from compat.harness.results.run_folder import (
    MANIFEST,
    LoadedRun,
    RunManifest,
    cell_dir,
    copy_cell_folder,
    load_run,
    read_cell_result,
    result_paths,
)

__all__ = ["account_for_cell_folders", "cell_from_id", "merge_runs", "shard_of"]


def shard_of(items: Sequence[object], spec: str) -> list[int]:
    """Indices of shard ``I/N`` (1-based), dealt round-robin so that shards stay even."""
    try:
        index, total = (int(part) for part in spec.split("/"))
    except ValueError:
        raise UsageError(f"--shard {spec!r}: expected I/N, e.g. 2/4") from None
    if not 1 <= index <= total:
        raise UsageError(f"--shard {spec!r}: I must be between 1 and N")
    return [k for k in range(len(items)) if k % total == index - 1]


def _run_dirs(sources: Sequence[Path], out: Path) -> list[Path]:
    """Run folders under ``sources``; the merge's own output (an earlier merge) is not one."""
    found: list[Path] = []
    for source in sources:
        if not source.is_dir():
            raise UsageError(f"{source}: no such folder to merge")
        found += sorted(
            p.parent for p in source.rglob(MANIFEST) if p.parent.resolve() != out.resolve()
        )
    if not found:
        raise UsageError(f"no run folders (with {MANIFEST}) under {', '.join(map(str, sources))}")
    return found


def _rank(result: CellResult) -> int:
    """Which of two copies of a cell to keep: a finished one over an unfinished one."""
    return 0 if result.status is CellStatus.NOT_RUN else 1


EVENTS_READ = 1 << 16  # the end of a cell's events.jsonl read for its last time stamp


def cell_time(folder: Path) -> float | None:
    """When a cell's copy finished, by its own record: the last time stamp (``t``) of its
    events, else its result file's modification time; None when neither can be read."""
    events = folder / "events.jsonl"
    with contextlib.suppress(OSError, ValueError):
        if events.is_file() and not events.is_symlink():
            with open(events, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - EVENTS_READ))
                tail = handle.read(EVENTS_READ)
            for line in reversed(tail.splitlines()):
                with contextlib.suppress(ValueError, RecursionError):
                    stamp = json.loads(line).get("t")
                    if isinstance(stamp, (int, float)) and math.isfinite(stamp):
                        return float(stamp)
    with contextlib.suppress(OSError):
        return (folder / "result.json").stat().st_mtime
    return None


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "no time"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def _keep(
    cell_id: str, kept: tuple[CellResult, Path], other: tuple[CellResult, Path]
) -> tuple[tuple[CellResult, Path], str]:
    """Of two copies of one cell: a finished one over a not-run one, else the newer by its
    own time stamps (never the order the folders were named in); the line that says so."""
    (old, old_dir), (new, new_dir) = kept, other
    if _rank(old) != _rank(new):
        chosen, dropped = (other, kept) if _rank(new) > _rank(old) else (kept, other)
        why = "finished, the other not run"
    else:
        old_t, new_t = cell_time(old_dir), cell_time(new_dir)
        if old_t == new_t:  # equal, or neither known
            # no way to tell: the one whose folder sorts first, whatever order it came in
            chosen, dropped = (kept, other) if str(old_dir) <= str(new_dir) else (other, kept)
            why = f"both {_when(old_t)}: no newer one, kept by folder name"
        else:
            newer = new_t is not None and (old_t is None or new_t > old_t)
            chosen, dropped = (other, kept) if newer else (kept, other)
            first, second = (new_t, old_t) if newer else (old_t, new_t)
            why = f"newer: {_when(first)} over {_when(second)}"
    line = (
        f"{dropped[1]}: cell {cell_id} is in two runs; kept {chosen[1]} "
        f"({chosen[0].status.value}; {why}) over this copy ({dropped[0].status.value})"
    )
    return chosen, line


def merge_runs(sources: Sequence[Path], out: Path) -> LoadedRun:
    runs = _run_dirs(sources, out)
    manifests: list[tuple[Path, RunManifest]] = []
    problems: list[str] = []
    for run in runs:
        try:
            manifest = RunManifest.read(run)
        except ResultFileError as exc:
            problems.append(str(exc))
            continue
        if manifest is not None:
            manifests.append((run, manifest))
    if not manifests:
        raise UsageError(f"no readable run manifest among: {'; '.join(problems)}")
    first_dir, first = manifests[0]
    for run, manifest in manifests[1:]:
        if manifest.matrix_sha256 != first.matrix_sha256:
            raise UsageError(
                f"{run}: ran matrix {manifest.matrix_name!r} ({manifest.matrix_sha256[:12]}), "
                f"but {first_dir} ran {first.matrix_name!r} ({first.matrix_sha256[:12]}); "
                "refusing to merge runs of different matrix files"
            )
    all_cells = next((m.all_cells for _, m in manifests if m.all_cells), first.cells)
    out.mkdir(parents=True, exist_ok=True)
    chosen: dict[str, tuple[CellResult, Path]] = {}
    corrupt: set[str] = set()
    duplicates: dict[str, str] = {}  # one line per cell found twice: which copy was kept
    for run, _ in manifests:
        for path in result_paths(run):
            try:
                result = read_cell_result(path)
            except ResultFileError as exc:
                problems.append(str(exc))
                corrupt.add(path.parent.name)
                continue
            kept = chosen.get(result.cell_id)
            if kept is None:
                chosen[result.cell_id] = (result, path.parent)
            else:
                chosen[result.cell_id], line = _keep(result.cell_id, kept, (result, path.parent))
                duplicates[result.cell_id] = line
    for cell_id, (_, folder) in chosen.items():
        target = cell_dir(out, cell_id)
        if folder.resolve() != target.resolve():
            shutil.rmtree(target, ignore_errors=True)
            copy_cell_folder(folder, target)
    RunManifest(
        out.name,
        first.matrix_path,
        first.matrix_name,
        first.matrix_sha256,
        all_cells,
        all_cells,
        merged_from=[str(run.resolve()) for run, _ in manifests],
    ).write(out)
    loaded = load_run(out)
    have = {r.cell_id for r in loaded.results}
    for cell_id in sorted(corrupt - have - set(chosen)):
        loaded.results.append(
            CellResult(
                cell_id,
                cell_from_id(cell_id),
                CellStatus.NOT_RUN,
                reason="its result file is corrupt",
                gating=True,
            )
        )
    for result in loaded.results:
        if result.status is CellStatus.NOT_RUN and result.cell_id not in chosen:
            result.reason = (
                "its result file is corrupt"
                if result.cell_id in corrupt
                else "no shard delivered this cell"
            )
    loaded.problems[:0] = [*problems, *duplicates.values()]
    return loaded


# A cell id as Cell.id makes it: [channel-]torch<version>-(torch.ao|torchao<version>)-py<python>
_CELL_ID = re.compile(
    r"^(?:(?P<channel>[^-]+)-)?torch(?P<torch>[^-]+)-(?:torchao(?P<torchao>[^-]+)|torch\.ao)"
    r"-py(?P<python>[^-]+)$"
)


def cell_from_id(cell_id: str) -> Cell:
    """The cell a folder's name describes, for a cell whose result and manifest entry are
    both lost; an id of another shape keeps only its name (as its torch)."""
    found = _CELL_ID.match(cell_id)
    if found is None:
        return Cell(python="?", torch=cell_id, stack="torch.ao")
    torchao = found.group("torchao")
    return Cell(
        python=found.group("python"),
        torch=found.group("torch"),
        stack="torchao" if torchao else "torch.ao",
        torchao=torchao,
        channel=found.group("channel") or Cell.channel,
    )


def account_for_cell_folders(loaded: LoadedRun, run_dir: Path) -> LoadedRun:
    """Every cell folder of ``run_dir`` is in the report: when its run.json is damaged (or
    gone), one without a readable result is a gating cell *not run* (infrastructure: exit
    3), never a cell that vanishes from a green report. With a readable manifest, its
    cells are accounted for already, and a folder it does not list is not the run's."""
    cells_dir = run_dir / "cells"
    have = {r.cell_id for r in loaded.results}
    if loaded.manifest is not None or cells_dir.is_symlink() or not cells_dir.is_dir():
        return loaded  # a readable manifest accounts for the run's cells (others: not ours)
    for folder in sorted(cells_dir.iterdir()):
        name = folder.name
        if name in have or not is_safe_id(name) or folder.is_symlink() or not folder.is_dir():
            continue
        result = folder / "result.json"
        loaded.results.append(
            CellResult(
                name,
                cell_from_id(name),
                CellStatus.NOT_RUN,
                reason=(
                    f"its result file {result} is unreadable or damaged"
                    if result.exists() or result.is_symlink()
                    else f"its folder {folder} holds no result"
                ),
                gating=True,
            )
        )
    return loaded
