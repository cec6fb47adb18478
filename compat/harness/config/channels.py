"""Channels: where a cell's torch comes from, declared in the matrix.

``release`` is the default index (plus pip's configuration). ``rc``, ``nightly`` and
``index`` name an index URL, ``wheelhouse`` a folder of wheels. A nightly is asked for by
date (``2026-11-20``), ``latest`` or ``latest-7d``; which build that is gets decided
against the channel's listing before anything is installed
(:mod:`compat.harness.install.nightly`), so the column names an exact build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from packaging.version import Version

__all__ = [
    "CHANNEL_KINDS",
    "NIGHTLY_SPEC",
    "RELEASE",
    "Channel",
    "is_nightly_spec",
    "nightly_date",
]

CHANNEL_KINDS = ("release", "rc", "nightly", "index", "wheelhouse")
RELEASE = "release"


@dataclass(frozen=True)
class Channel:
    """A ``[channels.<name>]`` table, validated (``index-url`` and ``find-links`` in TOML)."""

    name: str
    kind: str = RELEASE
    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    gating: bool = True  # the default of the channel's cells (a nightly's is False)

    @property
    def is_nightly(self) -> bool:
        """Asked for by date or ``latest``, resolved against the channel's listing."""
        return self.kind == "nightly"

    def index_args(self) -> list[str]:
        """uv flags for the channel: its index first, so torch (and torchao) come from it."""
        args: list[str] = []
        if self.index_url:
            args += ["--extra-index-url", self.index_url]
        for link in self.find_links:
            args += ["--find-links", link]
        return args


NIGHTLY_SPEC = re.compile(r"^(?:latest(?:-(?P<days>\d+)d)?|(?P<date>\d{4}-\d{2}-\d{2}))$")


def is_nightly_spec(text: str) -> bool:
    """``YYYY-MM-DD`` (a real date), ``latest`` or ``latest-Nd``."""
    found = NIGHTLY_SPEC.match(text)
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
