"""Registry of the routes the shims took and the warnings torch emitted on the way.

The pytest plugin imports this module at session end and copies :func:`routes` and
:func:`warnings_seen` into the cell's result JSON, so it must stay import-light (no torch).
Warnings are *recorded*, never raised: a torch deprecation is evidence for the grid, not a
failure of the test core, even when pytest runs with ``-W error``.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Dict, Iterator, List

__all__ = [
    "adaptations",
    "adapted",
    "capture_warnings",
    "record",
    "record_warning",
    "reset",
    "routes",
    "warnings_seen",
]

_ROUTES: Dict[str, str] = {}
_ADAPTED: Dict[str, str] = {}
_WARNINGS: List[str] = []


def record(key: str, value: str) -> None:
    """Remember that shim ``key`` took route ``value`` (last write wins)."""
    _ROUTES[str(key)] = str(value)


def adapted(key: str, how: str) -> None:
    """Say that route ``key`` departs from upstream's own call at this version, and how.

    The grid marks the route "adapted" so a reader knows which green cells rest on it.
    """
    _ADAPTED[str(key)] = str(how)


def adaptations() -> Dict[str, str]:
    """Every adaptation recorded so far: route key -> how it differs from upstream."""
    return {k: _ADAPTED[k] for k in sorted(_ADAPTED)}


def routes() -> Dict[str, str]:
    """A copy of every route recorded so far, keys sorted for stable reports."""
    return {k: _ROUTES[k] for k in sorted(_ROUTES)}


def record_warning(message: str) -> None:
    """Remember one warning text once (duplicates are dropped, order is kept)."""
    if message not in _WARNINGS:
        _WARNINGS.append(message)


def warnings_seen() -> List[str]:
    """Warnings seen while the shims called into torch / torchao, as ``Category: text``."""
    return list(_WARNINGS)


def reset() -> None:
    """Forget everything (for tests of the shims themselves)."""
    _ROUTES.clear()
    _ADAPTED.clear()
    del _WARNINGS[:]


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


@contextlib.contextmanager
def capture_warnings(where: str = "") -> Iterator[None]:
    """Run a block with every warning recorded instead of shown or raised.

    ``catch_warnings`` swaps the filter list for the block, so ``-W error`` and
    ``filterwarnings = error`` cannot turn a torch deprecation into an exception here.
    """
    prefix = f"[{where}] " if where else ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                text = _first_line(str(w.message))
                record_warning(f"{prefix}{w.category.__name__}: {text}")
