"""One uv environment per cell, built once and reused while its plan's key is unchanged.

A stamp file inside the env records the key it was built for; a warm run compares keys
and touches neither the resolver nor the network. Builds take an exclusive lock on the
env; runs hold a shared one, so two concurrent runs never rebuild an env under a test.
The env's folder, lock and stamp are :class:`.env_folder.Env`'s.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compat.harness.errors import ErrorKind
from compat.harness.files import atomic_write_text, read_json_object
from compat.harness.install import uv_cli
from compat.harness.install.disk import DiskUse, disk_use
from compat.harness.install.env_folder import STAMP, Env
from compat.harness.install.index import IndexUnreachable, sha256_of_url
from compat.harness.install.install_plan import InstallPlan
from compat.harness.install.interpreters import find_interpreter
from compat.harness.install.lockfile import (
    LockedWheel,
    LockInvalid,
    installed_wheels,
    locked_pins,
)

__all__ = ["STAMP", "EnvRecord", "ensure_env", "env_lock"]

PTH = "torch_compat_matrix.pth"  # the old link to the whole host tree: removed on sight
PACKAGE = Path(__file__).resolve().parents[2]  # the installed ``compat`` package
# The cell side of this project, and nothing else of the host: copied into every env.
CELL_SIDE = ("__init__.py", "events.py", "pytest_plugin.py", "file_runner.py", "shims")


@dataclass
class EnvRecord:
    """A cell's env, built or reused: what the stamp file and the cell's result record."""

    python: Path
    reused: bool
    seconds: float
    key: str
    freeze: list[str] = field(default_factory=list)
    uv_version: str = ""
    interpreter: str = ""
    wheels: dict[str, LockedWheel] = field(default_factory=dict)  # torch, torchao
    disk: DiskUse | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stamp file's fields."""
        return {
            "python": str(self.python),
            "reused": self.reused,
            "seconds": round(self.seconds, 3),
            "key": self.key,
            "freeze": self.freeze,
            "uv_version": self.uv_version,
            "interpreter": self.interpreter,
            "wheels": {name: wheel.to_dict() for name, wheel in self.wheels.items()},
            "disk": self.disk.to_dict() if self.disk else {},
        }


@contextlib.contextmanager
def env_lock(env_dir: Path, *, exclusive: bool) -> Iterator[None]:
    """Exclusive to build, shared to run; the wait ends at a stop (``processes.Stopped``)."""
    with Env.at(env_dir).lock(exclusive=exclusive):
        yield


def _bin(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def _site_packages(env_dir: Path) -> Path:
    found = Env.at(env_dir).site_packages()
    if found is None:
        raise uv_cli.InstallFailed(ErrorKind.BROKEN_ENV, f"{env_dir} has no site-packages")
    return found


def cell_side_files(package: Path = PACKAGE) -> dict[str, bytes]:
    """``compat``'s cell side (shims, plugin, events contract) as relative path -> bytes."""
    files: dict[str, bytes] = {}
    for name in CELL_SIDE:
        source = package / name
        paths = sorted(source.rglob("*.py")) if source.is_dir() else [source]
        for path in paths:
            files[str(path.relative_to(package))] = path.read_bytes()
    return files


def _link_project(env_dir: Path) -> None:
    """Give the cell its own copy of ``compat``'s cell side, and nothing else of the host.

    A ``.pth`` to the installing tree would put the host's whole site-packages (a wheel
    install) or checkout on the cell's path, and a package missing from the cell would be
    imported from the host. The copy is a few small files, synced when they change.
    """
    site = _site_packages(env_dir)
    (site / PTH).unlink(missing_ok=True)
    target = site / "compat"
    wanted = cell_side_files()
    for relative, data in wanted.items():
        path = target / relative
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, data.decode("utf-8"))
    for stale in [p for p in target.rglob("*.py") if str(p.relative_to(target)) not in wanted]:
        stale.unlink()


def ensure_env(plan: InstallPlan, *, log: Path, timeout: float) -> EnvRecord:
    """Reuse the cell's env when its key matches, else build it from scratch."""
    env_dir = plan.env_dir
    stamp_path = Env.of(plan).stamp_path
    started = time.monotonic()
    stamp = read_json_object(stamp_path)
    if stamp.get("key") == plan.key and _bin(env_dir).exists():
        _link_project(env_dir)
        if "disk" not in stamp:  # envs from before sizes were recorded
            stamp["disk"] = disk_use(env_dir).to_dict()
            atomic_write_text(stamp_path, json.dumps(stamp, indent=2))
        disk = stamp.get("disk") or {}
        return EnvRecord(
            _bin(env_dir),
            True,
            time.monotonic() - started,
            plan.key,
            list(stamp.get("freeze", [])),
            str(stamp.get("uv_version", "")),
            str(stamp.get("interpreter", "")),
            {
                name: LockedWheel.from_dict(wheel)
                for name, wheel in dict(stamp.get("wheels", {})).items()
            },
            DiskUse(int(disk.get("apparent_bytes", 0)), int(disk.get("own_bytes", 0)))
            if disk
            else None,
        )

    interpreter = find_interpreter(plan.python)
    if interpreter is None:
        raise uv_cli.InstallFailed(
            ErrorKind.NO_INTERPRETER, f"no CPython {plan.python} on this machine"
        )
    uv = uv_cli.uv_bin()
    env = uv_cli.uv_environment()
    log.parent.mkdir(parents=True, exist_ok=True)
    if env_dir.exists():
        Env.of(plan).remove_locked()  # the caller holds the env's exclusive lock
    uv_cli.run([uv, "venv", "--quiet", "--python", interpreter, str(env_dir)], log, timeout, env)
    # Resolve first, into a lock that names every wheel with its URL and sha256; then
    # install exactly those versions. Installing the lock file itself would re-hash every
    # wheel (~3 GB for a CUDA torch, ~20 s per env); exact pins hit uv's cache instead.
    remaining = max(1.0, timeout - (time.monotonic() - started))
    lock = uv_cli.compile_lock(
        plan.requirements,
        python=str(_bin(env_dir)),
        args=[*plan.uv_source_args, *plan.cutoff_args],
        folder=env_dir,
        log=log,
        timeout=remaining,
        env=env,
    )
    remaining = max(1.0, timeout - (time.monotonic() - started))
    pinned = env_dir / "requirements.lock.txt"
    try:
        pins = locked_pins(lock)
    except LockInvalid as exc:
        raise uv_cli.InstallFailed(
            ErrorKind.BAD_LOCK, f"uv pip compile wrote a lock PEP 751 refuses: {exc}"
        ) from None
    pinned.write_text("\n".join(pins) + "\n", encoding="utf-8")
    uv_cli.run(
        [
            uv,
            "pip",
            "install",
            "--python",
            str(_bin(env_dir)),
            "--no-deps",
            *plan.uv_source_args,
            *plan.cutoff_args,
            "-r",
            str(pinned),
        ],
        log,
        remaining,
        env,
    )
    _link_project(env_dir)
    freeze = uv_cli.run([uv, "pip", "freeze", "--python", str(_bin(env_dir))], log, 120, env)
    wheels = installed_wheels(env_dir, lock, ("torch", "torchao"))
    for wheel in wheels.values():
        if not wheel.sha256 and wheel.url:
            # PyTorch's nightly listings carry no digest: hash the file the lock names.
            try:
                wheel.sha256 = sha256_of_url(wheel.url)
                wheel.sha256_source = "computed"
            except IndexUnreachable as exc:
                wheel.sha256_source = f"not computed: {exc}"
    record = EnvRecord(
        _bin(env_dir),
        False,
        time.monotonic() - started,
        plan.key,
        sorted(freeze.split()),
        uv_cli.uv_version(),
        interpreter,
        wheels,
        disk_use(env_dir),
    )
    atomic_write_text(
        stamp_path,
        json.dumps({**record.to_dict(), "plan": plan.to_dict(), "created": time.time()}, indent=2),
    )
    return record
