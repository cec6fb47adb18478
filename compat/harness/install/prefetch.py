"""``nox -s prefetch``: every wheel every cell needs, in one folder, with its sha256.

Each applicable cell is resolved exactly as for a run (the same ``uv pip compile`` into
a ``pylock.toml``, uv's output in ``.locks/<cell>/compile.log``), the wheel built for the
cell's interpreter is downloaded once, and ``manifest.json`` records file, sha256 and
origin. ``matrix --offline`` then builds every env from that folder alone, on a machine or
CI cache without index access.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compat.harness.config.matrix import Matrix
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


def prefetch(matrix: Matrix, *, wheelhouse: Path, envs_root: Path,
             pip_config: PipIndexConfig) -> dict[str, Any]:
    """Download every applicable cell's wheels; returns (and writes) the manifest."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    manifest_path = wheelhouse / MANIFEST
    manifest = read_json_object(manifest_path)
    files: dict[str, Any] = manifest.setdefault("files", {})
    cells: dict[str, Any] = manifest.setdefault("cells", {})
    listings = Listings()
    for cell in matrix.cells:
        if not cell.applicable:
            continue
        interpreter = find_interpreter(cell.python)
        if interpreter is None:
            cells[cell.id] = {"error": f"no CPython {cell.python} on this machine"}
            continue
        folder = wheelhouse / ".locks" / cell.id
        try:
            _, plan = plan_for(cell, matrix, envs_root=envs_root, pip_config=pip_config,
                               listings=listings)
            lock = compile_lock(plan.requirements, python=interpreter,
                                args=[*plan.index_args, *plan.cutoff_args], folder=folder,
                                log=folder / "compile.log", timeout=matrix.install_timeout)
        except (ResolutionFailed, InstallFailed) as exc:
            cells[cell.id] = {"error": f"{exc.kind}: {exc.message}"}
            print(f"prefetch: {cell.id}: {exc.kind}: {exc.message}", flush=True)
            continue
        tags = cell_tags(cell.python)
        names: list[str] = []
        for package in read_packages(lock):
            wheel = wheel_for(package, tags)
            if wheel is None:
                continue
            target = wheelhouse / wheel["file"]
            expected = wheel.get("sha256") or ""
            digest = sha256_of_url(target.as_uri()) if target.exists() else ""
            if not digest or (expected and digest != expected):
                try:
                    digest = download(wheel["url"], target)
                except IndexUnreachable as exc:
                    cells[cell.id] = {"error": f"index-unreachable: {exc}"}
                    break
                if expected and digest != expected:
                    target.unlink()
                    raise ResolutionFailed("hash-mismatch", f"{wheel['file']}: sha256 {digest} "
                                           f"!= {expected}")
            files[wheel["file"]] = {"sha256": digest, "url": redact(wheel["url"]),
                                    "size": target.stat().st_size}
            names.append(wheel["file"])
        else:
            cells[cell.id] = {"requirements": list(plan.requirements), "wheels": names,
                              "deps_cutoff": plan.deps_cutoff}
            print(f"prefetch: {cell.id}: {len(names)} wheels", flush=True)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest

