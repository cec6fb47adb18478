"""Wide tables for a terminal: the cell columns split into bands that fit its width.

A matrix has a column per cell, so its tables outgrow any terminal; wrapped lines make
a grid unreadable. Each band repeats the label column and is titled with the cells it
holds. tabulate draws every band.
"""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from compat.harness.reports.terminal import visible_len

__all__ = ["render_banded"]


def _column_width(header: str, values: Sequence[str]) -> int:
    """As tabulate's "simple" format sizes it: headers get two characters of padding."""

    def widest(texts: Sequence[str]) -> int:
        return max((visible_len(line) for text in texts for line in text.split("\n")), default=0)

    return max(widest(values), widest([header]) + 2)


def _bands(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[range]:
    """Cell columns (``headers[1:]``) grouped so that each band's table fits ``width``;
    a single cell wider than ``width`` still gets a band of its own."""
    label = _column_width(headers[0], [row[0] for row in rows])
    bands: list[range] = []
    start, used = 0, label
    for j, header in enumerate(headers[1:]):
        column = 2 + _column_width(header, [row[j + 1] for row in rows])
        if j > start and used + column > width:
            bands.append(range(start, j))
            start, used = j, label
        used += column
    bands.append(range(start, len(headers) - 1))
    return bands


def render_banded(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None,
    align: str = "center",
) -> str:
    """One table (``width`` None), or bands titled "cells 1-9 of 23" that fit ``width``."""
    n = len(headers) - 1
    bands = _bands(headers, rows, width) if width else [range(n)]
    blocks: list[str] = []
    for band in bands:
        table = tabulate(
            [[row[0], *(row[j + 1] for j in band)] for row in rows],
            headers=[headers[0], *(headers[j + 1] for j in band)],
            tablefmt="simple",
            colalign=("left", *[align] * len(band)),
            disable_numparse=True,
        )
        if len(bands) > 1:
            span = f"{band.start + 1}-{band.stop}" if len(band) > 1 else f"{band.start + 1}"
            table = f"cells {span} of {n}\n{table}"
        blocks.append(table)
    return "\n\n".join(blocks)
