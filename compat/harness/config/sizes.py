"""Sizes as people write them (``30G``, ``500M``, ``1.5TiB``): binary units, as ``du -h``.

The one parser of sizes, for the matrix file and the command line alike:

>>> parse_size("30G") == 30 * 2**30
True
>>> parse_size("500 MiB") == 500 * 2**20
True
>>> parse_size("1.5T") == int(1.5 * 2**40)
True
>>> parse_size("123")
123
>>> parse_size("lots") is None
True
"""

from __future__ import annotations

import re

from compat.harness.errors import UsageError

__all__ = ["MIN_BUDGET", "budget_problem", "format_size", "parse_size", "parse_size_option"]

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", re.IGNORECASE)
MIN_BUDGET = 2**20  # a disk budget below 1 MiB is a slip of the unit, not a budget


def parse_size(text: str) -> int | None:
    """Bytes, or ``None`` when ``text`` is not a size (the caller names the key).

    >>> parse_size("1k"), parse_size("2KiB"), parse_size(" 3 kb ")
    (1024, 2048, 3072)
    >>> parse_size("-1G") is None, parse_size("1 GB extra") is None
    (True, True)
    """
    found = _SIZE.fullmatch(text)
    if found is None:
        return None
    return int(float(found[1]) * _UNITS[found[2].upper()])


def parse_size_option(text: str, option: str) -> int:
    """A size given to a command-line ``option``, in bytes; else a one-line usage error.

    >>> parse_size_option("40G", "--cache-budget") == 40 * 2**30
    True
    >>> parse_size_option("lots", "--cache-budget")
    Traceback (most recent call last):
    ...
    compat.harness.errors.UsageError: --cache-budget 'lots': expected a size such as 40G or 500M
    """
    size = parse_size(text)
    if size is None:
        raise UsageError(f"{option} {text!r}: expected a size such as 40G or 500M")
    return size


def budget_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a disk budget (the caller says where it was given);
    None when it is one.

    >>> budget_problem("30G") is None
    True
    >>> budget_problem("1K")
    'is 1 KiB, under the least disk budget (1 MiB): a size such as "30G"'
    >>> budget_problem("0")
    'is 0 bytes, under the least disk budget (1 MiB): a size such as "30G"'
    >>> budget_problem("lots")
    'is not a size such as "30G"'
    """
    size = parse_size(text)
    if size is None:
        return 'is not a size such as "30G"'
    if size < MIN_BUDGET:
        return (
            f"is {_small(size)}, under the least disk budget ({format_size(MIN_BUDGET)}): "
            'a size such as "30G"'
        )
    return None


def _small(size: int) -> str:
    return f"{size} bytes" if size < 2**10 else f"{size / 2**10:.0f} KiB"


def format_size(size: int) -> str:
    """``31.2 GiB``, ``512 MiB``: GiB from one GiB up, else MiB.

    >>> format_size(int(31.2 * 2**30)), format_size(512 * 2**20)
    ('31.2 GiB', '512 MiB')
    """
    if size >= 2**30:
        return f"{size / 2**30:.1f} GiB"
    return f"{size / 2**20:.0f} MiB"
