"""Which wheels install for a cell: its CPython's tags on this machine, and the one filter.

Nightly resolution, bisection candidates, prefetch and the lock reader all ask the same
question of a wheel file name, answered here once.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.tags import Tag, compatible_tags, cpython_tags, platform_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from compat.harness.install.index import IndexFile

__all__ = ["cell_tags", "fits", "installable"]


def cell_tags(python: str) -> set[Tag]:
    """Tags a wheel may carry to install on this machine for CPython ``python``."""
    major, minor = (int(p) for p in python.split(".")[:2])
    platforms = list(platform_tags())
    tags = set(cpython_tags((major, minor), platforms=platforms))
    tags |= set(compatible_tags((major, minor), platforms=platforms))
    return tags


def fits(filename: str, tags: set[Tag] | None) -> bool:
    """``filename`` is a wheel built for one of ``tags`` (any wheel when ``tags`` is None)."""
    try:
        wheel_tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return False
    return tags is None or bool(wheel_tags & tags)


def installable(files: Iterable[IndexFile], tags: set[Tag]) -> list[IndexFile]:
    """The listed wheels built for one of ``tags``."""
    return [f for f in files if fits(f.filename, tags)]
