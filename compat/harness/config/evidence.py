"""The evidence an applicability rule rests on, and its check against an installed env.

A rule that rules a cell out is a claim about files in a wheel ("torch 2.6 has no
``torch/_inductor/freezing_utils.py``"). When some env of the matrix already holds that
wheel, the claim is checked by reading the file (never importing torch), so a wrong rule
shows up as *contradicted* instead of silently hiding a cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from compat.harness.locations import SITE_PACKAGES

__all__ = ["CONFIRMED", "CONTRADICTED", "UNCHECKED", "Check", "Evidence", "FileProbe", "confirm"]

CONFIRMED = "confirmed"
CONTRADICTED = "contradicted"
UNCHECKED = "unchecked"


@dataclass(frozen=True)
class FileProbe:
    """``path`` inside the installed ``dist`` of ``version``'s series is (not) there, or
    (does not) contain ``pattern``."""

    dist: str
    version: str
    path: str
    pattern: str | None = None
    present: bool = True

    def describe(self) -> str:
        what = f"{self.path} contains /{self.pattern}/" if self.pattern else f"{self.path} exists"
        return f"{self.dist} {self.version}: {what}" + ("" if self.present else ": expected not")


@dataclass(frozen=True)
class Evidence:
    """Why a rule holds: the claim, where it was read, and how to check it in an env."""

    claim: str
    source: str
    probe: FileProbe | None = None


@dataclass(frozen=True)
class Check:
    verdict: str  # CONFIRMED, CONTRADICTED or UNCHECKED
    detail: str


def _series(text: str) -> tuple[int, ...] | None:
    try:
        return Version(text).release[:2]
    except InvalidVersion:
        return None


def installed(envs_root: Path, dist: str, version: str) -> Path | None:
    """The site-packages of some env under ``envs_root`` holding ``dist`` of that series."""
    wanted = _series(version)
    prefix = dist.replace("-", "_").lower() + "-"
    for info in sorted(envs_root.glob(f"*/{SITE_PACKAGES}/*.dist-info")):
        name = info.name.lower()
        if not name.startswith(prefix):
            continue
        found = name[len(prefix) :].removesuffix(".dist-info")
        if wanted is not None and _series(found) == wanted:
            return info.parent
    return None


def confirm(evidence: Evidence, envs_root: Path) -> Check:
    """Check ``evidence`` in an installed env when one holds the wheel it talks about."""
    probe = evidence.probe
    if probe is None:
        return Check(UNCHECKED, "no file to check (the rule rests on the index listing)")
    site = installed(envs_root, probe.dist, probe.version)
    if site is None:
        return Check(UNCHECKED, f"no installed env holds {probe.dist} {probe.version}")
    target = site / probe.path
    try:
        found = target.is_file() and (
            probe.pattern is None
            or re.search(probe.pattern, target.read_text(encoding="utf-8", errors="replace"))
            is not None
        )
    except OSError as exc:
        return Check(UNCHECKED, f"cannot read {target}: {exc}")
    where = f"{probe.describe()} (read {target})"
    if found == probe.present:
        return Check(CONFIRMED, where)
    return Check(CONTRADICTED, f"{where}: it does {'not ' if probe.present else ''}hold")
