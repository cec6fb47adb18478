"""Colour in a terminal (none under NO_COLOR or in a pipe) and word-boundary wrapping."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.config.matrix import Matrix
from compat.harness.reports.console import render_console
from compat.harness.reports.grid import LEGEND, build_grid
from compat.harness.reports.terminal import ANSI, use_colour, visible_len, wrap
from compat.harness.results.model import CellStatus, Outcome

from .factories import cell_result

ROOT = Path(__file__).resolve().parents[2]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "environ", "expected"),
    [
        (Tty(), {"TERM": "xterm-256color"}, True),
        (Tty(), {"TERM": "xterm", "NO_COLOR": "1"}, False),
        (Tty(), {"TERM": "dumb"}, False),
        (io.StringIO(), {"TERM": "xterm"}, False),  # a pipe
        (io.StringIO(), {"FORCE_COLOR": "1"}, True),
        (Tty(), {"NO_COLOR": ""}, True),  # set but empty: no-color.org says it does not count
    ],
)
def test_when_to_colour(stream: io.StringIO, environ: dict[str, str], expected: bool) -> None:
    assert use_colour(stream, environ) is expected


def grid_of_two():  # type: ignore[no-untyped-def]
    return build_grid(
        [
            cell_result(
                "2.8.0",
                outcomes={"test_a": Outcome.PASSED, "test_b": Outcome.FAILED},
                status=CellStatus.FAILED,
                reason="1 test(s) failed unexpectedly",
            ),
            cell_result("2.10.0", outcomes={"test_a": Outcome.PASSED, "test_b": Outcome.PASSED}),
        ]
    )


def test_coloured_symbols_keep_the_table_aligned() -> None:
    plain = render_console(grid_of_two(), width=120)
    coloured = render_console(grid_of_two(), width=120, colour_on=True)
    assert "\x1b[32m✓\x1b[0m" in coloured  # passed: green
    assert "\x1b[1;31m✗\x1b[0m" in coloured  # failed: red
    assert "\x1b[" not in plain
    assert ANSI.sub("", coloured) == plain  # the same text and layout, only coloured
    row = coloured.splitlines()[4]
    assert row.startswith("test_a")
    assert visible_len(row) == len(plain.splitlines()[4]) < len(row)


def test_the_legend_wraps_at_word_boundaries_at_120_columns() -> None:
    text = render_console(grid_of_two(), width=120, wrap_width=120)
    start = text.index(LEGEND[:8])
    legend = text[start:].split("\n\n", 1)[0].splitlines()
    assert len(legend) > 1
    assert all(len(line) <= 120 for line in legend)
    assert " ".join(line.strip() for line in legend).split() == LEGEND.split()  # no word cut


def test_a_word_longer_than_the_width_stays_whole() -> None:
    long = "x" * 50
    assert wrap(f"  a b {long}", 20) == ["  a b", f"      {long}"]
    assert wrap("short", None) == ["short"]


def _run_in(tmp_path: Path, matrix: Matrix, out: str, *, tty: bool, environ: dict[str, str]) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COMPAT_STUB_ENV": "1",
        "COMPAT_PROGRESS": "lines",
        "COMPAT_ENVS_DIR": str(tmp_path / "envs"),
        "COLUMNS": "120",
        "TERM": "xterm",
        **environ,
    }
    for key in ("NO_COLOR", "FORCE_COLOR"):
        if key not in environ:
            env.pop(key, None)
    args = [sys.executable, "-m", "tests.harness.cli_stub", "matrix"]
    args += ["--matrix", str(matrix.path), "--out", str(tmp_path / out)]
    if not tty:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        return done.stdout
    leader, follower = pty.openpty()
    with subprocess.Popen(args, env=env, stdout=follower, stderr=subprocess.DEVNULL) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=300)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_the_command_colours_a_terminal_only(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    matrix = cell_world("plain", versions=("2.8.0",))
    in_terminal = _run_in(tmp_path, matrix, "tty", tty=True, environ={})
    assert "\x1b[32m✓\x1b[0m" in in_terminal
    legend = [ln for ln in in_terminal.splitlines() if ln.startswith("✓ passed")]
    assert legend
    assert all(len(ln.rstrip()) <= 120 for ln in legend)
    no_colour = _run_in(tmp_path, matrix, "no-colour", tty=True, environ={"NO_COLOR": "1"})
    assert "✓" in no_colour
    assert "\x1b[" not in no_colour
    piped = _run_in(tmp_path, matrix, "piped", tty=False, environ={})
    assert "✓" in piped
    assert "\x1b[" not in piped
