"""What a run will add to uv's cache, estimated before anything is downloaded.

For every cell whose env cannot be reused, the cell's requirements are resolved (a lock,
no download) and the wheels it names are sized from the index's file sizes; a wheel some
env already holds is in the cache and costs nothing, and a wheel shared by several cells
is counted once. uv keeps wheels unpacked, so the cache grows by more than the download:
``UNPACK_RATIO`` is measured (CUDA torch envs: 1.72x on 2.8.0, 1.79x on 2.2.2, 1.85x on
2.15.0). A run whose growth exceeds the free disk is refused before it downloads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from compat.harness.files import read_json_object
from compat.harness.install import uv_cli
from compat.harness.install.envs import STAMP
from compat.harness.install.install_plan import InstallPlan
from compat.harness.install.interpreters import find_interpreter
from compat.harness.install.lockfile import read_packages, wheel_for
from compat.harness.install.wheel_tags import cell_tags

__all__ = ["UNPACK_RATIO", "DiskEstimate", "estimate_growth", "free_bytes", "installed_dists",
           "uv_cache_guess"]

UNPACK_RATIO = 1.8


@dataclass
class DiskEstimate:
    cells: list[str] = field(default_factory=list)  # cells whose env must be built
    download_bytes: int = 0
    unknown: list[str] = field(default_factory=list)  # cells that could not be sized

    @property
    def cache_bytes(self) -> int:
        return int(self.download_bytes * UNPACK_RATIO)


def installed_dists(envs_root: Path) -> set[tuple[str, str]]:
    """(name, version) of every distribution some env holds: those wheels are cached."""
    found = set()
    for info in envs_root.glob("*/lib/python*/site-packages/*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        found.add((name.lower().replace("_", "-"), version))
    return found


def in_uv_cache(cache: Path | None, filename: str) -> bool:
    """Whether uv's cache holds this wheel unpacked. uv files a wheel under
    ``wheels-v*/<index>/<name>/<filename without name and .whl>``; that layout is uv's
    own and may change, in which case this says no and the estimate errs high."""
    if cache is None or not filename.endswith(".whl"):
        return False
    name, _, rest = filename.removesuffix(".whl").partition("-")
    return any(cache.glob(f"wheels-v*/*/{name.lower().replace('_', '-')}/{rest}"))


def _reusable(plan: InstallPlan) -> bool:
    return read_json_object(plan.env_dir / STAMP).get("key") == plan.key


def estimate_growth(plans: Sequence[InstallPlan], envs_root: Path, *,
                    uv_cache: Path | None = None, timeout: float = 300.0) -> DiskEstimate:
    """Resolve each env that must be built and size what it would download."""
    estimate = DiskEstimate()
    cached = installed_dists(envs_root)
    counted: set[str] = set()
    for plan in plans:
        if _reusable(plan):
            continue
        estimate.cells.append(plan.cell_id)
        python = find_interpreter(plan.python)
        if python is None:
            estimate.unknown.append(f"{plan.cell_id}: no CPython {plan.python}")
            continue
        with tempfile.TemporaryDirectory(prefix="compat-estimate-") as tmp:
            try:
                lock = uv_cli.compile_lock(plan.requirements, python=python,
                                           args=[*plan.uv_source_args, *plan.cutoff_args],
                                           folder=Path(tmp), log=Path(tmp) / "compile.log",
                                           timeout=timeout)
                packages = read_packages(lock)
            except (uv_cli.InstallFailed, OSError, ValueError) as exc:
                estimate.unknown.append(f"{plan.cell_id}: {exc}")
                continue
        tags = cell_tags(plan.python)
        for package in packages:
            key = (str(package.get("name", "")).lower().replace("_", "-"),
                   str(package.get("version", "")))
            wheel = wheel_for(package, tags)
            if wheel is None or key in cached or wheel.file in counted \
                    or in_uv_cache(uv_cache, wheel.file):
                continue
            counted.add(wheel.file)
            size = wheel.size
            if size.isdigit():
                estimate.download_bytes += int(size)
            elif wheel.url.startswith("file:") or Path(wheel.url).is_file():
                local = Path(wheel.url.removeprefix("file://"))
                estimate.download_bytes += local.stat().st_size if local.is_file() else 0
    return estimate


def uv_cache_guess() -> Path:
    """uv's cache folder as uv documents its default (``$UV_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/uv``, else ``~/.cache/uv``), without running uv: the disk check
    runs before anything, and must not wait on a uv that hangs."""
    if os.environ.get("UV_CACHE_DIR"):
        return Path(os.environ["UV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "uv"


def free_bytes(path: Path) -> int:
    """Free space on the disk holding ``path`` (or its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free
