"""``nox -s prefetch``: every wheel every cell needs, in one folder, with its sha256.

Each applicable cell is resolved exactly as for a run (the same ``uv pip compile`` into
a ``pylock.toml``, uv's output in ``.locks/<cell>/compile.log``), the wheel built for the
cell's interpreter is downloaded once, and ``manifest.json`` records file, sha256 and
origin. ``matrix --offline`` then builds every env from that folder alone, on a machine or
CI cache without index access.

With ``install-project``, the project is built (editable) in every cell, so the wheels of
its ``[build-system] requires`` (hatchling, setuptools...) are fetched too, resolved for
the cell's interpreter into ``.locks/<cell>/build``: offline, uv's isolated build env
finds its backend in the wheelhouse, or nowhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from packaging.pylock import Package

from compat.harness.config.matrix import Cell, Matrix
from compat.harness.errors import ErrorKind, InstallError
from compat.harness.files import atomic_write_text, read_json_object
from compat.harness.install.index import IndexUnreachable, Listings, download, sha256_of_url
from compat.harness.install.install_plan import plan_for
from compat.harness.install.interpreters import find_interpreter
from compat.harness.install.lockfile import read_packages, wheel_for
from compat.harness.install.pipconfig import PipIndexConfig
from compat.harness.install.project_build import dynamic_requires, static_requires
from compat.harness.install.uv_cli import compile_lock
from compat.harness.install.wheel_tags import cell_tags
from compat.harness.redact import redact

__all__ = [
    "MANIFEST",
    "FetchedWheel",
    "PrefetchedCell",
    "WheelhouseManifest",
    "prefetch",
]

MANIFEST = "manifest.json"
_WHEEL_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*\.whl")
T = TypeVar("T")


@dataclass
class FetchedWheel:
    """A wheel in the wheelhouse, checked against the lock's sha256."""

    sha256: str
    url: str  # where it came from, redacted
    size: int  # bytes

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FetchedWheel:
        return cls(str(data["sha256"]), str(data["url"]), int(data["size"]))


@dataclass
class PrefetchedCell:
    """One cell's share of the wheelhouse: what it resolved to and its wheels, or why not."""

    requirements: list[str] = field(default_factory=list)
    wheels: list[str] = field(default_factory=list)  # file names in the wheelhouse
    deps_cutoff: str | None = None
    error: str | None = None  # "<kind>: <message>": the cell's wheels are not all there

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        return {
            "requirements": self.requirements,
            "wheels": self.wheels,
            "deps_cutoff": self.deps_cutoff,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrefetchedCell:
        if "error" in data:
            return cls(error=str(data["error"]))
        return cls(
            [str(r) for r in data["requirements"]],
            [str(w) for w in data["wheels"]],
            data.get("deps_cutoff"),
        )


@dataclass
class WheelhouseManifest:
    """``manifest.json``: every wheel fetched, and each cell's share of them."""

    files: dict[str, FetchedWheel] = field(default_factory=dict)  # by file name
    cells: dict[str, PrefetchedCell] = field(default_factory=dict)  # by cell id

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": {name: asdict(wheel) for name, wheel in self.files.items()},
            "cells": {cell_id: cell.to_dict() for cell_id, cell in self.cells.items()},
        }

    @classmethod
    def read(cls, path: Path) -> WheelhouseManifest:
        """An earlier prefetch's manifest; what of it cannot be read is fetched again."""
        data = read_json_object(path)
        return cls(
            _entries(data.get("files"), FetchedWheel.from_dict),
            _entries(data.get("cells"), PrefetchedCell.from_dict),
        )

    def write(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def _entries(value: object, parse: Callable[[Mapping[str, Any]], T]) -> dict[str, T]:
    """The entries of a JSON object that ``parse`` accepts (the others are left out)."""
    found: dict[str, T] = {}
    for name, entry in value.items() if isinstance(value, dict) else ():
        try:
            found[name] = parse(entry)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return found


def prefetch(
    matrix: Matrix, *, wheelhouse: Path, envs_root: Path, pip_config: PipIndexConfig
) -> WheelhouseManifest:
    """Download every applicable cell's wheels; returns (and writes) the manifest."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    manifest_path = wheelhouse / MANIFEST
    manifest = WheelhouseManifest.read(manifest_path)
    listings = Listings()
    try:
        for cell in matrix.cells:
            if cell.applicable:
                manifest.cells[cell.id] = _prefetch_cell(
                    cell,
                    matrix,
                    wheelhouse=wheelhouse,
                    envs_root=envs_root,
                    pip_config=pip_config,
                    listings=listings,
                    files=manifest.files,
                )
                manifest.write(manifest_path)  # each cell's wheels are kept as they come
    finally:  # a stop, or any failure, still leaves the manifest of what was fetched
        manifest.write(manifest_path)
    return manifest


def _prefetch_cell(
    cell: Cell,
    matrix: Matrix,
    *,
    wheelhouse: Path,
    envs_root: Path,
    pip_config: PipIndexConfig,
    listings: Listings,
    files: dict[str, FetchedWheel],
) -> PrefetchedCell:
    """One cell: its lock, its wheels downloaded and checked; or the one-line error."""
    interpreter = find_interpreter(cell.python)
    if interpreter is None:
        return _failed(cell, ErrorKind.NO_INTERPRETER, f"no CPython {cell.python} on this machine")
    folder = wheelhouse / ".locks" / cell.id
    try:
        _, plan = plan_for(
            cell, matrix, envs_root=envs_root, pip_config=pip_config, listings=listings
        )
        lock = compile_lock(
            plan.requirements,
            python=interpreter,
            args=[*plan.index_args, *plan.cutoff_args],
            folder=folder,
            log=folder / "compile.log",
            timeout=matrix.install_timeout,
        )
    except InstallError as exc:
        return _failed(cell, exc.kind, exc.message)
    fetched = _fetch(cell, read_packages(lock), wheelhouse=wheelhouse, files=files)
    if isinstance(fetched, PrefetchedCell):
        return fetched
    names = fetched
    if matrix.project_root is not None:  # its backend, for an offline editable build
        build = _fetch_build_requires(
            cell,
            matrix.project_root,
            python=interpreter,
            args=[*plan.index_args, *plan.cutoff_args],
            folder=folder / "build",
            timeout=matrix.install_timeout,
            wheelhouse=wheelhouse,
            files=files,
        )
        if isinstance(build, PrefetchedCell):
            return build
        names += [n for n in build if n not in names]
    print(f"prefetch: {cell.id}: {len(names)} wheels", flush=True)
    return PrefetchedCell(list(plan.requirements), names, plan.deps_cutoff)


def _fetch_build_requires(
    cell: Cell,
    root: Path,
    *,
    python: str,
    args: list[str],
    folder: Path,
    timeout: float,
    wheelhouse: Path,
    files: dict[str, FetchedWheel],
) -> list[str] | PrefetchedCell:
    """The wheels an editable build of the project needs (:mod:`project_build`): its
    ``[build-system] requires`` first, then what its backend's hook adds, asked with the
    first ones installed from the wheelhouse. Each list is resolved for the cell's
    interpreter and fetched like the cell's own lock."""
    names: list[str] = []
    try:
        for step in ("static", "dynamic"):
            wanted = (
                static_requires(root)
                if step == "static"
                else dynamic_requires(
                    root,
                    python=python,
                    find_links=wheelhouse,
                    log=folder / "hooks.log",
                    timeout=timeout,
                )
            )
            if not wanted:
                continue
            lock = compile_lock(
                wanted,
                python=python,
                args=args,
                folder=folder / step,
                log=folder / "compile.log",
                timeout=timeout,
            )
            fetched = _fetch(cell, read_packages(lock), wheelhouse=wheelhouse, files=files)
            if isinstance(fetched, PrefetchedCell):
                return fetched
            names += fetched
    except InstallError as exc:
        return _failed(cell, exc.kind, f"the project's build requirements: {exc.message}")
    return names


def _fetch(
    cell: Cell,
    packages: Iterable[Package],
    *,
    wheelhouse: Path,
    files: dict[str, FetchedWheel],
) -> list[str] | PrefetchedCell:
    """Download the wheel of each locked package for the cell's interpreter (one already
    there with the lock's sha256 is kept): their file names, or the cell's failure."""
    tags = cell_tags(cell.python)
    names: list[str] = []
    for package in packages:
        wheel = wheel_for(package, tags)
        if wheel is None:
            continue
        if not _WHEEL_FILE.fullmatch(wheel.file):  # a name from the index: one file here
            return _failed(
                cell, ErrorKind.BAD_WHEEL_NAME, f"{wheel.file!r} is not a wheel file name"
            )
        target = wheelhouse / wheel.file
        expected = wheel.sha256
        digest = sha256_of_url(target.as_uri()) if target.exists() else ""
        if not digest or (expected and digest != expected):
            try:
                digest = download(wheel.url, target)
            except IndexUnreachable as exc:
                return _failed(cell, ErrorKind.INDEX_UNREACHABLE, str(exc))
            if expected and digest != expected:
                target.unlink(missing_ok=True)
                return _failed(
                    cell,
                    ErrorKind.HASH_MISMATCH,
                    f"{wheel.file}: sha256 {digest} != "
                    f"{expected} (the lock's); the file was removed",
                )
        files[wheel.file] = FetchedWheel(digest, redact(wheel.url), target.stat().st_size)
        names.append(wheel.file)
    return names


def _failed(cell: Cell, kind: ErrorKind, message: str) -> PrefetchedCell:
    print(f"prefetch: {cell.id}: {kind}: {message}", flush=True)
    return PrefetchedCell(error=f"{kind}: {message}")
