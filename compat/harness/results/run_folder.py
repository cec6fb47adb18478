"""Run folders: ``reports/<run-id>/`` with a manifest, one folder per cell, ``latest`` link.

The manifest (``run.json``) is written before any cell starts, so a report can be
rebuilt from whatever cell folders exist, and a cell that never wrote its result
shows up as *not run* instead of vanishing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from compat.harness.config.applicability import checked_rule
from compat.harness.config.matrix import Cell, Matrix
from compat.harness.errors import ResultFileError
from compat.harness.files import atomic_symlink, atomic_write_text, read_text_file, redact_file
from compat.harness.locations import envs_root
from compat.harness.results.model import CellResult, CellStatus, is_safe_id
from compat.harness.source_tree import tree_state

__all__ = [
    "LOCK",
    "MANIFEST",
    "LoadedRun",
    "RunManifest",
    "cell_dir",
    "copy_cell_folder",
    "holds_run",
    "load_run",
    "matrix_sha256",
    "new_run_dir",
    "read_cell_result",
    "result_path",
    "result_paths",
    "update_latest",
]

MANIFEST = "run.json"
LOCK = ".compat.lock"  # held by a command while it writes the run's reports
CELLS = "cells"  # one folder per cell in it, named by the cell's id
RESULT = "result.json"  # a cell's result, in its folder


def cell_dir(run_dir: Path, cell_id: str) -> Path:
    """``<run>/cells/<id>``: everything one cell of the run wrote."""
    return run_dir / CELLS / cell_id


def result_path(run_dir: Path, cell_id: str) -> Path:
    """``<run>/cells/<id>/result.json``: the cell's result."""
    return cell_dir(run_dir, cell_id) / RESULT


def result_paths(run_dir: Path) -> list[Path]:
    """Every ``cells/*/result.json`` of a run, in order of cell id."""
    cells_dir = run_dir / CELLS
    return sorted(cells_dir.glob(f"*/{RESULT}")) if cells_dir.is_dir() else []


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` holds a run already (its manifest, or its cell folders)."""
    return (folder / MANIFEST).exists() or (folder / CELLS).is_dir()


def matrix_sha256(matrix: Matrix) -> str:
    """The digest of the matrix file a run records (``run.json``'s ``matrix_sha256``)."""
    return hashlib.sha256(matrix.path.read_bytes()).hexdigest()


@dataclass
class RunManifest:
    run_id: str
    matrix_path: str
    matrix_name: str
    matrix_sha256: str
    # Cells by the id the run gave them (an older harness's ids stay as they were written).
    cells: dict[str, Cell]  # the cells this run was asked to run
    all_cells: dict[str, Cell] = field(default_factory=dict)  # the whole matrix
    shard: str | None = None
    merged_from: list[str] | None = None  # a merge of CI shards: the folders it read
    # The git commit (and dirty flag) of the tree holding the tests, when it is one.
    source: dict[str, Any] | None = None

    @classmethod
    def for_matrix(
        cls, run_id: str, matrix: Matrix, cells: list[Cell], shard: str | None = None
    ) -> RunManifest:
        digest = matrix_sha256(matrix)
        return cls(
            run_id,
            str(matrix.path),
            matrix.name,
            digest,
            {c.id: c for c in cells},
            {c.id: c for c in matrix.cells},
            shard,
            source=tree_state(matrix.path.parent),
        )

    def to_dict(self) -> dict[str, Any]:
        """``run.json``: each list of cells as objects with their ``id``."""
        return {
            "run_id": self.run_id,
            "matrix_path": self.matrix_path,
            "matrix_name": self.matrix_name,
            "matrix_sha256": self.matrix_sha256,
            "cells": _cell_list(self.cells),
            "all_cells": _cell_list(self.all_cells),
            "shard": self.shard,
            "merged_from": self.merged_from,
            "source": self.source,
        }

    def write(self, run_dir: Path) -> None:
        atomic_write_text(run_dir / MANIFEST, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, run_dir: Path) -> RunManifest | None:
        """The manifest of ``run_dir`` (None when there is none); one that is not a manifest
        (a wrong type anywhere, an unsafe or repeated cell id) is a :class:`ResultFileError`.
        Keys this harness does not know are ignored (a newer harness wrote them)."""
        path = run_dir / MANIFEST
        if not path.exists():
            return None
        try:
            data = json.loads(read_text_file(path))
            return cls(**_checked_manifest(data))
        except RecursionError:
            raise ResultFileError(path, "not a run manifest (nested too deeply)") from None
        except (OSError, ValueError, TypeError) as exc:
            raise ResultFileError(path, f"not a run manifest ({exc})") from None

    def matrix_info(self) -> dict[str, Any]:
        return {"path": self.matrix_path, "name": self.matrix_name, "sha256": self.matrix_sha256}


def _without_null(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data`` without ``key`` when that is null (its default, then)."""
    return {k: v for k, v in data.items() if not (k == key and v is None)}


def _cell_list(cells: dict[str, Cell]) -> list[dict[str, Any]]:
    return [{"id": cell_id, **cell.to_dict()} for cell_id, cell in cells.items()]


def _checked_manifest(data: object) -> dict[str, Any]:
    """The manifest's fields, their types checked, each list of cells made id -> Cell."""
    if not isinstance(data, dict):
        raise TypeError(f"expected an object, got {type(data).__name__}")
    known = {f.name for f in fields(RunManifest)}
    data = {k: v for k, v in data.items() if k in known}
    for key in ("run_id", "matrix_path", "matrix_name", "matrix_sha256"):
        if not isinstance(data.get(key), str):
            raise TypeError(f"{key}: expected a string")
    for key in ("shard",):
        if not isinstance(data.get(key), (str, type(None))):
            raise TypeError(f"{key}: expected a string or null")
    merged = data.get("merged_from")
    if merged is not None and not (
        isinstance(merged, list) and all(isinstance(m, str) for m in merged)
    ):
        raise TypeError("merged_from: expected a list of strings")
    source = data.get("source")
    if source is not None and not (
        isinstance(source, dict)
        and isinstance(source.get("commit"), str)
        and isinstance(source.get("dirty"), (bool, type(None)))
    ):
        raise TypeError("source: expected {commit: string, dirty: true/false}")
    if "cells" not in data:
        raise TypeError("cells: missing")
    for key in ("cells", "all_cells"):
        cells = data.get(key, [])
        if not isinstance(cells, list):
            raise TypeError(f"{key}: expected a list")
        seen: set[str] = set()
        for cell in cells:
            if not isinstance(cell, dict) or not is_safe_id(cell.get("id")):
                raise ValueError(f"{key}: an entry without a valid cell id")
            if cell["id"] in seen:
                raise ValueError(f"{key}: cell {cell['id']!r} twice")
            seen.add(cell["id"])
            for name in ("python", "torch", "stack"):
                if not isinstance(cell.get(name), str):
                    raise TypeError(f"{key}: cell {cell['id']!r}: {name}: expected a string")
            for name in ("torchao", "not_applicable", "channel", "url"):
                if not isinstance(cell.get(name), (str, type(None))):
                    raise TypeError(f"{key}: cell {cell['id']!r}: {name}: expected a string")
            for name in ("gating", "declared"):
                if not isinstance(cell.get(name, False), bool):
                    raise TypeError(f"{key}: cell {cell['id']!r}: {name}: expected true or false")
        data[key] = {cell["id"]: Cell.from_dict(_without_null(cell, "channel")) for cell in cells}
    return data


def new_run_dir(reports: Path, matrix_name: str) -> tuple[str, Path]:
    """``reports/<stamp>-<name>``; the name is a safe slug (the matrix loader makes it one),
    and the folder is checked to be directly inside ``reports`` all the same."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{matrix_name}"
    for n in range(1000):
        run_id = base if n == 0 else f"{base}-{n}"
        run_dir = reports / run_id
        if run_dir.resolve().parent != reports.resolve() or not is_safe_id(run_id):
            raise ValueError(f"run id {run_id!r} is not a folder name inside {reports}")
        try:
            run_dir.mkdir(parents=True)
        except FileExistsError:
            continue
        return run_id, run_dir
    raise RuntimeError(f"cannot create a run folder under {reports}")


def update_latest(reports: Path, run_dir: Path) -> None:
    """Point ``reports/latest`` at ``run_dir`` atomically (rename over the old link)."""
    atomic_symlink(
        reports / "latest", run_dir.name if run_dir.parent == reports else run_dir.resolve()
    )


@dataclass
class LoadedRun:
    manifest: RunManifest | None
    results: list[CellResult]
    problems: list[str]


def load_run(run_dir: Path) -> LoadedRun:
    """Read every cell folder; a broken file is named in ``problems``, its cell kept as not run."""
    problems: list[str] = []
    try:
        manifest = RunManifest.read(run_dir)
    except ResultFileError as exc:
        manifest, problems = None, [str(exc)]
    found: dict[str, CellResult] = {}
    for path in result_paths(run_dir):
        try:
            result = read_cell_result(path)
        except ResultFileError as exc:
            problems.append(str(exc))
            continue
        found[result.cell_id] = result
    results: list[CellResult] = []
    if manifest is not None:
        for cell_id, cell in manifest.cells.items():
            if cell_id in found:
                results.append(found.pop(cell_id))
            elif cell.not_applicable:
                results.append(_not_applicable(cell_id, cell))
            else:
                results.append(
                    CellResult(
                        cell_id,
                        cell,
                        CellStatus.NOT_RUN,
                        reason="no result for this cell",
                        gating=cell.gating,
                    )
                )
    results += found.values()
    return LoadedRun(manifest, results, problems)


def read_cell_result(path: Path) -> CellResult:
    """``cells/<id>/result.json``, whose cell id must be its folder's name: a file cannot
    name another folder (``../..``) for the reports to write into."""
    if path.is_symlink() or path.parent.is_symlink() or path.parent.parent.is_symlink():
        raise ResultFileError(path, "a link, not a cell's own file: not read")
    result = CellResult.read(path)
    if result.cell_id != path.parent.name:
        raise ResultFileError(
            path,
            f"not a cell result (cell_id {result.cell_id!r} in the folder of {path.parent.name!r})",
        )
    return result


def copy_cell_folder(source: Path, target: Path) -> None:
    """A cell's folder copied into another run (a merge, a resume): links are not followed
    or copied, and every file is redacted as it lands, like everything else written."""

    def links(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if (Path(folder) / n).is_symlink()]

    shutil.copytree(source, target, ignore=links, dirs_exist_ok=True)
    for path in target.rglob("*"):
        if path.is_file() and not path.is_symlink():
            redact_file(path)


def _not_applicable(cell_id: str, cell: Cell) -> CellResult:
    """A cell a shard never ran because the rules rule it out: with the same evidence."""
    found = checked_rule(
        python=cell.python,
        torch=cell.torch,
        stack=cell.stack,
        torchao=cell.torchao,
        declared=cell.declared,
        envs_root=envs_root(),
    )
    return CellResult(
        cell_id,
        cell,
        CellStatus.NOT_APPLICABLE,
        reason=cell.not_applicable,
        gating=cell.gating,
        applicability=found,
    )
