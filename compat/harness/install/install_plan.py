"""From a cell to an install plan: the exact requirements, index flags and env identity.

The env key hashes everything that decides what gets installed. While it is unchanged
the cell's environment is reused as is: no resolver, no network.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from compat.harness.config.channels import RELEASE, Channel
from compat.harness.config.matrix import Cell, Matrix
from compat.harness.install.index import Listings
from compat.harness.install.pipconfig import PipIndexConfig
from compat.harness.install.resolve import ResolvedCell, resolve_cell

__all__ = [
    "ENV_FORMAT",
    "PROJECT_FILES",
    "InstallPlan",
    "cutoff_args",
    "plan_cell",
    "plan_for",
    "project_digest",
    "project_requirement",
]

# Bump when the layout of a cell environment changes, to rebuild every env once.
ENV_FORMAT = 1

# Exempt from the deps cutoff: the cell's own pins, and what torch nightlies pin exactly
# from PyTorch's index. uv drops every file without an upload time under a cutoff, and
# PyTorch's HTML pages give none ("--exclude-newer-package NAME=false", uv >= 0.9).
PINNED = ("torch", "torchao", "pytorch-triton")


# What decides a project's dependencies and build: a change to one of them rebuilds the env.
PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg")


def project_requirement(root: Path) -> str:
    """The repository as a requirement line of every cell: **editable**.

    Editable, because the env is cached and reused while its key is unchanged: a copy of
    the package (a wheel built once) would go stale at the user's next edit, and the cells
    would test yesterday's code without saying so. Editable, the cell imports the working
    tree as it is now, whatever the layout (a ``src/`` layout included: the build backend's
    editable hook puts the right folder on the path). A compiled extension is built at env
    build time; a change to its sources needs a rebuild (``gc`` the env, or bump the
    version in pyproject.toml).
    """
    return f"-e {root.resolve()}"


def project_digest(root: Path) -> str:
    """The sha256 of the files that decide the project's dependencies and build
    (:data:`PROJECT_FILES`): in the env's key, so a new dependency rebuilds the env."""
    digest = hashlib.sha256()
    for name in PROJECT_FILES:
        path = root / name
        data = path.read_bytes() if path.is_file() else b""
        digest.update(f"{name}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()[:16]


def cutoff_args(cutoff: str | None, *, own_index: bool) -> list[str]:
    """uv flags that resolve all but the cell's pinned builds as of ``cutoff``.

    A channel with its own index is otherwise searched first-index: the deps it mirrors
    (numpy, sympy...) would be looked up there only, and have no upload time. Searching
    every index keeps its torch (an exact pin takes the first index listing that version)
    and takes dated deps from the default index.
    """
    if cutoff is None:
        return []
    args = ["--exclude-newer", cutoff]
    for name in PINNED:
        args += ["--exclude-newer-package", f"{name}=false"]
    return args + (["--index-strategy", "unsafe-best-match"] if own_index else [])


@dataclass(frozen=True)
class InstallPlan:
    cell_id: str
    python: str
    requirements: tuple[str, ...]
    index_args: tuple[str, ...]
    env_dir: Path
    # Where uv actually reads from when that differs from the plan's indexes: a prefetched
    # wheelhouse holds exactly the locked wheels, so it does not change the env's identity.
    source_args: tuple[str, ...] = ()
    # deps-as-of: the RFC 3339 time the other packages are resolved as of, and the uv
    # flags for it, given to every resolve and install of the cell (a wheelhouse too).
    deps_cutoff: str | None = None
    cutoff_args: tuple[str, ...] = ()
    # install-project: the digest of the project's build files (its requirement, ``-e
    # <root>``, is among ``requirements``); None when the cell does not install it.
    project_digest: str | None = None

    @property
    def uv_source_args(self) -> tuple[str, ...]:
        return self.source_args or self.index_args

    @property
    def key(self) -> str:
        identity = {
            "format": ENV_FORMAT,
            "python": self.python,
            "requirements": sorted(self.requirements),
            "index_args": list(self.index_args),
        }
        if self.cutoff_args:  # only then: envs built without a cutoff keep their keys
            identity["cutoff_args"] = list(self.cutoff_args)
        if self.project_digest:  # likewise: envs without the project keep their keys
            identity["project_digest"] = self.project_digest
        blob = json.dumps(identity, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["env_dir"] = str(self.env_dir)
        data["key"] = self.key
        return data


def plan_cell(
    cell: Cell,
    *,
    deps: Sequence[str],
    envs_root: Path,
    pip_config: PipIndexConfig,
    channel: Channel | None = None,
    pins: Sequence[str] | None = None,
    wheelhouse: Path | None = None,
    deps_cutoff: str | None = None,
    project: Path | None = None,
    torch_backend: str | None = None,
) -> InstallPlan:
    """Exact torch (and torchao) pins first, then the cell's own ``deps`` (its [[torch]]
    entry's), ``deps``, and the project (editable) last; the channel's index first.

    With a channel index uv keeps its first-index rule, so torch comes from the channel
    even where another index has the same version number (an RC and its final release).
    ``torch_backend`` is uv's ``--torch-backend`` (``cpu``): an index flag, in the key.
    """
    requirements = (
        list(pins)
        if pins is not None
        else [f"torch=={cell.torch}"] + ([f"torchao=={cell.torchao}"] if cell.torchao else [])
    )
    requirements += [d for d in (*cell.deps, *deps) if d not in requirements]
    if project is not None:
        requirements.append(project_requirement(project))
    channel = channel or Channel(RELEASE)
    own_index = bool(channel.index_url)
    index_args = channel.index_args() + pip_config.uv_args(best_match=not own_index)
    if torch_backend:
        index_args += ["--torch-backend", torch_backend]
    return InstallPlan(
        cell_id=cell.id,
        python=cell.python,
        requirements=tuple(requirements),
        index_args=tuple(index_args),
        env_dir=envs_root / cell.id,
        source_args=("--offline", "--no-index", "--find-links", str(wheelhouse))
        if wheelhouse
        else (),
        deps_cutoff=deps_cutoff,
        cutoff_args=tuple(cutoff_args(deps_cutoff, own_index=own_index)),
        project_digest=project_digest(project) if project is not None else None,
    )


def plan_for(
    cell: Cell,
    matrix: Matrix,
    *,
    envs_root: Path,
    pip_config: PipIndexConfig,
    wheelhouse: Path | None = None,
    listings: Listings | None = None,
) -> tuple[ResolvedCell, InstallPlan]:
    """Resolve the cell on its channel, then plan its env: what run, probe and prefetch share.

    Raises :class:`ResolutionFailed` when the channel cannot name the build.
    """
    channel = matrix.channel(cell.channel)
    resolved = resolve_cell(
        cell, channel, envs_root=envs_root, listings=listings, deps_as_of=matrix.deps_as_of
    )
    plan = plan_cell(
        cell,
        deps=matrix.cell_deps,
        envs_root=envs_root,
        pip_config=pip_config,
        channel=channel,
        pins=resolved.pins,
        wheelhouse=wheelhouse,
        deps_cutoff=resolved.deps_cutoff,
        project=matrix.project_root,
        torch_backend=matrix.torch_backend,
    )
    return resolved, plan
