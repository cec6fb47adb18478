"""``nox -s prefetch``: every wheel every cell needs, in one folder, with its sha256.

Each applicable cell is resolved exactly as for a run (the same ``uv pip compile`` into
a ``pylock.toml``, uv's output in ``.locks/<cell>/compile.log``), the wheel built for the
cell's interpreter is downloaded once, and ``manifest.json`` records file, sha256 and
origin. ``matrix --offline`` then builds every env from that folder alone, on a machine or
CI cache without index access.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from compat.harness.config.matrix import Cell, Matrix
from compat.harness.files import atomic_write_text, read_json_object
from compat.harness.install.index import IndexUnreachable, Listings, download, sha256_of_url
from compat.harness.install.install_plan import plan_for
from compat.harness.install.interpreters import find_interpreter
from compat.harness.install.lockfile import read_packages, wheel_for
from compat.harness.install.pipconfig import PipIndexConfig
from compat.harness.install.resolve import ResolutionFailed
from compat.harness.install.uv_cli import InstallFailed, compile_lock
from compat.harness.install.wheel_tags import cell_tags
from compat.harness.redact import redact

__all__ = ["MANIFEST", "prefetch"]

MANIFEST = "manifest.json"
_WHEEL_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*\.whl")


def prefetch(matrix: Matrix, *, wheelhouse: Path, envs_root: Path,
             pip_config: PipIndexConfig) -> dict[str, Any]:
    """Download every applicable cell's wheels; returns (and writes) the manifest."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    manifest_path = wheelhouse / MANIFEST
    manifest = read_json_object(manifest_path)
    for key in ("files", "cells"):  # an earlier manifest's, or a fresh one where it is broken
        if not isinstance(manifest.get(key), dict):
            manifest[key] = {}
    files: dict[str, Any] = manifest["files"]
    cells: dict[str, Any] = manifest["cells"]
    listings = Listings()
    try:
        for cell in matrix.cells:
            if cell.applicable:
                cells[cell.id] = _prefetch_cell(cell, matrix, wheelhouse=wheelhouse,
                                                envs_root=envs_root, pip_config=pip_config,
                                                listings=listings, files=files)
                _save(manifest_path, manifest)  # each cell's wheels are kept as they come
    finally:  # a stop, or any failure, still leaves the manifest of what was fetched
        _save(manifest_path, manifest)
    return manifest


def _save(path: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _prefetch_cell(cell: Cell, matrix: Matrix, *, wheelhouse: Path, envs_root: Path,
                   pip_config: PipIndexConfig, listings: Listings,
                   files: dict[str, Any]) -> dict[str, Any]:
    """One cell: its lock, its wheels downloaded and checked; or the one-line error."""
    interpreter = find_interpreter(cell.python)
    if interpreter is None:
        return _failed(cell, "no-interpreter", f"no CPython {cell.python} on this machine")
    folder = wheelhouse / ".locks" / cell.id
    try:
        _, plan = plan_for(cell, matrix, envs_root=envs_root, pip_config=pip_config,
                           listings=listings)
        lock = compile_lock(plan.requirements, python=interpreter,
                            args=[*plan.index_args, *plan.cutoff_args], folder=folder,
                            log=folder / "compile.log", timeout=matrix.install_timeout)
    except (ResolutionFailed, InstallFailed) as exc:
        return _failed(cell, exc.kind, exc.message)
    tags = cell_tags(cell.python)
    names: list[str] = []
    for package in read_packages(lock):
        wheel = wheel_for(package, tags)
        if wheel is None:
            continue
        if not _WHEEL_FILE.fullmatch(wheel.file):  # a name from the index: one file here
            return _failed(cell, "bad-wheel-name", f"{wheel.file!r} is not a wheel file name")
        target = wheelhouse / wheel.file
        expected = wheel.sha256
        digest = sha256_of_url(target.as_uri()) if target.exists() else ""
        if not digest or (expected and digest != expected):
            try:
                digest = download(wheel.url, target)
            except IndexUnreachable as exc:
                return _failed(cell, "index-unreachable", str(exc))
            if expected and digest != expected:
                target.unlink(missing_ok=True)
                return _failed(cell, "hash-mismatch", f"{wheel.file}: sha256 {digest} != "
                               f"{expected} (the lock's); the file was removed")
        files[wheel.file] = {"sha256": digest, "url": redact(wheel.url),
                                "size": target.stat().st_size}
        names.append(wheel.file)
    print(f"prefetch: {cell.id}: {len(names)} wheels", flush=True)
    return {"requirements": list(plan.requirements), "wheels": names,
            "deps_cutoff": plan.deps_cutoff}


def _failed(cell: Cell, kind: str, message: str) -> dict[str, Any]:
    print(f"prefetch: {cell.id}: {kind}: {message}", flush=True)
    return {"error": f"{kind}: {message}"}

