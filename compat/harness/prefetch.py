"""``nox -s prefetch``: every wheel every cell needs, in one folder, with its sha256.

Each applicable cell is resolved exactly as for a run (``uv pip compile`` into a
``pylock.toml``), the wheel built for the cell's interpreter is downloaded once, and
``manifest.json`` records file, sha256 and origin. ``matrix --offline`` then builds
every env from that folder alone, on a machine or CI cache without index access.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compat.harness.envs import uv_bin
from compat.harness.files import atomic_write_text, read_json_object
from compat.harness.index import IndexUnreachable, Listings, download, sha256_of_url
from compat.harness.interpreters import find_interpreter
from compat.harness.lockfile import read_packages, wheel_for
from compat.harness.matrix import Matrix
from compat.harness.pipconfig import PipIndexConfig
from compat.harness.plan import plan_for
from compat.harness.redact import redact
from compat.harness.resolve import ResolutionFailed
from compat.harness.wheel_tags import cell_tags

__all__ = ["MANIFEST", "prefetch"]

MANIFEST = "manifest.json"


def _lock(requirements: Sequence[str], interpreter: str, index_args: Sequence[str],
          folder: Path) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requirements.in").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    proc = subprocess.run(
        [uv_bin(), "pip", "compile", "--quiet", str(folder / "requirements.in"), "--format",
         "pylock.toml", "--python", interpreter, *index_args, "-o", str(folder / "pylock.toml")],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise ResolutionFailed("resolve-failed", redact(lines[-1] if lines else "uv failed"))
    return read_packages(folder / "pylock.toml")


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
        try:
            _, plan = plan_for(cell, matrix, envs_root=envs_root, pip_config=pip_config,
                               listings=listings)
            packages = _lock(plan.requirements, interpreter,
                             [*plan.index_args, *plan.cutoff_args],
                             wheelhouse / ".locks" / cell.id)
        except ResolutionFailed as exc:
            cells[cell.id] = {"error": f"{exc.kind}: {exc.message}"}
            print(f"prefetch: {cell.id}: {exc.kind}: {exc.message}", flush=True)
            continue
        tags = cell_tags(cell.python)
        names: list[str] = []
        for package in packages:
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

