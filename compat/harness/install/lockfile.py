"""Which wheel an env really got: the resolved ``pylock.toml`` matched to installed tags.

Locks are read and validated by ``packaging.pylock`` (PEP 751). Installing from a lock
needs a valid one (:class:`LockInvalid`); sizing and recording read a bad or missing lock
as empty.

A lock lists every wheel of a version (all platform variants); the installed
distribution's ``WHEEL`` file names the tags it was built for, which picks one.
RC wheels carry the final version number, so the file name and sha256 are what make
a column reproducible, not the version alone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from email.parser import HeaderParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.pylock import (
    Package,
    PackageArchive,
    PackageWheel,
    Pylock,
    PylockUnsupportedVersionError,
    PylockValidationError,
)
from packaging.tags import Tag, parse_tag
from packaging.utils import canonicalize_name

from compat.harness.install.wheel_tags import fits
from compat.harness.locations import SITE_PACKAGES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "LOCK",
    "LockInvalid",
    "LockedWheel",
    "installed_tags",
    "installed_wheels",
    "locked_pins",
    "read_lock",
    "read_packages",
    "wheel_for",
]

LOCK = "pylock.toml"  # the lock's file name, in an env and in a prefetch folder


@dataclass
class LockedWheel:
    """One wheel of a lock entry: what is downloaded, checked and recorded for a column."""

    file: str
    sha256: str  # "" when the index gave none
    url: str  # as the lock has it; every report and result file is redacted
    index: str
    size: str  # "" when the lock gives none
    version: str = ""  # the package's, set for an installed wheel
    sha256_source: str | None = None  # how the sha256 was had when the index gave none

    def to_dict(self) -> dict[str, str]:
        """As an env's stamp file records it."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LockedWheel:
        """From an env's stamp file (written by :meth:`to_dict`)."""
        known = {f.name for f in fields(cls)}
        given = {k: str(v) for k, v in data.items() if k in known and v is not None}
        return cls(**{"file": "", "sha256": "", "url": "", "index": "", "size": "", **given})


class LockInvalid(ValueError):
    """A lock that cannot be read, or that PEP 751 refuses."""


def read_lock(lock: Path) -> list[Package]:
    """The ``[[packages]]`` of a ``pylock.toml``; :class:`LockInvalid` if it has none to give."""
    try:
        data = tomllib.loads(lock.read_text(encoding="utf-8"))
        return list(Pylock.from_dict(data).packages)
    except (
        OSError,
        tomllib.TOMLDecodeError,
        PylockValidationError,
        PylockUnsupportedVersionError,
    ) as exc:
        raise LockInvalid(f"{lock}: {exc}") from None


def read_packages(lock: Path) -> list[Package]:
    """The ``[[packages]]`` of a ``pylock.toml`` (none when it is missing or invalid)."""
    try:
        return read_lock(lock)
    except LockInvalid:
        return []


def locked_pins(lock: Path) -> list[str]:
    """``name==version`` for every package of the lock (the complete, resolved set);
    ``name @ url`` for a package locked to a direct URL (``archive``); ``-e path`` for the
    repository itself (``directory``, install-project).
    :class:`LockInvalid` when the lock is unreadable or invalid: nothing to install from."""
    pins = []
    for package in read_lock(lock):
        if package.directory is not None:  # install-project: the repository, editable
            editable = "-e " if package.directory.editable else ""
            pins.append(f"{editable}{package.directory.path}")
        elif package.archive is not None and package.archive.url:
            pins.append(f"{package.name} @ {package.archive.url}")
        elif package.version is not None:
            pins.append(f"{package.name}=={package.version}")
    return pins


def installed_tags(env_dir: Path, name: str) -> set[Tag]:
    """Tags from ``<name>-*.dist-info/WHEEL`` in the env's site-packages."""
    wanted = canonicalize_name(name)
    for wheel in env_dir.glob(f"{SITE_PACKAGES}/*.dist-info/WHEEL"):
        dist = wheel.parent.name.removesuffix(".dist-info").split("-", 1)[0]
        if canonicalize_name(dist) != wanted:
            continue
        headers = HeaderParser().parsestr(wheel.read_text(encoding="utf-8"))
        tags: set[Tag] = set()
        for tag in headers.get_all("Tag") or []:
            tags |= parse_tag(tag)
        return tags
    return set()


def wheel_for(package: Package, tags: set[Tag]) -> LockedWheel | None:
    """The lock entry's wheel built for ``tags`` (the first wheel when tags are unknown)."""
    wheels: list[PackageWheel | PackageArchive] = list(package.wheels or [])
    if package.archive is not None:  # a direct URL requirement
        wheels.append(package.archive)
    for wheel in wheels:
        url = str(wheel.url or wheel.path or "")
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        if not fits(filename, tags or None):
            continue
        parts = urlsplit(url)
        index = f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}://"
        return LockedWheel(
            file=unquote(filename),
            sha256=str(wheel.hashes.get("sha256", "")),
            url=url,
            index=index if parts.scheme != "file" else url.rsplit("/", 1)[0],
            size="" if wheel.size is None else str(wheel.size),
        )
    return None


def installed_wheels(env_dir: Path, lock: Path, names: Iterable[str]) -> dict[str, LockedWheel]:
    """For each of ``names`` present in the lock: the wheel the env has, with its version."""
    wanted = {canonicalize_name(n) for n in names}
    found: dict[str, LockedWheel] = {}
    for package in read_packages(lock):
        name = canonicalize_name(package.name)
        if name not in wanted:
            continue
        wheel = wheel_for(package, installed_tags(env_dir, name))
        if wheel is not None:
            wheel.version = "" if package.version is None else str(package.version)
            found[name] = wheel
    return found
