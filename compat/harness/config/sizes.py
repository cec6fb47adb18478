"""Sizes as people write them (``30G``, ``500M``, ``1.5TiB``): binary units, as ``du -h``."""

from __future__ import annotations

import re

__all__ = ["format_size", "parse_size"]

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int | None:
    """Bytes, or ``None`` when ``text`` is not a size (the caller names the key)."""
    found = _SIZE.fullmatch(text)
    if found is None:
        return None
    return int(float(found[1]) * _UNITS[found[2].upper()])


def format_size(size: int) -> str:
    """``31.2 GiB``, ``512 MiB``: GiB from one GiB up, else MiB."""
    if size >= 2**30:
        return f"{size / 2**30:.1f} GiB"
    return f"{size / 2**20:.0f} MiB"
