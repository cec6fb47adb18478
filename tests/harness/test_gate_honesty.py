"""The gate cannot be fooled: each way a regression could hide, through the real command line.

Cells are stand-ins (this interpreter, a stub torch); the pytest process, the plugin's
events, classification, the grid and the exit code are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.commands import cli
from compat.harness.config.matrix import Matrix
from compat.harness.results.gate import EXIT_INFRA, EXIT_OK, EXIT_UNEXPECTED

WALK_BACK = """
[[expect]]
test = "test_walk_back"
torch = "<2.4"
raises = "ValueError"
match = "has tag aten\\\\.matmul\\\\.default that is associated"
reason = "up to 2.3 the pass walks back through any op"
"""

World = Callable[..., Matrix]


def run(matrix: Matrix, out: Path, *extra: str) -> tuple[int, dict[str, dict]]:
    code = cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(out), *extra])
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return code, {c["cell_id"]: c for c in doc["cells"]}


def outcomes(cell: dict) -> dict[str, str]:
    return {t["nodeid"].rsplit("::", 1)[-1]: t["outcome"] for t in cell["tests"]}


def test_the_known_failure_is_x_and_a_planted_regression_behind_it_is_not(
    cell_world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("gate", versions=("2.3.1", "2.4.1"), tables=WALK_BACK)
    code, cells = run(matrix, tmp_path / "clean")
    assert code == EXIT_OK
    assert outcomes(cells["torch2.3.1-torch.ao-py3.11"])["test_walk_back"] == "xfailed"
    assert outcomes(cells["torch2.4.1-torch.ao-py3.11"])["test_walk_back"] == "passed"

    planted = cell_world(
        "gate", versions=("2.3.1", "2.4.1"), tables=WALK_BACK, env=', PLANTED = "1"'
    )
    capsys.readouterr()
    code, cells = run(planted, tmp_path / "planted")
    assert code == EXIT_UNEXPECTED
    old, new = cells["torch2.3.1-torch.ao-py3.11"], cells["torch2.4.1-torch.ao-py3.11"]
    assert outcomes(old) == {"test_walk_back": "failed-differently", "test_steady": "passed"}
    assert outcomes(new) == {"test_walk_back": "failed", "test_steady": "passed"}
    assert old["status"] == "failed"
    console = capsys.readouterr().out
    assert "Failed differently than expected (a new failure behind a known one):" in console
    assert (
        "torch2.3.1-torch.ao-py3.11: test_walk_back: expected ValueError matching "
        "'has tag aten\\\\.matmul\\\\.default that is associated'; got "
        "tests/core/test_fault.py:8 AssertionError: "
        "quantization_tag was not ported"
    ) in console
    assert "FAIL (1✓ 1≠)" in console


def test_strict_fails_on_a_fixed_expectation(
    cell_world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed = WALK_BACK.replace('torch = "<2.4"', 'torch = "<2.5"')  # 2.4.1 passes: fixed
    matrix = cell_world("gate", versions=("2.4.1",), tables=fixed)
    code, cells = run(matrix, tmp_path / "lenient")
    assert code == EXIT_OK
    assert outcomes(cells["torch2.4.1-torch.ao-py3.11"])["test_walk_back"] == "xpassed"
    console = capsys.readouterr().out
    assert "Fixed (an expected failure passes: retire its expectation):" in console
    assert "PASS (1✓ 1X)" in console

    code, cells = run(matrix, tmp_path / "strict", "--strict")
    assert code == EXIT_UNEXPECTED
    assert cells["torch2.4.1-torch.ao-py3.11"]["reason"] == (
        "1 expected failure(s) now pass (strict: retire the expectation)"
    )

    strict = cell_world("gate", versions=("2.4.1",), tables=fixed, settings="strict = true\n")
    assert run(strict, tmp_path / "strict-key")[0] == EXIT_UNEXPECTED


def test_a_cell_that_skipped_everything_is_not_a_pass(
    cell_world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, cells = run(cell_world("all-skipped", versions=("2.8.0",)), tmp_path / "run")
    assert code == EXIT_UNEXPECTED
    cell = cells["torch2.8.0-torch.ao-py3.11"]
    assert (cell["status"], cell["reason"]) == (
        "error",
        "all 2 test(s) skipped: the cell tested nothing",
    )
    assert "ERROR (2s)" in capsys.readouterr().out


def test_a_test_missing_from_one_cell_is_not_a_pass(cell_world: World, tmp_path: Path) -> None:
    code, cells = run(cell_world("version-dependent"), tmp_path / "run")
    assert code == EXIT_UNEXPECTED
    short = cells["torch2.8.0-torch.ao-py3.11"]
    assert short["status"] == "error"
    assert short["reason"] == "1 test(s) that other cells ran are missing here (test_only_here)"
    assert outcomes(short)["test_only_here"] == "not-run"
    assert cells["torch2.9.0-torch.ao-py3.11"]["status"] == "passed"
    on_disk = json.loads(
        (tmp_path / "run" / "cells" / "torch2.8.0-torch.ao-py3.11" / "result.json").read_text(
            encoding="utf-8"
        )
    )
    assert on_disk["status"] == "error"  # the cell's own file says so too


@pytest.mark.parametrize(
    ("setting", "code", "status"),
    [
        ("", EXIT_INFRA, "install-failed"),
        ("skip-missing-interpreters = true\n", EXIT_OK, "skipped"),
    ],
)
def test_a_missing_interpreter_is_infrastructure_unless_skipping_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, code: int, status: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(tmp_path / "envs"))
    (tmp_path / "tests" / "core").mkdir(parents=True)
    (tmp_path / "matrix.toml").write_text(
        f'[matrix]\npython = ["3.99"]\n{setting}[[torch]]\nversion = "2.8.0"\n', encoding="utf-8"
    )
    got = cli.main(
        ["matrix", "--matrix", str(tmp_path / "matrix.toml"), "--out", str(tmp_path / "run")]
    )
    doc = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert got == code
    (cell,) = doc["cells"]
    assert cell["status"] == status
    assert "no-interpreter: no CPython 3.99" in cell["reason"]
