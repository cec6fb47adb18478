"""What building an ``install-project`` repository needs, asked of its build backend.

A cell installs the user's repository editable, so uv builds it in an isolated env from
its ``[build-system] requires`` *and* whatever the backend's
``get_requires_for_build_editable`` hook adds (hatchling adds ``editables``; setuptools
may add ``wheel``). The second list exists only once the backend runs: it is asked here
the way PyPA's ``build`` asks it, through ``pyproject_hooks``, in a throwaway env holding
the static requirements. ``prefetch`` fetches both lists, so an offline cell finds its
backend and the backend's own additions in the wheelhouse.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pyproject_hooks

from compat.harness import processes
from compat.harness.errors import ErrorKind, InstallError
from compat.harness.install.uv_cli import run, uv_bin, uv_environment

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["DEFAULT_BUILD", "dynamic_requires", "static_requires"]


class _HookFailed(Exception):
    """The backend's hook exited non-zero or ran out of time (its output is in the log)."""


# PEP 518: a project without [build-system] is built by setuptools' legacy backend.
DEFAULT_BUILD = {
    "requires": ["setuptools>=40.8.0"],
    "build-backend": "setuptools.build_meta:__legacy__",
}


def _build_system(root: Path) -> Mapping[str, object]:
    try:
        with open(root / "pyproject.toml", "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return DEFAULT_BUILD
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InstallError(
            ErrorKind.INSTALL_ERROR, f"{root / 'pyproject.toml'}: cannot be read: {exc}"
        ) from exc
    table = data.get("build-system")
    return table if isinstance(table, dict) and "requires" in table else DEFAULT_BUILD


def static_requires(root: Path | None) -> list[str]:
    """``[build-system] requires`` of the project at ``root``; PEP 518's default for a
    project without it; nothing without a project.

    >>> static_requires(None)
    []
    """
    if root is None:
        return []
    requires = _build_system(root).get("requires")
    return [str(r) for r in requires] if isinstance(requires, list) else []


def dynamic_requires(
    root: Path,
    *,
    python: str,
    find_links: Path,
    log: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """What the backend adds for an editable build (``get_requires_for_build_editable``),
    asked in a throwaway env of ``python`` holding the static requirements from
    ``find_links`` alone (the wheelhouse they were just fetched into)."""
    table = _build_system(root)
    backend = str(table.get("build-backend") or DEFAULT_BUILD["build-backend"])
    backend_path = table.get("backend-path")
    uv_env = {**uv_environment(), **(env or {})}
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="compat-build-") as scratch:
        venv = Path(scratch) / "venv"
        run([uv_bin(), "venv", "--quiet", "--python", python, str(venv)], log, timeout, uv_env)
        env_python = str(venv / "bin" / "python")
        requires: Sequence[str] = static_requires(root)
        if requires:
            run(
                [
                    uv_bin(), "pip", "install", "--quiet", "--python", env_python,
                    "--no-index", "--find-links", str(find_links), *requires,
                ],
                log, timeout, uv_env,
            )  # fmt: skip
        hooks = pyproject_hooks.BuildBackendHookCaller(
            str(root),
            backend,
            backend_path=[str(p) for p in backend_path] if isinstance(backend_path, list) else None,
            python_executable=env_python,
            runner=_runner(log, timeout),
        )
        try:
            found = hooks.get_requires_for_build_editable()
        except pyproject_hooks.HookMissing:  # a backend without PEP 660: no editable install
            raise InstallError(
                ErrorKind.INSTALL_ERROR,
                f"{root}: build backend {backend} cannot build editable (no PEP 660 hook)",
            ) from None
        except (pyproject_hooks.BackendUnavailable, _HookFailed) as exc:
            raise InstallError(
                ErrorKind.INSTALL_ERROR, f"{root}: build backend {backend}: {exc}"
            ) from exc
    return [str(r) for r in found]


def _runner(log: Path, timeout: float) -> Callable[..., None]:
    """A ``pyproject_hooks`` runner that keeps the hook's output in ``log`` and stops it at
    ``timeout`` (the default runner would print into the harness's console)."""

    def run_hook(
        cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        result = processes.run(
            list(cmd), env={**os.environ, **(extra_environ or {})}, timeout=timeout,
            capture=True, cwd=Path(cwd) if cwd else None,
        )  # fmt: skip
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}")
        if result.timed_out or result.returncode != 0:
            raise _HookFailed(
                f"the backend's hook {'timed out' if result.timed_out else 'failed'}"
                f" (exit {result.returncode}; see {log})"
            )

    return run_hook
