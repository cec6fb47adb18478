"""Release qualification through the real command line, with stand-in cells."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.commands import cli
from compat.harness.config.matrix import Matrix
from compat.harness.results.gate import EXIT_OK, EXIT_UNEXPECTED

World = Callable[..., Matrix]


def qualify(matrix: Matrix, out: Path) -> int:
    return cli.main(
        [
            "qualify",
            "--matrix",
            str(matrix.path),
            "--candidate",
            "2.10.0",
            "--reference",
            "2.9.0",
            "--out",
            str(out),
        ]
    )


def test_a_clean_candidate_is_qualified(
    cell_world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = qualify(cell_world("release", versions=("2.9.0", "2.10.0")), tmp_path / "q")
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert "torch 2.10.0 against 2.9.0: QUALIFIED (0 regression(s)" in out
    markdown = (tmp_path / "q" / "qualification.md").read_text(encoding="utf-8")
    assert markdown.startswith("## ✅ torch 2.10.0: QUALIFIED")
    assert "Release qualification" in (tmp_path / "q" / "matrix.html").read_text(encoding="utf-8")


def test_a_planted_regression_is_not_qualified_and_names_tests_and_lost_tags(
    cell_world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("release", versions=("2.9.0", "2.10.0"), env=', PLANTED = "1"')
    code = qualify(matrix, tmp_path / "q")
    out = capsys.readouterr().out
    assert code == EXIT_UNEXPECTED, out
    assert "NOT QUALIFIED (1 regression(s)" in out
    verdict = json.loads((tmp_path / "q" / "qualification.json").read_text(encoding="utf-8"))
    assert verdict["verdict"] == "NOT QUALIFIED"
    assert verdict["regressions"] == ["torch.ao py3.11: test_porting: passed -> failed"]
    assert verdict["lost_tags"] == [
        "torch.ao py3.11: test_porting: tag lost: converted: dequantize_per_tensor after matmul: "
        "tag 'BackendA_mm_0' -> none"
    ]
    # "What changed in metadata" is the run report's findings, one line per kind.
    assert verdict["drift"] == [
        "2.9.0 -> 2.10.0, torch.ao: quantization_tag lost on dequantize_per_tensor (1 test, 1 node)"
    ]
    markdown = (tmp_path / "q" / "qualification.md").read_text(encoding="utf-8")
    assert "### Quantization tags lost" in markdown
    assert "## ❌ torch 2.10.0: NOT QUALIFIED" in markdown


def test_a_version_no_column_applies_to_is_a_usage_error(cell_world: World, tmp_path: Path) -> None:
    matrix = cell_world("release", versions=("2.9.0", "2.10.0"))
    code = cli.main(
        [
            "qualify",
            "--matrix",
            str(matrix.path),
            "--candidate",
            "2.12.0",
            "--reference",
            "2.11.0",
            "--out",
            str(tmp_path / "q"),
        ]
    )
    assert code == 2
