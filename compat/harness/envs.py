"""One uv environment per cell, built once and reused while its plan's key is unchanged.

A stamp file inside the env records the key it was built for; a warm run compares keys
and touches neither the resolver nor the network. Builds take an exclusive lock on the
env; runs hold a shared one, so two concurrent runs never rebuild an env under a test.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compat.harness.disk import disk_use
from compat.harness.files import atomic_write_text, read_json_object
from compat.harness.index import IndexUnreachable, sha256_of_url
from compat.harness.interpreters import find_interpreter
from compat.harness.lockfile import installed_wheels, locked_pins
from compat.harness.plan import InstallPlan
from compat.harness.redact import redact

__all__ = ["EnvRecord", "InstallFailed", "ensure_env", "env_lock", "uv_bin", "uv_version"]

STAMP = ".compat-env.json"
LOCK = "pylock.toml"
PTH = "torch_compat_matrix.pth"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class InstallFailed(Exception):
    """The env could not be built; ``kind`` says why in one word, the message in one line."""

    def __init__(self, kind: str, message: str, log: str = "") -> None:
        super().__init__(message)
        self.kind, self.message, self.log = kind, message, log


@dataclass
class EnvRecord:
    python: Path
    reused: bool
    seconds: float
    key: str
    freeze: list[str] = field(default_factory=list)
    uv_version: str = ""
    interpreter: str = ""
    wheels: dict[str, dict[str, str]] = field(default_factory=dict)
    disk: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": str(self.python),
            "reused": self.reused,
            "seconds": round(self.seconds, 3),
            "key": self.key,
            "freeze": self.freeze,
            "uv_version": self.uv_version,
            "interpreter": self.interpreter,
            "wheels": self.wheels,
            "disk": self.disk,
        }


_UV_LOCK = threading.Lock()


@functools.cache
def _uv_bin() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise InstallFailed("no-uv", "uv is not installed (pip install uv)") from None
        return found


def uv_bin() -> str:
    """The uv that ships with this harness (the ``uv`` package), else the one on PATH.

    Serialised: ``uv.find_uv_bin`` reads ``sysconfig``, whose lazy initialisation is not
    thread-safe (seen here as ``get_config_var("EXE")`` returning None in a cell thread).
    """
    with _UV_LOCK:
        return _uv_bin()


def uv_version() -> str:
    out = subprocess.run([uv_bin(), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


@contextlib.contextmanager
def env_lock(env_dir: Path, *, exclusive: bool) -> Iterator[None]:
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(env_dir.parent / f".{env_dir.name}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _bin(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def _site_packages(env_dir: Path) -> Path:
    found = sorted(env_dir.glob("lib/python*/site-packages"))
    if not found:
        raise InstallFailed("broken-env", f"{env_dir} has no site-packages")
    return found[0]


def _link_project(env_dir: Path) -> None:
    """Make ``compat`` importable in the cell, pointing at this checkout (no build, no network)."""
    pth = _site_packages(env_dir) / PTH
    wanted = f"{PROJECT_ROOT}\n"
    if not pth.exists() or pth.read_text(encoding="utf-8") != wanted:
        atomic_write_text(pth, wanted)


def _classify_uv_error(text: str) -> tuple[str, str]:
    """Reduce uv's report to a kind and its most telling line."""
    lines = [ln.strip(" \u00d7\u2570\u2500\u25b6\u2502").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    lowered = text.lower()
    if any(s in lowered for s in ("no space left on device", "os error 28",
                                   "disk quota exceeded", "os error 122")):
        kind = "disk-full"  # uv says "Failed to download": the machine, not the index, failed
    elif "there is no version of" in lowered or "no matching distribution" in lowered:
        kind = "no-such-version"
    elif "has no wheels with a matching python" in lowered or "requires-python" in lowered or (
        "only " in lowered and "available" in lowered and "wheel" in lowered
    ) or "has no wheels with a matching platform" in lowered:
        kind = "no-wheel-for-python"
    elif any(s in lowered for s in ("failed to fetch", "dns error", "connection refused",
                                     "connect error", "error sending request", "timed out",
                                     "network", "offline")):
        kind = "index-unreachable"
    else:
        kind = "install-error"
    telling = next((ln for ln in lines if ln.startswith("Because")), None)
    telling = telling or next((ln for ln in lines if ln.lower().startswith("error")), None)
    causes = [ln.removeprefix("cause:").strip() for ln in lines if ln.startswith("cause:")]
    if telling and causes:  # which URL, and the root cause (e.g. the DNS error)
        telling += f" ({causes[0]}; {causes[-1]})" if len(causes) > 1 else f" ({causes[0]})"
    return kind, redact(telling or (lines[-1] if lines else "uv failed without a message"))


def _run(cmd: list[str], log: Path, timeout: float, env: dict[str, str]) -> str:
    started = time.monotonic()
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(redact("$ " + " ".join(cmd)) + "\n")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                                  check=False)
        except subprocess.TimeoutExpired:
            handle.write(f"timed out after {timeout:.0f}s\n")
            raise InstallFailed("install-timeout",
                                f"install timed out after {timeout:.0f}s") from None
        output = proc.stdout + proc.stderr
        handle.write(redact(output))
        handle.write(f"[exit {proc.returncode} in {time.monotonic() - started:.1f}s]\n")
    if proc.returncode != 0:
        kind, message = _classify_uv_error(output)
        raise InstallFailed(kind, message, redact(output)[-4000:])
    return proc.stdout


def ensure_env(plan: InstallPlan, *, log: Path, timeout: float) -> EnvRecord:
    """Reuse the cell's env when its key matches, else build it from scratch."""
    env_dir = plan.env_dir
    started = time.monotonic()
    stamp = read_json_object(env_dir / STAMP)
    if stamp.get("key") == plan.key and _bin(env_dir).exists():
        _link_project(env_dir)
        if "disk" not in stamp:  # envs from before sizes were recorded
            stamp["disk"] = disk_use(env_dir).to_dict()
            atomic_write_text(env_dir / STAMP, json.dumps(stamp, indent=2))
        return EnvRecord(_bin(env_dir), True, time.monotonic() - started, plan.key,
                         list(stamp.get("freeze", [])), str(stamp.get("uv_version", "")),
                         str(stamp.get("interpreter", "")), dict(stamp.get("wheels", {})),
                         dict(stamp.get("disk", {})))

    interpreter = find_interpreter(plan.python)
    if interpreter is None:
        raise InstallFailed("no-interpreter", f"no CPython {plan.python} on this machine")
    uv = uv_bin()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    log.parent.mkdir(parents=True, exist_ok=True)
    if env_dir.exists():
        shutil.rmtree(env_dir)
    _run([uv, "venv", "--quiet", "--python", interpreter, str(env_dir)], log, timeout, env)
    # Resolve first, into a lock that names every wheel with its URL and sha256; then
    # install exactly those versions. Installing the lock file itself would re-hash every
    # wheel (~3 GB for a CUDA torch, ~20 s per env); exact pins hit uv's cache instead.
    requirements = env_dir / "requirements.in"
    requirements.write_text("\n".join(plan.requirements) + "\n", encoding="utf-8")
    lock = env_dir / LOCK
    remaining = max(1.0, timeout - (time.monotonic() - started))
    _run([uv, "pip", "compile", "--quiet", str(requirements), "--format", "pylock.toml",
          "--python", str(_bin(env_dir)), *plan.uv_source_args, *plan.cutoff_args,
          "-o", str(lock)],
         log, remaining, env)
    remaining = max(1.0, timeout - (time.monotonic() - started))
    pinned = env_dir / "requirements.lock.txt"
    pinned.write_text("\n".join(locked_pins(lock)) + "\n", encoding="utf-8")
    _run([uv, "pip", "install", "--python", str(_bin(env_dir)), "--no-deps",
          *plan.uv_source_args, *plan.cutoff_args, "-r", str(pinned)], log, remaining, env)
    _link_project(env_dir)
    freeze = _run([uv, "pip", "freeze", "--python", str(_bin(env_dir))], log, 120, env)
    wheels = installed_wheels(env_dir, lock, ("torch", "torchao"))
    for wheel in wheels.values():
        if not wheel.get("sha256") and wheel.get("url"):
            # PyTorch's nightly listings carry no digest: hash the file the lock names.
            try:
                wheel["sha256"] = sha256_of_url(wheel["url"])
                wheel["sha256_source"] = "computed"
            except IndexUnreachable as exc:
                wheel["sha256_source"] = f"not computed: {exc}"
    record = EnvRecord(_bin(env_dir), False, time.monotonic() - started, plan.key,
                       sorted(freeze.split()), uv_version(), interpreter, wheels,
                       disk_use(env_dir).to_dict())
    atomic_write_text(env_dir / STAMP, json.dumps(
        {**record.to_dict(), "plan": plan.to_dict(), "created": time.time()}, indent=2))
    return record
