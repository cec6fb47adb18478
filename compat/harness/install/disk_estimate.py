"""What a run will add to uv's cache, estimated before anything is downloaded.

For every cell whose env cannot be reused, the cell's requirements are resolved (a lock,
no download) and the wheels it names are sized from the index's file sizes; a wheel some
env already holds is in the cache and costs nothing, and a wheel shared by several cells
is counted once. uv keeps wheels unpacked, so the cache grows by more than the download:
``UNPACK_RATIO`` is measured: over the 41 wheels above 100 MB that a cold default matrix
left in the cache, 12.97 GiB downloaded took 24.6 GiB unpacked (1.90x; nvidia libraries
1.1-1.8x, torch 1.95-2.2x, triton 2.8-3.8x). A run whose growth exceeds the free disk is
refused before it downloads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.pylock import Package
from packaging.utils import canonicalize_name

from compat.harness.files import read_json_object
from compat.harness.install import uv_cli
from compat.harness.install.env_folder import Env
from compat.harness.install.install_plan import InstallPlan
from compat.harness.install.interpreters import find_interpreter
from compat.harness.install.lockfile import LOCK, read_packages, wheel_for
from compat.harness.install.wheel_tags import cell_tags
from compat.harness.locations import SITE_PACKAGES

__all__ = [
    "UNPACK_RATIO",
    "DiskEstimate",
    "cache_entries",
    "estimate_growth",
    "free_bytes",
    "in_uv_cache",
    "installed_dists",
    "lock_wheels",
    "reusable",
    "uv_cache_guess",
]

UNPACK_RATIO = 1.9


@dataclass
class DiskEstimate:
    cells: list[str] = field(default_factory=list)  # cells whose env must be built
    download_bytes: int = 0
    unknown: list[str] = field(default_factory=list)  # cells that could not be sized
    # Per cell: the download it adds (a wheel shared by several cells counted at the first,
    # in plan order) and the wheel files it installs, for a disk budget to plan by.
    cell_download: dict[str, int] = field(default_factory=dict)
    cell_wheels: dict[str, frozenset[str]] = field(default_factory=dict)
    wheel_bytes: dict[str, int] = field(default_factory=dict)  # a wheel file's download

    @property
    def cache_bytes(self) -> int:
        return int(self.download_bytes * UNPACK_RATIO)


def installed_dists(envs_root: Path) -> set[tuple[str, str]]:
    """(name, version) of every distribution some env holds: those wheels are cached."""
    found = set()
    for info in envs_root.glob(f"*/{SITE_PACKAGES}/*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        found.add((canonicalize_name(name), version))
    return found


def in_uv_cache(cache: Path | None, filename: str) -> bool:
    """Whether uv's cache holds this wheel unpacked. uv files a wheel under
    ``wheels-v*/<index>/<name>/<filename without name and .whl>``; that layout is uv's
    own and may change, in which case this says no and the estimate errs high."""
    if cache is None or not filename.endswith(".whl"):
        return False
    return any(cache_entries(cache, filename))


def cache_entries(cache: Path, filename: str) -> list[Path]:
    """uv's entries for one wheel: the link to its unpacked archive and the files beside it
    (``.http``, ``.msgpack``, ``.lock``), under ``wheels-v*/pypi/<name>/`` or, for another
    index or a URL, ``wheels-v*/<index|url>/<hash>/<name>/``."""
    name, _, rest = filename.removesuffix(".whl").partition("-")
    name = name.lower().replace("_", "-")
    found: list[Path] = []
    for pattern in (f"wheels-v*/*/{name}/{rest}", f"wheels-v*/*/*/{name}/{rest}"):
        for entry in cache.glob(pattern):
            found += [
                entry,
                *(
                    entry.with_name(entry.name + suffix)
                    for suffix in (".http", ".msgpack", ".lock")
                ),
            ]
    return [path for path in found if path.is_symlink() or path.exists()]


def reusable(plan: InstallPlan) -> bool:
    """Whether the plan's env is built already (the run will not touch the cache for it)."""
    return read_json_object(Env.of(plan).stamp_path).get("key") == plan.key


def lock_wheels(packages: Sequence[Package], python: str) -> frozenset[str]:
    """The wheel file each locked package installs on this platform for ``python``."""
    tags = cell_tags(python)
    found = (wheel_for(package, tags) for package in packages)
    return frozenset(wheel.file for wheel in found if wheel is not None)


def estimate_growth(
    plans: Sequence[InstallPlan],
    envs_root: Path,
    *,
    uv_cache: Path | None = None,
    timeout: float = 300.0,
) -> DiskEstimate:
    """Resolve each env that must be built and size what it would download."""
    estimate = DiskEstimate()
    cached = installed_dists(envs_root)
    counted: set[str] = set()
    for plan in plans:
        if reusable(plan):
            estimate.cell_wheels[plan.cell_id] = lock_wheels(
                read_packages(plan.env_dir / LOCK), plan.python
            )
            continue
        estimate.cells.append(plan.cell_id)
        python = find_interpreter(plan.python)
        if python is None:
            estimate.unknown.append(f"{plan.cell_id}: no CPython {plan.python}")
            continue
        with tempfile.TemporaryDirectory(prefix="compat-estimate-") as tmp:
            try:
                lock = uv_cli.compile_lock(
                    plan.requirements,
                    python=python,
                    args=[*plan.uv_source_args, *plan.cutoff_args],
                    folder=Path(tmp),
                    log=Path(tmp) / "compile.log",
                    timeout=timeout,
                )
                packages = read_packages(lock)
            except (uv_cli.InstallFailed, OSError, ValueError) as exc:
                estimate.unknown.append(f"{plan.cell_id}: {exc}")
                continue
        tags = cell_tags(plan.python)
        estimate.cell_wheels[plan.cell_id] = lock_wheels(packages, plan.python)
        before = estimate.download_bytes
        for package in packages:
            key = (canonicalize_name(package.name), str(package.version or ""))
            wheel = wheel_for(package, tags)
            if (
                wheel is None
                or key in cached
                or wheel.file in counted
                or in_uv_cache(uv_cache, wheel.file)
            ):
                continue
            counted.add(wheel.file)
            size = wheel.size
            if size.isdigit():
                estimate.wheel_bytes[wheel.file] = int(size)
            elif wheel.url.startswith("file:") or Path(wheel.url).is_file():
                local = Path(wheel.url.removeprefix("file://"))
                estimate.wheel_bytes[wheel.file] = local.stat().st_size if local.is_file() else 0
            estimate.download_bytes += estimate.wheel_bytes.get(wheel.file, 0)
        estimate.cell_download[plan.cell_id] = estimate.download_bytes - before
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
