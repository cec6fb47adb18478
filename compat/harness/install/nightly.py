"""A nightly spec resolved against a channel's listing: one exact build, or why there is none.

Facts of PyTorch's nightly index handled here: it keeps only about 60 days of builds
(an older date gets a message saying so, and ``url =`` takes a direct wheel URL
instead); two builds can share a date around a version bump (the newest is taken and
the other named); listings carry no sha256 (the digest is computed on install).
The spec's syntax and a build's date are the channel's declarations
(:mod:`compat.harness.config.channels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from packaging.version import InvalidVersion, Version

from compat.harness.config.channels import NIGHTLY_SPEC, nightly_date
from compat.harness.errors import ErrorKind, InstallError
from compat.harness.install.index import IndexFile
from compat.harness.install.wheel_tags import cell_tags, installable

__all__ = ["RETENTION_NOTE", "NightlyNotFound", "Resolution", "resolve_nightly"]

RETENTION_NOTE = "the nightly index keeps only about 60 days of builds"


class NightlyNotFound(InstallError, LookupError):
    """No build matches the spec; the message says why and what to do instead."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.NO_SUCH_VERSION, message)


@dataclass(frozen=True)
class Resolution:
    version: str
    filename: str
    url: str
    sha256: str | None
    note: str | None = None


def resolve_nightly(
    files: Sequence[IndexFile], spec: str, *, python: str, today: date, index: str
) -> Resolution:
    """Pick the build ``spec`` means among ``files`` for this python."""
    usable = installable(files, cell_tags(python))
    dated = sorted(
        ((nightly_date(f.version), f) for f in usable if nightly_date(f.version)),
        key=lambda item: (item[0], item[1].version),
    )
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
    found = NIGHTLY_SPEC.match(spec)
    if found is None:
        raise NightlyNotFound(f"{spec!r} is not a nightly spec (YYYY-MM-DD, latest, latest-Nd)")
    if found["date"]:
        day = date.fromisoformat(found["date"])
    else:
        limit = today - timedelta(days=int(found["days"] or 0))
        older = [d for d in days if d <= limit]
        if not older:
            raise NightlyNotFound(
                f"{index}: no build on or before {limit} (oldest is {days[0]}; {RETENTION_NOTE})"
            )
        day = older[-1]
    if day < days[0]:
        raise NightlyNotFound(
            f"{index}: nightly {day} is gone (oldest is {days[0]}; {RETENTION_NOTE}); "
            "give the wheel's URL as `url =` instead"
        )
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
        note = (
            f"{len(versions)} builds dated {day}: {', '.join(versions)}; took the newest"
            if day
            else None
        )
    return Resolution(str(newest.version), newest.filename, newest.url, newest.sha256, note)
