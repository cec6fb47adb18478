"""Turn a cell's request into exact pins before anything is installed.

Releases, RCs and wheelhouse builds are already exact (``torch==2.9.0`` from the
channel's index). Nightlies are looked up on the channel's listing; a dated spec is
remembered in ``<envs>/.resolved.json`` so that a warm rerun needs no network, while
``latest`` asks the index once per run (and falls back to the last answer, saying so,
when the index cannot be reached).

With ``deps-as-of`` set, the cell also gets a cutoff for its other packages (uv's
``--exclude-newer``): a fixed time, or when the cell's torch (and torchao) came out, so
that an old torch is tested with the numpy and pytest of its day, not of today's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from compat.harness.config.channels import Channel, nightly_date
from compat.harness.config.matrix import DEPS_AS_OF_TORCH, NIGHTLY_TORCHAO, Cell
from compat.harness.errors import ErrorKind, InstallError
from compat.harness.files import atomic_write_text, read_json_object
from compat.harness.install import index as index_client
from compat.harness.install.nightly import NightlyNotFound, Resolution, resolve_nightly
from compat.harness.locations import resolved_file
from compat.harness.processes import file_lock
from compat.harness.redact import redact

__all__ = ["ResolutionFailed", "ResolvedCell", "deps_cutoff", "resolve_cell", "rfc3339"]


class ResolutionFailed(InstallError):
    """The channel cannot name the cell's build: no such version, or no index to ask."""


@dataclass
class ResolvedCell:
    torch: str  # exact torch version (or the requested one for a direct URL)
    torchao: str | None
    pins: list[str]
    notes: list[str] = field(default_factory=list)
    nightly: dict[str, Resolution] = field(default_factory=dict)  # project -> listed build
    deps_cutoff: str | None = None  # RFC 3339 UTC time for uv's --exclude-newer, or no cutoff


def _store(path: Path, key: str, value: dict[str, Any]) -> None:
    """Add ``key`` to the JSON file ``path`` under its lock (the wait ends at a stop)."""
    with file_lock(path.with_suffix(".lock"), exclusive=True):
        data = read_json_object(path)
        data[key] = value
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _nightly(
    project: str,
    spec: str,
    *,
    index: str,
    python: str,
    today: date,
    cache: Path,
    listings: index_client.Listings,
) -> tuple[Resolution, str | None]:
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
        raise ResolutionFailed(ErrorKind.INDEX_UNREACHABLE, str(exc)) from None
    try:
        found = resolve_nightly(files, spec, python=python, today=today, index=redact(index))
    except NightlyNotFound as exc:
        raise ResolutionFailed(ErrorKind.NO_SUCH_VERSION, f"{project}: {exc}") from None
    _store(cache, key, found.__dict__)
    return found, found.note


def resolve_cell(
    cell: Cell,
    channel: Channel,
    *,
    envs_root: Path,
    today: date | None = None,
    listings: index_client.Listings | None = None,
    deps_as_of: str | None = None,
) -> ResolvedCell:
    """Exact pins for torch (and torchao) from the cell's channel, and the deps cutoff.

    Cells resolved with one ``listings`` (one run) read each index page once.
    """
    listings = listings or index_client.Listings()
    resolved = _pins(
        cell, channel, envs_root=envs_root, today=today or date.today(), listings=listings
    )
    if deps_as_of:
        resolved.deps_cutoff, note = deps_cutoff(
            deps_as_of, resolved, channel, envs_root=envs_root, listings=listings
        )
        resolved.notes += [note] if note else []
    return resolved


def _pins(
    cell: Cell, channel: Channel, *, envs_root: Path, today: date, listings: index_client.Listings
) -> ResolvedCell:
    if cell.url:
        pins = [f"torch @ {cell.url}"]
        if cell.torchao and cell.torchao != NIGHTLY_TORCHAO:
            pins.append(f"torchao=={cell.torchao}")
        return ResolvedCell(cell.torch, cell.torchao, pins, [f"torch from {redact(cell.url)}"])
    if not channel.is_nightly:
        pins = [f"torch=={cell.torch}"]
        if cell.torchao:
            pins.append(f"torchao=={cell.torchao}")
        return ResolvedCell(cell.torch, cell.torchao, pins)

    index = channel.index_url
    if index is None:  # the matrix loader requires one: a channel made by hand
        raise ResolutionFailed(
            ErrorKind.NO_SUCH_VERSION, f"nightly channel {channel.name!r} names no index-url"
        )
    cache = resolved_file(envs_root)
    torch, note = _nightly(
        "torch",
        cell.torch,
        index=index,
        python=cell.python,
        today=today,
        cache=cache,
        listings=listings,
    )
    resolved = ResolvedCell(
        torch.version, None, [f"torch=={torch.version}"], [n for n in [note] if n], {"torch": torch}
    )
    if cell.torchao is None:
        return resolved
    if cell.torchao != NIGHTLY_TORCHAO:
        resolved.torchao = cell.torchao
        resolved.pins.append(f"torchao=={cell.torchao}")
        return resolved
    day = nightly_date(Version(torch.version))
    ao, note = _nightly(
        "torchao",
        str(day) if day else cell.torch,
        index=index,
        python=cell.python,
        today=today,
        cache=cache,
        listings=listings,
    )
    resolved.torchao = ao.version
    resolved.pins.append(f"torchao=={ao.version}")
    resolved.nightly["torchao"] = ao
    resolved.notes += [n for n in [note] if n]
    return resolved


def rfc3339(moment: datetime) -> str:
    """``2024-03-27T21:07:13Z``: UTC, whole seconds rounded up (so the moment is included)."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), timezone.utc)


def _fixed_cutoff(text: str) -> datetime:
    """A date means the end of that day (UTC); a time without an offset is UTC.

    uv would read a bare date in the machine's time zone: made explicit, the cutoff (and
    so the env key) is the same on every machine.
    """
    try:
        return _end_of(date.fromisoformat(text))
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _released_at(
    project: str, version: str, channel: Channel, *, cache: Path, listings: index_client.Listings
) -> datetime | None:
    """When ``version`` of ``project`` came out on the index it is installed from.

    A nightly's date is in its version (PyTorch's HTML pages carry no upload times): the
    end of that day. Otherwise the channel's index if it lists the project (uv's
    first-index rule), else the default index; a found time never changes, so it is
    remembered and a warm rerun needs no network.
    """
    day = nightly_date(Version(version))
    if day is not None:
        return _end_of(day)
    index = channel.index_url
    key = f"deps-as-of|{redact(index) if index else 'default'}|{project}|{version}"
    remembered = read_json_object(cache).get(key)
    if remembered:
        return datetime.fromisoformat(remembered["upload_time"])
    files = listings.wheels(index, project) if index else []
    files = files or listings.wheels(None, project)
    found = index_client.released_at(files, version)
    if found is not None:
        _store(cache, key, {"upload_time": found.isoformat()})
    return found


def deps_cutoff(
    deps_as_of: str,
    resolved: ResolvedCell,
    channel: Channel,
    *,
    envs_root: Path,
    listings: index_client.Listings,
) -> tuple[str | None, str | None]:
    """The ``--exclude-newer`` time for the cell's other packages, and a note when none.

    ``torch-release``: when the cell's torch came out, or its torchao if that came later
    (a torchao release needs the deps of its own day). No known time is no cutoff, said
    in a note: the cell still runs, with today's deps.
    """
    if deps_as_of != DEPS_AS_OF_TORCH:
        return rfc3339(_fixed_cutoff(deps_as_of)), None
    times = []
    for project, version in [("torch", resolved.torch), ("torchao", resolved.torchao)]:
        if version is None:
            continue
        where = redact(channel.index_url or "the index")
        try:
            found = _released_at(
                project, version, channel, cache=resolved_file(envs_root), listings=listings
            )
        except InvalidVersion:  # a direct URL cell may name no exact version
            found = None
        except index_client.IndexUnreachable as exc:
            found, where = None, f"{where} ({exc})"
        if found is None:
            return None, (
                f"deps-as-of: no upload time for {project} {version} on {where}; "
                "deps resolved as of today"
            )
        times.append(found)
    return rfc3339(max(times)), None
