"""Progress of a run: a live board in a terminal, one line per phase change in a CI log.

Both show every cell's phase (resolving, preparing, installing or reused, testing, and
its status with the time it took); the board redraws in place once a second, the log
form only ever appends, so it reads the same in a file as on a screen.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
import time
import unicodedata
from typing import TextIO

from compat.harness.redact import redact
from compat.harness.results.model import CellResult

__all__ = ["LiveBoard", "Progress", "make_progress"]


def _summary(result: CellResult) -> str:
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts().items()))
    seconds = sum(result.timings.values())
    detail = f" ({counts})" if counts else ""
    reason = f": {result.reason}" if result.reason else ""
    return f"{result.status.value} in {seconds:.1f}s{detail}{reason}"


# A newline, a tab, an escape: each would move the cursor, not take one column.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _columns(char: str) -> int:
    """The columns a terminal gives ``char``: two for an East Asian wide one (漢), else one
    (✓, ≠: one column each, as the board draws them)."""
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _fit(line: str, width: int) -> str:
    """One line of at most ``width`` columns, cut with an ellipsis: the board moves up one
    row per line it drew, so a line that wrapped would leave the board's top behind."""
    line = _CONTROL.sub(" ", redact(line))  # redacted before the cut
    used, cut = 0, 0
    for i, char in enumerate(line):
        used += _columns(char)
        if used <= width - 1:
            cut = i + 1  # what fits beside the ellipsis
        elif used > width:
            return line[: max(1, cut)] + "…"
    return line


class Progress:
    """One line per phase change: readable in a terminal and in a CI log alike."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total, self.done = total, 0
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()
        self.started = time.monotonic()

    def phase(self, cell_id: str, text: str) -> None:
        with self.lock:
            clock = time.monotonic() - self.started
            print(
                f"[{clock:7.1f}s {self.done:>2}/{self.total}] {cell_id}: {text}",
                file=self.stream,
                flush=True,
            )

    def finished(self, result: CellResult) -> None:
        with self.lock:
            self.done += 1
        self.phase(result.cell_id, _summary(result))

    def close(self) -> None:
        """Nothing to tidy for the line form."""


class LiveBoard(Progress):
    """A line per cell, redrawn in place; finished cells keep their final line."""

    def __init__(self, cell_ids: list[str], stream: TextIO | None = None) -> None:
        super().__init__(len(cell_ids), stream)
        self.rows: dict[str, tuple[str, float, bool]] = {
            cell_id: ("waiting", time.monotonic(), False) for cell_id in cell_ids
        }
        self.width = max((len(c) for c in cell_ids), default=10)
        self.drawn = 0
        self.stop = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        self.ticker.start()

    def _tick(self) -> None:
        while not self.stop.wait(1.0):
            with self.lock:
                self._draw()

    def _draw(self) -> None:
        now = time.monotonic()
        columns = shutil.get_terminal_size((100, 24)).columns
        lines = [f"compat: {self.done}/{self.total} cells done, {now - self.started:.0f}s"]
        for cell_id, (text, since, done) in self.rows.items():
            clock = "" if done or text == "waiting" else f" ({now - since:.0f}s)"
            lines.append(f"  {cell_id:<{self.width}}  {text}{clock}")
        lines = [_fit(line, columns - 1) for line in lines]  # never the last column: no wrap
        up = f"\x1b[{self.drawn}F" if self.drawn else ""
        self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
        self.stream.flush()
        self.drawn = len(lines)

    def phase(self, cell_id: str, text: str) -> None:
        with self.lock:
            self.rows[cell_id] = (text, time.monotonic(), False)
            self._draw()

    def finished(self, result: CellResult) -> None:
        with self.lock:
            self.done += 1
            self.rows[result.cell_id] = (_summary(result), time.monotonic(), True)
            self._draw()

    def close(self) -> None:
        self.stop.set()
        self.ticker.join(timeout=2)
        with self.lock:
            self._draw()


def make_progress(cell_ids: list[str], stream: TextIO | None = None) -> Progress:
    """The board on a terminal, lines otherwise (or when ``COMPAT_PROGRESS=lines``)."""
    stream = stream or sys.stdout
    live = stream.isatty() and os.environ.get("COMPAT_PROGRESS", "auto") != "lines"
    return LiveBoard(cell_ids, stream) if live and cell_ids else Progress(len(cell_ids), stream)
