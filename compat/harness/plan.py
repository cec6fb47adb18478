"""From a cell to an install plan: the exact requirements, index flags and env identity.

The env key hashes everything that decides what gets installed. While it is unchanged
the cell's environment is reused as is: no resolver, no network.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from compat.harness.matrix import Cell
from compat.harness.pipconfig import PipIndexConfig

__all__ = ["ENV_FORMAT", "InstallPlan", "plan_cell"]

# Bump when the layout of a cell environment changes, to rebuild every env once.
ENV_FORMAT = 1


@dataclass(frozen=True)
class InstallPlan:
    cell_id: str
    python: str
    requirements: tuple[str, ...]
    index_args: tuple[str, ...]
    env_dir: Path

    @property
    def key(self) -> str:
        identity = {
            "format": ENV_FORMAT,
            "python": self.python,
            "requirements": sorted(self.requirements),
            "index_args": list(self.index_args),
        }
        blob = json.dumps(identity, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["env_dir"] = str(self.env_dir)
        data["key"] = self.key
        return data


def _channel_args(channel: Mapping[str, Any]) -> list[str]:
    args: list[str] = []
    if channel.get("index-url"):
        args += ["--index-url", str(channel["index-url"])]
    for url in channel.get("extra-index-urls") or ():
        args += ["--extra-index-url", str(url)]
    for link in channel.get("find-links") or ():
        args += ["--find-links", str(link)]
    return args


def plan_cell(
    cell: Cell,
    *,
    deps: Sequence[str],
    envs_root: Path,
    pip_config: PipIndexConfig,
    channel: Mapping[str, Any] | None = None,
) -> InstallPlan:
    """Pin torch (and torchao for the torchao stack) exactly; the rest comes from ``deps``."""
    requirements = [f"torch=={cell.torch}"]
    if cell.torchao is not None:
        requirements.append(f"torchao=={cell.torchao}")
    requirements += [d for d in deps if d not in requirements]
    index_args = _channel_args(channel or {}) + pip_config.uv_args()
    return InstallPlan(
        cell_id=cell.id,
        python=cell.python,
        requirements=tuple(requirements),
        index_args=tuple(index_args),
        env_dir=envs_root / cell.id,
    )
