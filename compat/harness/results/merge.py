"""Fan-in: fold the cell folders of many runs (CI shards, one job per cell) into one run.

The merged folder is an ordinary run folder, reported by the same code as a local run.
Runs of different matrix files are refused; a cell that no shard delivered is reported
as not run, so a lost runner shows up in the grid instead of vanishing from it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from compat.harness.errors import ResultFileError, UsageError
from compat.harness.results.model import CellResult, CellStatus
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

__all__ = ["merge_runs", "shard_of"]


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
    for run, _ in manifests:
        for path in result_paths(run):
            try:
                result = read_cell_result(path)
            except ResultFileError as exc:
                problems.append(str(exc))
                corrupt.add(path.parent.name)
                continue
            kept = chosen.get(result.cell_id)
            if kept is None or _rank(result) > _rank(kept[0]):
                chosen[result.cell_id] = (result, path.parent)
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
    for result in loaded.results:
        if result.status is CellStatus.NOT_RUN and result.cell_id not in chosen:
            result.reason = (
                "its result file is corrupt"
                if result.cell_id in corrupt
                else "no shard delivered this cell"
            )
    loaded.problems[:0] = problems
    return loaded
