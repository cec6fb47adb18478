"""Every command refuses what ``matrix`` refuses, in one line and exit 2 (issue 22), and
the checks come in the order of the run's steps: the cheap ones before the disk estimate.

Through ``cli.main`` with stand-in cells (``fake_cells.cell_world``), in tmp folders.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.commands import pipeline
from compat.harness.commands.bisect import BisectRecord, BisectRequest
from compat.harness.config.matrix import Matrix
from compat.harness.results.bisection import Verdict

from .test_bad_input import one_error, run_cli  # one way to run the CLI and read its line

World = Callable[..., Matrix]
RELEASE = ("2.9.0", "2.10.0")  # the stand-in release pair of qualify's tests


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(tmp_path / "envs"))
    return tmp_path


def qualify_args(matrix: Matrix, *extra: str) -> list[str]:
    return [
        "qualify",
        "--matrix",
        str(matrix.path),
        "--candidate",
        "2.10.0",
        "--reference",
        "2.9.0",
        *extra,
    ]


def bisect_args(matrix: Matrix, test: str, *extra: str) -> list[str]:
    return [
        "bisect",
        test,
        "--good",
        "2.5.1",
        "--bad",
        "2.2.2",
        "--versions",
        "matrix",
        "--matrix",
        str(matrix.path),
        *extra,
    ]


FIX_VERSIONS = ("2.2.2", "2.3.1", "2.4.1", "2.5.1")


# --- the cheap checks come first -----------------------------------------------------------


def test_a_bad_out_prints_no_disk_line(
    write_matrix: Callable[[str], Path],
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk estimate plans every cell: it runs only once --out, --resume and -j passed."""
    estimated = []

    def estimate(*args: object) -> None:
        estimated.append(args)
        print("compat: disk: 1 env(s) to build")

    monkeypatch.setattr(pipeline, "estimate_disk", estimate)
    path = write_matrix('[[torch]]\nversion = "2.8.0"\n')
    (in_tmp / "a-file").write_text("x", encoding="utf-8")
    for bad in (["--out", "a-file"], ["--resume", "nowhere"], ["-j", "0"]):
        code, out, err = run_cli(capsys, "matrix", "--matrix", str(path), *bad)
        assert code == 2, err
        assert "disk" not in out + err
    assert estimated == []
    assert not (in_tmp / "reports").exists()


def test_a_refusal_by_the_disk_leaves_no_out_folder(
    write_matrix: Callable[[str], Path],
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from compat.harness.errors import InfraError

    def estimate(*args: object) -> None:
        raise InfraError("disk: too big")

    monkeypatch.setattr(pipeline, "estimate_disk", estimate)
    path = write_matrix('[[torch]]\nversion = "2.8.0"\n')
    assert run_cli(capsys, "matrix", "--matrix", str(path), "--out", "new/run")[0] == 3
    assert not (in_tmp / "new").exists()
    assert run_cli(capsys, "matrix", "--matrix", str(path))[0] == 3
    assert not (in_tmp / "reports").exists()


# --- no command overwrites a run; a file is not a folder ---------------------------------


def test_qualify_and_bisect_never_overwrite_a_run(
    cell_world: World, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("release", versions=RELEASE)
    assert run_cli(capsys, "matrix", "--matrix", str(matrix.path), "--out", "run")[0] == 0
    before = sorted(p.name for p in (in_tmp / "run").iterdir())
    assert one_error(capsys, *qualify_args(matrix, "--out", "run")) == (
        "compat: error: --out run: holds a run already; give a new folder"
    )
    line = one_error(capsys, *bisect_args(matrix, "test_porting", "--out", "run"))
    assert line == f"compat: error: --out {in_tmp / 'run'}: holds a run already; give a new folder"
    assert sorted(p.name for p in (in_tmp / "run").iterdir()) == before


def test_a_file_where_a_folder_belongs_is_exit_2(
    cell_world: World, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("release", versions=RELEASE)
    (in_tmp / "a-file").write_text("x", encoding="utf-8")
    assert one_error(capsys, *qualify_args(matrix, "--out", "a-file")) == (
        "compat: error: --out a-file: is a file, not a folder"
    )
    line = one_error(capsys, *bisect_args(matrix, "test_porting", "--out", "a-file"))
    assert line.endswith("a-file: is a file, not a folder")
    assert one_error(capsys, "init", "--dir", "a-file") == (
        "compat: error: --dir a-file: is a file, not a folder"
    )


def test_qualify_makes_a_new_folder_per_run(
    cell_world: World, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("release", versions=RELEASE)
    for _ in range(2):
        code, out, _ = run_cli(capsys, *qualify_args(matrix))
        assert code == 0, out
    runs = sorted((in_tmp / "reports").glob("*-qualify-2.10.0-vs-2.9.0*"))
    assert len(runs) == 2
    for run in runs:
        assert (run / "qualification.md").read_text(encoding="utf-8").startswith("## ✅")
        assert json.loads((run / "qualification.json").read_text(encoding="utf-8"))["verdict"]
    assert not (in_tmp / "reports" / "latest").exists()  # latest stays the matrix's


# --- qualify's own options -----------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["0", "-3"])
def test_qualify_refuses_jobs_below_one(
    cell_world: World, in_tmp: Path, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    matrix = cell_world("release", versions=RELEASE)
    assert one_error(capsys, *qualify_args(matrix, "-j", jobs)) == (
        f"compat: error: -j {jobs}: expected a whole number of cells at once, 1 or more"
    )
    assert not (in_tmp / "reports").exists()


def test_qualify_refuses_a_candidate_that_is_the_reference(
    cell_world: World, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("release", versions=RELEASE)
    argv = ["qualify", "--matrix", str(matrix.path), "--candidate", "2.9.0", "--reference"]
    line = one_error(capsys, *argv, "2.9.0")
    assert line.startswith("compat: error: --candidate 2.9.0 and --reference 2.9.0 are the same")
    assert not (in_tmp / "reports").exists()


# --- bisect's request ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--python", "abc"], "--python 'abc': not a version"),
        (["--stack", "torchao", "--torchao", "xyz"], "--torchao 'xyz': not a version"),
    ],
)
def test_bisect_checks_its_versions(
    cell_world: World,
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    matrix = cell_world("fixed-in-2.4", versions=FIX_VERSIONS)
    line = one_error(capsys, *bisect_args(matrix, "test_porting", "--out", "b", *extra))
    assert line == f"compat: error: {message}"
    assert not (in_tmp / "b").exists()


def test_bisect_refuses_an_empty_test(
    cell_world: World, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("fixed-in-2.4", versions=FIX_VERSIONS)
    line = one_error(capsys, *bisect_args(matrix, "", "--out", "b"))
    assert line == "compat: error: bisect: the test is empty; give a test name or node id"
    assert not (in_tmp / "b").exists()


def test_bisect_resumes_only_the_same_request(
    cell_world: World, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("fixed-in-2.4", versions=FIX_VERSIONS)
    other = BisectRequest("test_other", "2.5.1", "2.2.2", "torch.ao", "3.11")
    (in_tmp / "b").mkdir()
    verdicts = {"2.2.2": Verdict.BAD, "2.5.1": Verdict.GOOD}
    BisectRecord(other, list(FIX_VERSIONS), verdicts).save(in_tmp / "b" / "bisect.json")
    before = (in_tmp / "b" / "bisect.json").read_bytes()
    line = one_error(capsys, *bisect_args(matrix, "test_porting", "--out", "b"))
    assert line == (
        f"compat: error: --out {in_tmp / 'b'}: holds the bisection of another request "
        "(test 'test_other' there, 'test_porting' here; versions 'index' there, 'matrix' "
        "here): give another --out, or remove its bisect.json to start over"
    )
    assert (in_tmp / "b" / "bisect.json").read_bytes() == before


# --- --resume only a run of the same matrix file ----------------------------------------


def test_resume_refuses_a_run_of_another_matrix(
    cell_world: World, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("plain", versions=("2.8.0",))
    assert run_cli(capsys, "matrix", "--matrix", str(matrix.path), "--out", "run")[0] == 0
    text = matrix.path.read_text(encoding="utf-8")
    matrix.path.write_text(text + "# edited since\n", encoding="utf-8")
    line = one_error(capsys, "matrix", "--matrix", str(matrix.path), "--resume", "run")
    assert line.startswith(
        "compat: error: --resume run: a run of another version of the matrix file (sha256 "
    )
    assert line.endswith("now); only a run of the same matrix file resumes")
    other = matrix.path.with_name("other.toml")
    other.write_text(text.replace('name = "plain"', 'name = "other"'), encoding="utf-8")
    assert one_error(capsys, "matrix", "--matrix", str(other), "--resume", "run") == (
        "compat: error: --resume run: a run of matrix 'plain', not 'other'; only a run of "
        "the same matrix file resumes"
    )
    matrix.path.write_text(text, encoding="utf-8")  # the same file again: resumed
    code, out, _ = run_cli(capsys, "matrix", "--matrix", str(matrix.path), "--resume", "run")
    assert code == 0
    assert "resuming 1 finished cell(s)" in out


# --- plan --shards over few cells --------------------------------------------------------


def test_plan_caps_the_shards_at_the_cells(
    write_matrix: Callable[[str], Path], in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_matrix(
        '[[torch]]\nversion = "2.7.0"\n[[torch]]\nversion = "2.8.0"\n[[torch]]\nversion = "2.9.0"\n'
    )
    code, out, err = run_cli(capsys, "plan", "--matrix", str(path), "--shards", "4")
    assert code == 0, err
    jobs = json.loads(out)["include"]
    assert [j["args"] for j in jobs] == ["--shard 1/3", "--shard 2/3", "--shard 3/3"]
    for job in jobs:  # each planned job runs a cell
        shard = job["args"].split()[1]
        assert run_cli(capsys, "plan", "--matrix", str(path), "--shard", shard, "--ids")[0] == 0
