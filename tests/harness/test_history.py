"""A test across kept runs: when it broke, and what to bisect or compare next."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat.harness.commands.cli import main
from compat.harness.commands.history import changes, collect_history, render_history
from compat.harness.config.matrix import Cell
from compat.harness.errors import UsageError
from compat.harness.results.model import CellResult, CellStatus, InstallRecord, Outcome
from compat.harness.results.model import TestResult as Result
from compat.harness.results.run_folder import RunManifest

TEST = "tests/core/test_metadata_porting.py::TestMetaDataPorting::test_simple_metadata_porting"
NIGHTLY = "nightly-torchlatest-torchaonightly-py3.11"
RELEASE = "torch2.8.0-torch.ao-py3.11"


def cell(cell_id: str, torch: str, outcome: Outcome, numpy: str = "2.4.6") -> CellResult:
    nightly = cell_id.startswith("nightly")
    spec = Cell(
        "3.11",
        "latest" if nightly else "2.8.0",
        "torchao" if nightly else "torch.ao",
        channel="nightly" if nightly else "release",
        gating=not nightly,
    )
    failed = outcome is Outcome.FAILED
    test = Result(TEST, outcome, 1.0, "E assert 1 == 2" if failed else None)
    return CellResult(
        cell_id,
        spec,
        CellStatus.FAILED if failed else CellStatus.PASSED,
        tests=[test],
        fingerprint={"torch": torch},
        install=InstallRecord(freeze=[f"numpy=={numpy}", f"torch=={torch}"]),
    )


def keep_run(reports: Path, run_id: str, results: list[CellResult], name: str = "nightly") -> None:
    folder = reports / run_id
    RunManifest(run_id, "matrix.toml", name, "0" * 64, {r.cell_id: r.cell for r in results}).write(
        folder
    )
    for result in results:
        result.write(folder / "cells" / result.cell_id / "result.json")


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    P, F = Outcome.PASSED, Outcome.FAILED
    keep_run(
        folder,
        "20261120-030000-nightly",
        [cell(NIGHTLY, "2.17.0.dev20261120+cpu", P), cell(RELEASE, "2.8.0+cpu", P)],
    )
    keep_run(
        folder,
        "20261121-030000-nightly",
        [cell(NIGHTLY, "2.17.0.dev20261121+cpu", P), cell(RELEASE, "2.8.0+cpu", P)],
    )
    keep_run(folder, "20261121-120000-other", [cell(RELEASE, "2.8.0+cpu", F)], name="other")
    keep_run(
        folder,
        "20261122-030000-nightly",
        [cell(NIGHTLY, "2.17.0.dev20261122+cpu", F), cell(RELEASE, "2.8.0+cpu", F, numpy="2.5.0")],
    )
    keep_run(
        folder,
        "20261123-030000-nightly",
        [cell(NIGHTLY, "2.17.0.dev20261123+cpu", P), cell(RELEASE, "2.8.0+cpu", F, numpy="2.5.0")],
    )
    return folder


def test_runs_of_the_newest_matrix_oldest_first(reports: Path) -> None:
    history = collect_history(reports)
    assert [o.run_id for o in history] == [
        "20261120-030000-nightly",
        "20261121-030000-nightly",
        "20261122-030000-nightly",
        "20261123-030000-nightly",
    ]
    assert [o.run_id for o in collect_history(reports, matrix_name="other")] == [
        "20261121-120000-other"
    ]


def test_breaks_and_fixes_with_what_to_do_next(reports: Path) -> None:
    history = collect_history(reports)
    found = [
        (c.cell_id, c.kind, c.before[0], c.after[0])
        for c in changes(history, "test_simple_metadata_porting", [NIGHTLY, RELEASE])
    ]
    assert found == [
        (NIGHTLY, "broke", "20261121-030000-nightly", "20261122-030000-nightly"),
        (NIGHTLY, "fixed", "20261122-030000-nightly", "20261123-030000-nightly"),
        (RELEASE, "broke", "20261121-030000-nightly", "20261122-030000-nightly"),
    ]
    text = render_history(history, test="test_simple_metadata_porting")
    assert (
        f"  {NIGHTLY}: broke between 20261121-030000-nightly (torch 2.17.0.dev20261121+cpu)"
        " and 20261122-030000-nightly (torch 2.17.0.dev20261122+cpu)"
    ) in text
    assert (
        "    bisect: nox -s bisect -- test_simple_metadata_porting --good 2026-11-21 "
        "--bad 2026-11-22 --channel nightly --stack torchao --python 3.11"
    ) in text
    # a fix bisects the other way round: --good newer than --bad
    assert "--good 2026-11-23 --bad 2026-11-22 --channel nightly" in text
    assert "    same torch build; other packages changed: numpy 2.4.6 -> 2.5.0" in text
    grid_row = next(line for line in text.splitlines() if line.startswith("20261122"))
    assert grid_row.split()[1:] == ["✗", "✗"]


def test_cell_status_history_and_filters(reports: Path) -> None:
    text = render_history(collect_history(reports), test=None, cell_patterns=["nightly-*"])
    assert "history of every cell's status: 4 run(s)" in text
    assert "torch2.8.0" not in text
    assert "broke between 20261121-030000-nightly" in text
    with pytest.raises(UsageError, match="no such cell"):
        render_history(collect_history(reports), test=None, cell_patterns=["torch9*"])


def test_command_line(reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "test_simple_metadata_porting", "--reports", str(reports)]) == 0
    assert "Changes:" in capsys.readouterr().out
    assert main(["history", "--reports", str(reports / "nowhere")]) == 2
    assert "no reports folder" in capsys.readouterr().err


def test_history_names_a_snapshot_change_apart_from_breaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "reports"
    for run_id, tag in (
        ("20261120-030000-nightly", "A"),
        ("20261121-030000-nightly", "A"),
        ("20261122-030000-nightly", None),
    ):
        result = cell(RELEASE, "2.8.0+cpu", Outcome.PASSED)
        result.tests[0].snapshots = {
            "converted": [
                {"op": "dequantize_per_tensor", "after": "add.Tensor", "tag": tag, "source": None}
            ]
        }
        keep_run(folder, run_id, [result])
    assert main(["history", "test_simple_metadata_porting", "--reports", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "No change between runs." in out  # it passed every time
    assert (
        "torch2.8.0-torch.ao-py3.11: behaviour changed between 20261121-030000-nightly and "
        "20261122-030000-nightly: test_simple_metadata_porting: converted: "
        "dequantize_per_tensor after add.Tensor: tag 'A' -> none"
    ) in out


def test_an_unknown_test_or_matrix_is_named(
    reports: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty grid answered nothing: a test no kept run has, or a matrix name no run
    ran, is exit 2 naming it."""
    assert main(["history", "test_no_such_thing", "--reports", str(reports)]) == 2
    assert capsys.readouterr().err == (
        "compat: error: test_no_such_thing: no such test in the 4 run(s) kept\n"
    )
    assert main(["history", "--matrix-name", "weekly", "--reports", str(reports)]) == 2
    assert capsys.readouterr().err == (
        f"compat: error: --matrix-name weekly: no run of that matrix in {reports} "
        "(runs of: nightly, other)\n"
    )
    assert main(["history", "--matrix-name", "other", "--reports", str(reports)]) == 0


class _ClosedReader:
    """A pipe whose reader went away (``history | head -1``): every write breaks."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def isatty(self) -> bool:
        return False


def test_a_closed_stdout_is_a_quiet_exit(
    reports: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rest of the output is dropped and the command ends with its own code."""
    monkeypatch.setattr("sys.stdout", _ClosedReader())
    assert main(["history", "test_simple_metadata_porting", "--reports", str(reports)]) == 0
    assert capsys.readouterr().err == ""


def test_only_the_tested_trees_commit_changed_names_the_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "reports"
    P, F = Outcome.PASSED, Outcome.FAILED
    runs = [
        ("20261120-030000-user", P, {"commit": "a" * 40, "dirty": False}),
        ("20261121-030000-user", F, {"commit": "b" * 40, "dirty": False}),
    ]
    for run_id, outcome, source in runs:
        result = cell(RELEASE, "2.8.0+cpu", outcome)
        manifest = RunManifest(
            run_id, "matrix.toml", "user", "0" * 64, {RELEASE: result.cell}, source=source
        )
        manifest.write(folder / run_id)
        result.write(folder / run_id / "cells" / RELEASE / "result.json")
    assert main(["history", "test_simple_metadata_porting", "--reports", str(folder)]) == 0
    out = capsys.readouterr().out
    assert (
        "same torch build and packages; the tested tree moved from aaaaaaaaaaaa to "
        "bbbbbbbbbbbb: the change is in that range (git log aaaaaaaaaaaa..bbbbbbbbbbbb)"
    ) in out
    assert "the change is in the tests or the shims" not in out


def test_run_json_records_the_tested_trees_commit_and_dirty_flag(tmp_path: Path) -> None:
    import subprocess

    from compat.harness.config.matrix import load_matrix
    from compat.harness.source_tree import tree_state

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    assert tree_state(tmp_path) is None  # not a git tree: nothing, and no failure
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_x(): pass\n", encoding="utf-8")
    (tmp_path / "matrix.toml").write_text(
        '[matrix]\ntests = ["tests"]\n[[torch]]\nversion = "2.8.0"\n', encoding="utf-8"
    )
    git("init", "-q")
    git("add", "matrix.toml", "tests/test_x.py")
    git("commit", "-q", "-m", "x")
    matrix = load_matrix(tmp_path / "matrix.toml")
    manifest = RunManifest.for_matrix("r", matrix, list(matrix.cells))
    assert manifest.source == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    (tmp_path / "tests" / "test_x.py").write_text("def test_y(): pass\n", encoding="utf-8")
    manifest = RunManifest.for_matrix("r", matrix, list(matrix.cells))
    assert manifest.source is not None
    assert manifest.source["dirty"] is True
    manifest.write(tmp_path / "run")
    assert RunManifest.read(tmp_path / "run") == manifest  # read back as written
