"""Turn a cell's request into exact pins before anything is installed.

Releases, RCs and wheelhouse builds are already exact (``torch==2.9.0`` from the
channel's index). Nightlies are looked up on the channel's listing; a dated spec is
remembered in ``<envs>/.resolved.json`` so that a warm rerun needs no network, while
``latest`` asks the index once per run (and falls back to the last answer, saying so,
when the index cannot be reached).
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from packaging.version import Version

from compat.harness import index as index_client
from compat.harness.channels import NightlyNotFound, Resolution, nightly_date, resolve_nightly
from compat.harness.matrix import NIGHTLY_TORCHAO, Cell
from compat.harness.redact import redact
from compat.harness.results import atomic_write_text, read_json_object

__all__ = ["ResolutionFailed", "ResolvedCell", "resolve_cell"]

CACHE = ".resolved.json"


class ResolutionFailed(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


@dataclass
class ResolvedCell:
    torch: str  # exact torch version (or the requested one for a direct URL)
    torchao: str | None
    pins: list[str]
    notes: list[str] = field(default_factory=list)
    nightly: dict[str, dict[str, Any]] = field(default_factory=dict)


def _store(path: Path, key: str, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_json_object(path)
        data[key] = value
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _nightly(project: str, spec: str, *, index: str, python: str, today: date,
             cache: Path, listings: index_client.Listings) -> tuple[Resolution, str | None]:
    key = f"{redact(index)}|{project}|{spec}|{python}"
    dated = not spec.startswith("latest")
    remembered = read_json_object(cache).get(key)
    if dated and remembered:
        return Resolution(**remembered), None
    try:
        files = listings.wheels(index, project)
    except index_client.IndexUnreachable as exc:
        if remembered:
            return Resolution(**remembered), f"index unreachable, reused the last answer ({exc})"
        raise ResolutionFailed("index-unreachable", str(exc)) from None
    try:
        found = resolve_nightly(files, spec, python=python, today=today, index=redact(index))
    except NightlyNotFound as exc:
        raise ResolutionFailed("no-such-version", f"{project}: {exc}") from None
    _store(cache, key, found.__dict__)
    return found, found.note


def resolve_cell(cell: Cell, channel: Mapping[str, Any], *, envs_root: Path,
                 today: date | None = None,
                 listings: index_client.Listings | None = None) -> ResolvedCell:
    """Exact pins for torch (and torchao) from the cell's channel.

    Cells resolved with one ``listings`` (one run) read each index page once.
    """
    today = today or date.today()
    listings = listings or index_client.Listings()
    if cell.url:
        pins = [f"torch @ {cell.url}"]
        if cell.torchao and cell.torchao != NIGHTLY_TORCHAO:
            pins.append(f"torchao=={cell.torchao}")
        return ResolvedCell(cell.torch, cell.torchao, pins, [f"torch from {redact(cell.url)}"])
    if channel.get("kind") != "nightly":
        pins = [f"torch=={cell.torch}"]
        if cell.torchao:
            pins.append(f"torchao=={cell.torchao}")
        return ResolvedCell(cell.torch, cell.torchao, pins)

    index = str(channel["index-url"])
    cache = envs_root / CACHE
    torch, note = _nightly("torch", cell.torch, index=index, python=cell.python, today=today,
                           cache=cache, listings=listings)
    resolved = ResolvedCell(torch.version, None, [f"torch=={torch.version}"],
                            [n for n in [note] if n], {"torch": torch.__dict__})
    if cell.torchao is None:
        return resolved
    if cell.torchao != NIGHTLY_TORCHAO:
        resolved.torchao = cell.torchao
        resolved.pins.append(f"torchao=={cell.torchao}")
        return resolved
    day = nightly_date(Version(torch.version))
    ao, note = _nightly("torchao", str(day) if day else cell.torch, index=index,
                        python=cell.python, today=today, cache=cache, listings=listings)
    resolved.torchao = ao.version
    resolved.pins.append(f"torchao=={ao.version}")
    resolved.nightly["torchao"] = ao.__dict__
    resolved.notes += [n for n in [note] if n]
    return resolved
