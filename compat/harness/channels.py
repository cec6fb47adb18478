"""Channels: where a cell's torch comes from, and how a nightly spec becomes one version.

``release`` is the default index (plus pip's configuration). ``rc``, ``nightly`` and
``index`` name an index URL, ``wheelhouse`` a folder of wheels. A nightly is asked for by
date (``2026-11-20``), ``latest`` or ``latest-7d`` and resolved against the channel's
listing before anything is installed, so the column names an exact build.

Facts of PyTorch's nightly index handled here: it keeps only about 60 days of builds
(an older date gets a message saying so, and ``url =`` takes a direct wheel URL
instead); two builds can share a date around a version bump (the newest is taken and
the other named); listings carry no sha256 (the digest is computed on install).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from packaging.tags import Tag, compatible_tags, cpython_tags, platform_tags
from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion, Version

from compat.harness.index import IndexFile

__all__ = [
    "CHANNEL_KINDS",
    "NightlyNotFound",
    "Resolution",
    "cell_tags",
    "is_nightly_spec",
    "nightly_date",
    "resolve_nightly",
]

CHANNEL_KINDS = ("release", "rc", "nightly", "index", "wheelhouse")
_NIGHTLY = re.compile(r"^(?:latest(?:-(?P<days>\d+)d)?|(?P<date>\d{4}-\d{2}-\d{2}))$")
RETENTION_NOTE = "the nightly index keeps only about 60 days of builds"


class NightlyNotFound(LookupError):
    """No build matches the spec; the message says why and what to do instead."""


@dataclass(frozen=True)
class Resolution:
    version: str
    filename: str
    url: str
    sha256: str | None
    note: str | None = None


def is_nightly_spec(text: str) -> bool:
    """``YYYY-MM-DD`` (a real date), ``latest`` or ``latest-Nd``."""
    found = _NIGHTLY.match(text)
    if found is None:
        return False
    if found["date"]:
        try:
            date.fromisoformat(found["date"])
        except ValueError:
            return False
    return True


def nightly_date(version: Version) -> date | None:
    """``2.16.0.dev20261120+cpu`` -> 2026-11-20; None for anything else."""
    if version.dev is None:
        return None
    text = str(version.dev)
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def cell_tags(python: str) -> set[Tag]:
    """Tags a wheel may carry to install on this machine for CPython ``python``."""
    major, minor = (int(p) for p in python.split(".")[:2])
    platforms = list(platform_tags())
    tags = set(cpython_tags((major, minor), platforms=platforms))
    tags |= set(compatible_tags((major, minor), platforms=platforms))
    return tags


def _installable(files: Iterable[IndexFile], tags: set[Tag]) -> list[IndexFile]:
    return [f for f in files if parse_wheel_filename(f.filename)[3] & tags]


def resolve_nightly(files: Sequence[IndexFile], spec: str, *, python: str, today: date,
                    index: str) -> Resolution:
    """Pick the build ``spec`` means among ``files`` for this python."""
    usable = _installable(files, cell_tags(python))
    dated = sorted(((nightly_date(f.version), f) for f in usable if nightly_date(f.version)),
                   key=lambda item: (item[0], item[1].version))
    if not dated:
        detail = f"no nightly wheel for CPython {python}" if files else "no nightly builds"
        raise NightlyNotFound(f"{index}: {detail}")
    days = sorted({d for d, _ in dated if d is not None})
    try:
        exact = Version(spec)
    except InvalidVersion:
        exact = None
    if exact is not None:
        wanted = [f for _, f in dated if f.version == exact]
        if not wanted:
            raise NightlyNotFound(f"{index}: no build {spec} for CPython {python}")
        return _pick(wanted, None)
    found = _NIGHTLY.match(spec)
    if found is None:
        raise NightlyNotFound(f"{spec!r} is not a nightly spec (YYYY-MM-DD, latest, latest-Nd)")
    if found["date"]:
        day = date.fromisoformat(found["date"])
    else:
        limit = today - timedelta(days=int(found["days"] or 0))
        older = [d for d in days if d <= limit]
        if not older:
            raise NightlyNotFound(f"{index}: no build on or before {limit} (oldest is "
                                  f"{days[0]}; {RETENTION_NOTE})")
        day = older[-1]
    if day < days[0]:
        raise NightlyNotFound(
            f"{index}: nightly {day} is gone (oldest is {days[0]}; {RETENTION_NOTE}); "
            "give the wheel's URL as `url =` instead")
    same_day = [f for d, f in dated if d == day]
    if not same_day:
        before = [d for d in days if d < day][-1:]
        after = [d for d in days if d > day][:1]
        near = ", ".join(str(d) for d in [*before, *after])
        raise NightlyNotFound(f"{index}: no nightly build dated {day} (nearest: {near})")
    return _pick(same_day, day)


def _pick(candidates: Sequence[IndexFile], day: date | None) -> Resolution:
    newest = max(candidates, key=lambda f: f.version)
    versions = sorted({str(f.version) for f in candidates})
    note = None
    if len(versions) > 1:
        note = (f"{len(versions)} builds dated {day}: {', '.join(versions)}; took the newest"
                if day else None)
    return Resolution(str(newest.version), newest.filename, newest.url, newest.sha256, note)


def channel_index_args(channel: Mapping[str, Any]) -> list[str]:
    """uv flags for a channel: its index first, so torch (and torchao) come from it."""
    args: list[str] = []
    if channel.get("index-url"):
        args += ["--extra-index-url", str(channel["index-url"])]
    for link in channel.get("find-links") or ():
        args += ["--find-links", str(link)]
    return args
