from __future__ import annotations

import io
import re
import unicodedata

import pytest

from compat.harness.execute.progress import LiveBoard, Progress, make_progress
from compat.harness.results.model import CellStatus

from .factories import cell_result


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_in_a_log_board_on_a_terminal() -> None:
    assert type(make_progress(["a"], io.StringIO())) is Progress
    board = make_progress(["a"], Terminal())
    assert isinstance(board, LiveBoard)
    board.close()


def test_board_redraws_in_place_and_keeps_final_lines() -> None:
    term = Terminal()
    ids = ["torch2.8.0-torch.ao-py3.11", "torch2.13.0-torch.ao-py3.11"]
    board = LiveBoard(ids, term)
    board.phase(ids[0], "testing")
    board.finished(cell_result("2.8.0", status=CellStatus.FAILED, reason="1 test(s) failed"))
    board.finished(cell_result("2.13.0", status=CellStatus.NOT_APPLICABLE, reason="gone"))
    board.close()
    text = term.getvalue()
    assert "\x1b[3F" in text  # moved up over its own three lines to redraw
    last = text.rsplit("\x1b[3F", 1)[-1]
    assert "2/2 cells done" in last
    assert "torch2.8.0-torch.ao-py3.11   failed in 0.0s: 1 test(s) failed" in last
    assert "torch2.13.0-torch.ao-py3.11  not-applicable in 0.0s: gone" in last


def test_board_lines_never_wrap_past_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrapped line takes two rows, and the redraw would then climb too few."""
    monkeypatch.setenv("COLUMNS", "60")
    term = Terminal()
    board = LiveBoard(["torch2.8.0-torch.ao-py3.11"], term)
    board.finished(cell_result("2.8.0", status=CellStatus.FAILED, reason="x" * 500 + "\nmore"))
    board.close()
    frames = [f for f in term.getvalue().split("\x1b[2K") if f]
    assert frames
    lines = [f.split("\x1b[")[0].rstrip("\n") for f in frames]
    assert all(len(line) <= 59 and "\n" not in line for line in lines), lines
    assert any(line.endswith("…") for line in lines)


def columns(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in line)


def test_board_counts_terminal_columns_not_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    """✓ takes one column and 漢 two; a tab or an escape in a reason is flattened: each line
    still fits, and only the board's own escapes move the cursor."""
    monkeypatch.setenv("COLUMNS", "40")
    term = Terminal()
    board = LiveBoard(["c"], term)
    board.phase("c", "✓" * 60)
    board.phase("c", "漢" * 60)
    board.phase("c", "a\tb\x1b[2Jc\x1b[1A " * 10)
    board.close()
    text = re.sub(r"\x1b\[(\d+F|2K)", "\x00", term.getvalue())  # the board's own escapes
    assert "\x1b" not in text
    assert "\t" not in text
    lines = [ln for ln in text.replace("\x00", "").split("\n") if ln]
    assert all(columns(line) <= 39 for line in lines), lines
    ticks = next(ln for ln in lines if "✓" in ln)
    assert columns(ticks) == 39  # cut at the width, not at half of it
    assert ticks.endswith("✓…")
    wide = next(ln for ln in lines if "漢" in ln)
    assert columns(wide) in (38, 39)  # a wide character is never split
    assert wide.endswith("漢…")


def test_log_lines_carry_clock_count_and_status() -> None:
    log = io.StringIO()
    progress = Progress(1, log)
    progress.phase("c", "testing")
    progress.finished(cell_result("2.8.0"))
    lines = log.getvalue().splitlines()
    assert lines[0].endswith("0/1] c: testing")
    assert lines[1].endswith("1/1] torch2.8.0-torch.ao-py3.11: passed in 0.0s")
