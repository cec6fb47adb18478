"""A failure in the user's own package, through the real command line: the console and
summary.md name the user's frame (file:line) once for the cells that fail identically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.commands import cli
from compat.harness.config.matrix import Matrix
from compat.harness.results.gate import EXIT_UNEXPECTED

from .fake_cells import FAKE_TORCH

USER_PACKAGE = {
    "myquant/__init__.py": "",
    # Line 6 raises from torch 2.8 on, as a version-dependent bug in a quantizer would.
    "myquant/quantizer.py": """
        import os

        def annotate(node):
            if os.environ["COMPAT_CELL_ID"].startswith(("torch2.8", "torch2.9", "torch2.10")):
                return node["source_fn_stack"]
            return node
    """,
    "tests/core/test_user.py": """
        from myquant.quantizer import annotate

        def test_annotates_conv_relu():
            annotate(object())
    """,
}
# Each cell's stand-in torch says the version its cell asked for.
TORCH = FAKE_TORCH.replace(
    'os.environ.get("FAKE_TORCH_VERSION", "2.8.0+cpu")',
    'os.environ["COMPAT_CELL_ID"].split("-")[0].removeprefix("torch") + "+cpu"',
)
LINE = "myquant/quantizer.py:6 TypeError: 'object' object is not subscriptable"


def test_one_user_frame_for_three_identically_failing_cells(
    cell_world: Callable[..., Matrix], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world(
        "plain",
        versions=("2.5.1", "2.8.0", "2.9.0", "2.10.0"),
        files=USER_PACKAGE,
        torch_source=TORCH,
    )
    out = tmp_path / "run"
    code = cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(out)])
    console = capsys.readouterr().out
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert code == EXIT_UNEXPECTED
    for text in (console, summary):
        assert text.count(LINE) == 1, text
        line = next(ln for ln in text.splitlines() if LINE in ln)
        assert "3 cells since torch 2.8.0: failed: " in line
        for version in ("2.8.0", "2.9.0", "2.10.0"):
            assert f"torch{version}-torch.ao-py3.11" in line
        assert "torch2.5.1" not in line
        # each failing cell keeps its own rerun command
        reruns = [ln for ln in text.splitlines() if "test_user.py::test_annotates" in ln]
        assert sum("2.8.0" in ln or "2.9.0" in ln or "2.10.0" in ln for ln in reruns) >= 3
