"""uv, the one installer: which binary, one logged call, its failure in one word, and the
one ``uv pip compile``.

Env builds (:mod:`.envs`) and prefetch (:mod:`.prefetch`) resolve a cell the same way,
through :func:`compile_lock`, and fail the same way: an :class:`InstallFailed` whose kind
(no-such-version, index-unreachable, disk-full, ...) and message come from uv's own
report, with the full output in a log.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from compat.harness import processes
from compat.harness.errors import ErrorKind, InstallError
from compat.harness.install.lockfile import LOCK
from compat.harness.redact import redact

__all__ = ["InstallFailed", "compile_lock", "run", "uv_bin", "uv_environment", "uv_version"]


class InstallFailed(InstallError):
    """The env could not be built; ``kind`` says why in one word, the message in one line."""

    def __init__(self, kind: ErrorKind | str, message: str, log: str = "") -> None:
        super().__init__(kind, message, log)


_UV_LOCK = threading.Lock()


@functools.cache
def _uv_bin() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise InstallFailed(ErrorKind.NO_UV, "uv is not installed (pip install uv)") from None
        return found


def uv_bin() -> str:
    """The uv that ships with this harness (the ``uv`` package), else the one on PATH.

    Serialised: ``uv.find_uv_bin`` reads ``sysconfig``, whose lazy initialisation is not
    thread-safe (seen here as ``get_config_var("EXE")`` returning None in a cell thread).
    """
    with _UV_LOCK:
        return _uv_bin()


def uv_version() -> str:
    return processes.run([uv_bin(), "--version"], capture=True, timeout=60).stdout.strip()


def uv_environment() -> dict[str, str]:
    """The host's environment without what would point uv at the harness's own Python."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}


_BOX = " \u00d7\u2570\u2500\u25b6\u2502"
_NEW_LINE = ("error", "cause:", "hint:", "help:", "warning", "because", "\u00d7", "\u2570")


def _logical_lines(text: str) -> list[str]:
    """uv's report as whole sentences: a line uv wrapped (an indented line that starts no
    new item) is joined to the one before, so "... we can conclude" keeps its ending."""
    lines: list[str] = []
    joinable = False
    for raw in text.splitlines():
        line = raw.strip(_BOX).strip()
        if not line:
            joinable = False
            continue
        if joinable and raw[:1].isspace() and not line.lower().startswith(_NEW_LINE):
            lines[-1] += " " + line
            continue
        lines.append(line)
        joinable = True
    return lines


def _classify_uv_error(text: str) -> tuple[ErrorKind, str]:
    """Reduce uv's report to a kind and its most telling line."""
    lines = _logical_lines(text)
    lowered = text.lower()
    if any(
        s in lowered
        for s in ("no space left on device", "os error 28", "disk quota exceeded", "os error 122")
    ):
        # uv says "Failed to download": the machine, not the index, failed
        kind = ErrorKind.DISK_FULL
    elif (
        "there is no version of" in lowered
        or "no matching distribution" in lowered
        or "not found in the provided package locations" in lowered
        or "was not found in the package registry" in lowered
    ):
        kind = ErrorKind.NO_SUCH_VERSION  # offline: not in the wheelhouse
    elif (
        "has no wheels with a matching python" in lowered
        or "requires-python" in lowered
        or ("only " in lowered and "available" in lowered and "wheel" in lowered)
        or "has no wheels with a matching platform" in lowered
    ):
        kind = ErrorKind.NO_WHEEL_FOR_PYTHON
    elif any(
        s in lowered
        for s in (
            "failed to fetch",
            "dns error",
            "connection refused",
            "connect error",
            "error sending request",
            "timed out",
            "network",
            "offline",
        )
    ):
        kind = ErrorKind.INDEX_UNREACHABLE
    else:
        kind = ErrorKind.INSTALL_ERROR
    causes = [ln[len("cause:") :].strip() for ln in lines if ln.lower().startswith("cause:")]
    because = next((ln for ln in [*lines, *causes] if ln.startswith("Because")), None)
    telling = because or next((ln for ln in lines if ln.lower().startswith("error")), None)
    if telling and causes and not because:  # which URL, and the root cause (e.g. the DNS error)
        telling += f" ({causes[0]}; {causes[-1]})" if len(causes) > 1 else f" ({causes[0]})"
    return kind, redact(telling or (lines[-1] if lines else "uv failed without a message"))


def run(cmd: list[str], log: Path, timeout: float, env: Mapping[str, str]) -> str:
    """Run one uv command, appending it and its output (redacted) to ``log``; its stdout.

    Raises :class:`InstallFailed` on a timeout or a non-zero exit, with uv's failure
    reduced to a kind and its telling line.
    """
    started = time.monotonic()
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(redact("$ " + " ".join(cmd)) + "\n")
        handle.flush()
        try:  # its own process group, ended by a stop (processes.Stopped) like pytest's
            proc = processes.run(cmd, env=env, timeout=timeout, capture=True)
        except processes.Stopped:
            handle.write(f"stopped (interrupted) after {time.monotonic() - started:.1f}s\n")
            raise
        if proc.timed_out:
            handle.write(f"timed out after {timeout:.0f}s\n")
            raise InstallFailed(
                ErrorKind.INSTALL_TIMEOUT, f"install timed out after {timeout:.0f}s"
            )
        output = proc.stdout + proc.stderr
        handle.write(redact(output))
        handle.write(f"[exit {proc.returncode} in {time.monotonic() - started:.1f}s]\n")
    if proc.returncode != 0:
        kind, message = _classify_uv_error(output)
        raise InstallFailed(kind, message, redact(output)[-4000:])
    return proc.stdout


def compile_lock(
    requirements: Sequence[str],
    *,
    python: str,
    args: Sequence[str],
    folder: Path,
    log: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Resolve ``requirements`` for interpreter ``python`` into ``folder/pylock.toml``.

    The lock names every wheel with its URL and sha256; ``args`` are the index, source
    and cutoff flags. ``folder/requirements.in`` keeps the input beside it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    requirements_in = folder / "requirements.in"
    requirements_in.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    lock = folder / LOCK
    run(
        [
            uv_bin(),
            "pip",
            "compile",
            "--quiet",
            str(requirements_in),
            "--format",
            "pylock.toml",
            "--python",
            python,
            *args,
            "-o",
            str(lock),
        ],
        log,
        timeout,
        uv_environment() if env is None else env,
    )
    return lock
