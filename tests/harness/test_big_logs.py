"""A cell whose tests print hundreds of megabytes on one line: its pytest.log is redacted
in bounded pieces (a secret across a piece boundary still redacted) and capped at
``files.LOG_CAP``, its head and tail kept with a line saying what was cut.
"""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness import files
from compat.harness.commands import cli
from compat.harness.config.matrix import Matrix
from compat.harness.redact import redact

ROOT = Path(__file__).resolve().parents[2]
SECRET = "https://user:hunter2secret@private.invalid/simple"
CELL = "torch2.8.0-torch.ao-py3.11"


def test_a_cell_printing_one_huge_line_keeps_a_capped_redacted_log(
    cell_world: Callable[..., Matrix], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(tmp_path / "envs"))
    matrix = cell_world("plain", versions=("2.8.0",))
    size = files.LOG_CAP + 8 * 2**20
    # secrets straddling the first piece boundary, the head's end and the tail's start
    marks = [2**20 - 10, files.LOG_CAP // 2 - 10, size - files.LOG_CAP // 2 - 10, size - 100]
    (tmp_path / "tests" / "core" / "test_fault.py").write_text(
        textwrap.dedent(f"""\
        import sys
        def test_floods_its_output():
            line = bytearray(b"x" * {size})
            for mark in {marks!r}:
                line[mark : mark + {len(SECRET)}] = {SECRET.encode()!r}
            sys.stdout.buffer.write(bytes(line))
            sys.stdout.flush()
            assert False, "flooded"
        """),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(out)]) == 1
    log = out / "cells" / CELL / "pytest.log"
    assert log.stat().st_size <= files.LOG_CAP + 4096
    data = log.read_bytes()
    assert b"hunter2" not in data
    assert b"secret@" not in data
    assert data.count(b"https://***@private.invalid/simple") >= 2  # the first and the last
    assert b"bytes cut from the middle of this" in data
    assert b"test_floods_its_output" in data  # the head (pytest's header) ...
    assert b"flooded" in data  # ... and the tail (the failure) are kept


def test_redacting_a_huge_one_line_file_takes_bounded_memory(tmp_path: Path) -> None:
    """200 MB on one line, secrets across piece boundaries, redacted whole (no cap: not a
    log) in a process of its own: its peak memory stays far below the file's size."""
    path = tmp_path / "flood.txt"
    piece = bytearray(b"y" * 2**20)
    piece[-10 : -10 + len(SECRET)] = SECRET.encode()[:10]
    head = SECRET.encode()[10:]
    with open(path, "wb") as handle:
        for n in range(200):  # each megabyte ends in a URL's start, the next goes on with it
            handle.write((head if n else b"y" * len(head)) + bytes(piece[len(head) :]))
    # VmHWM: this process image's own peak. ru_maxrss would not do: Linux keeps it across
    # exec, so it reads the forking pytest's size (418 MB late in a full run).
    code = (
        "import sys; from pathlib import Path; "
        "from compat.harness.files import redact_file; "
        "redact_file(Path(sys.argv[1])); "
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    peak_mb = int(done.stdout) / 1024
    assert peak_mb < 100, f"{peak_mb:.0f} MB"
    assert path.stat().st_size > 199 * 2**20
    with open(path, "rb") as handle:
        first = handle.read(4 * 2**20)
    assert b"user:" not in first
    assert b"hunter2" not in first
    assert first.count(b"https://***@private.invalid/simple") >= 3


@pytest.mark.parametrize("seed", range(3))
def test_pieces_redact_as_the_whole_text_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Tiny pieces, random text dense with URLs and their parts: the file redacted piece
    by piece is the text redacted whole; capped, no part of a password survives."""
    monkeypatch.setattr(files, "_CHUNK", 16)
    monkeypatch.setattr(files, "_CARRY", 64)
    parts = ["a", " ", "\n", "é", "/", "?", ":", "@", "://", "x" * 40, SECRET, SECRET[:-7]]
    chooser = random.Random(seed)
    for _ in range(400):
        text = "".join(chooser.choice(parts) for _ in range(chooser.randint(0, 120)))
        path = tmp_path / "f.log"
        path.write_bytes(text.encode())
        files.redact_file(path, cap=None)
        assert path.read_bytes().decode() == redact(text)
        path.write_bytes(text.encode())
        files.redact_file(path, cap=chooser.randint(40, 400))
        kept = path.read_bytes().decode("utf-8", errors="replace")
        assert not any("hunter2secret"[i : i + 4] in kept for i in range(10)), (text, kept)
