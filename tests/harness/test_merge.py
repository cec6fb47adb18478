"""Fan-out and fan-in: shards of a real (stand-in torch) run merge into the single run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compat.harness.commands import cli
from compat.harness.config.matrix import Matrix
from compat.harness.errors import UsageError
from compat.harness.results.merge import merge_runs, shard_of

# Fields that measure the clock or name the folder, not what the cell did.
VOLATILE = {
    "timings",
    "seconds",  # how long each file's process took (file_runs)
    "duration",
    "t",
    "created",
    "run_id",
    "command",
    "log_excerpt",
    "executable",
    "torch_import_seconds",
}


def normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    return value


def document(run: Path) -> dict[str, Any]:
    return json.loads((run / "results.json").read_text(encoding="utf-8"))


@pytest.fixture
def matrix(cell_world: Callable[..., Matrix]) -> Matrix:
    # five cells, three applicable: torch.ao is gone from 2.11
    return cell_world("plain", versions=("2.7.0", "2.8.0", "2.9.0", "2.11.0", "2.12.0"))


def test_shard_split_is_even_and_complete() -> None:
    items = list(range(10))
    shards = [shard_of(items, f"{i}/3") for i in (1, 2, 3)]
    assert sorted(k for shard in shards for k in shard) == items
    assert [len(s) for s in shards] == [4, 3, 3]
    with pytest.raises(UsageError, match="expected I/N"):
        shard_of(items, "two")
    with pytest.raises(UsageError, match="between 1 and N"):
        shard_of(items, "4/3")


def test_shards_merge_into_the_single_run(
    matrix: Matrix,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(tmp_path / "single")]) == 0
    )
    for i in (1, 2, 3):
        # each shard on a runner of its own: its own verdict cache, empty
        monkeypatch.setenv("COMPAT_VERDICTS_DIR", str(tmp_path / f"verdicts-{i}"))
        assert (
            cli.main(
                [
                    "matrix",
                    "--matrix",
                    str(matrix.path),
                    "--shard",
                    f"{i}/3",
                    "--out",
                    str(tmp_path / "artifacts" / f"shard-{i}" / "run"),
                ]
            )
            == 0
        )
    capsys.readouterr()
    assert cli.main(["plan", "--matrix", str(matrix.path)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [c["session"] for c in plan["include"]] == [
        f"cell({c.id})" for c in matrix.cells if c.applicable
    ]
    code = cli.main(
        ["report", "--merge", str(tmp_path / "artifacts"), "--out", str(tmp_path / "merged")]
    )
    assert code == 0
    single, merged = document(tmp_path / "single"), document(tmp_path / "merged")
    assert [c["cell_id"] for c in merged["cells"]] == [c.id for c in matrix.cells]
    assert normalised(merged["cells"]) == normalised(single["cells"])
    assert merged["exit_code"] == single["exit_code"]
    assert merged["summary"] == single["summary"] == {"not-applicable": 2, "passed": 3}


def test_missing_shard_is_reported_as_not_run(
    matrix: Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli.main(
        [
            "matrix",
            "--matrix",
            str(matrix.path),
            "--shard",
            "1/2",
            "--out",
            str(tmp_path / "artifacts" / "one"),
        ]
    )
    loaded = merge_runs([tmp_path / "artifacts"], tmp_path / "merged")
    statuses = {r.cell_id: (r.status.value, r.reason) for r in loaded.results}
    missing = [k for k, (s, _) in statuses.items() if s == "not-run"]
    assert missing
    assert all(statuses[k][1] == "no shard delivered this cell" for k in missing)


def test_runs_of_different_matrix_files_are_refused(
    matrix: Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli.main(
        [
            "matrix",
            "--matrix",
            str(matrix.path),
            "--shard",
            "1/2",
            "--out",
            str(tmp_path / "artifacts" / "a"),
        ]
    )
    other = matrix.path.with_name("other.toml")
    other.write_text(matrix.path.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    cli.main(
        [
            "matrix",
            "--matrix",
            str(other),
            "--shard",
            "2/2",
            "--out",
            str(tmp_path / "artifacts" / "b"),
        ]
    )
    with pytest.raises(UsageError, match="refusing to merge runs of different matrix files"):
        merge_runs([tmp_path / "artifacts"], tmp_path / "merged")
    assert (
        cli.main(
            ["report", "--merge", str(tmp_path / "artifacts"), "--out", str(tmp_path / "merged")]
        )
        == 2
    )


def test_report_names_a_corrupt_cell_file_and_keeps_the_rest(
    matrix: Matrix,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(out)]) == 0
    broken = out / "cells" / "torch2.8.0-torch.ao-py3.11" / "result.json"
    broken.write_text(broken.read_text(encoding="utf-8")[:200], encoding="utf-8")  # truncated
    capsys.readouterr()
    assert cli.main(["report", str(out)]) == 3  # a gating cell without a verdict
    err = capsys.readouterr().err
    assert f"compat: skipped {broken}: unreadable or truncated" in err
    cells = {c["cell_id"]: c for c in document(out)["cells"]}
    assert cells["torch2.8.0-torch.ao-py3.11"]["status"] == "not-run"
    assert cells["torch2.7.0-torch.ao-py3.11"]["status"] == "passed"
    assert cells["torch2.9.0-torch.ao-py3.11"]["status"] == "passed"


def test_corrupt_shard_files_are_named_not_fatal(
    matrix: Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for shard in ("1/2", "2/2"):
        cli.main(
            [
                "matrix",
                "--matrix",
                str(matrix.path),
                "--shard",
                shard,
                "--out",
                str(tmp_path / "artifacts" / shard.replace("/", "-")),
            ]
        )
    victim = next((tmp_path / "artifacts" / "1-2" / "cells").glob("*/result.json"))
    victim.write_text("{ not json", encoding="utf-8")
    (tmp_path / "artifacts" / "2-2" / "run.json").write_text("[", encoding="utf-8")
    loaded = merge_runs([tmp_path / "artifacts"], tmp_path / "merged")
    assert any(str(victim) in p for p in loaded.problems)
    assert any("run.json" in p for p in loaded.problems)
    by_id = {r.cell_id: r for r in loaded.results}
    assert by_id[victim.parent.name].reason == "its result file is corrupt"


@pytest.mark.parametrize("newer_fails", [True, False])
def test_a_cell_in_two_runs_keeps_the_newer_whatever_the_order(
    cell_world: Callable[..., Matrix],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    newer_fails: bool,
) -> None:
    """The same cell in two run folders (a rerun job beside the first): the merge keeps the
    copy that finished last, by the cell's own time stamps, in either order of the folders
    and whatever they are called, and says so in one line."""
    monkeypatch.chdir(tmp_path)
    matrix = cell_world("plain", versions=("2.8.0",))
    test_file = tmp_path / "tests" / "core" / "test_fault.py"
    passing = test_file.read_text(encoding="utf-8")
    failing = "def test_one(): assert False, 'broken'\ndef test_two(): pass\n"
    older, newer = tmp_path / "runs" / "b-older", tmp_path / "runs" / "a-newer"
    for run, fails in ((older, not newer_fails), (newer, newer_fails)):
        test_file.write_text(failing if fails else passing, encoding="utf-8")
        cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(run)])
    expected = 1 if newer_fails else 0
    cell = "torch2.8.0-torch.ao-py3.11"
    for n, order in enumerate(([older, newer], [newer, older])):
        capsys.readouterr()
        out = tmp_path / f"merged-{n}"
        code = cli.main(["report", "--merge", *map(str, order), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == expected, err
        assert document(out)["cells"][0]["status"] == ("failed" if newer_fails else "passed")
        lines = [line for line in err.splitlines() if "is in two runs" in line]
        assert len(lines) == 1
        assert f"cell {cell} is in two runs; kept {newer / 'cells' / cell} (" in lines[0]
        assert "newer: " in lines[0]
        assert lines[0].startswith(f"compat: skipped {older / 'cells' / cell}: ")


def test_a_damaged_manifest_and_result_never_make_a_cell_vanish(
    matrix: Matrix,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """run.json and one result.json both damaged: the cell folder is the evidence that the
    cell was there; it is reported not run (exit 3), both files named, never a green run."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(out)]) == 0
    (out / "run.json").write_text("{ damaged", encoding="utf-8")
    broken = out / "cells" / "torch2.8.0-torch.ao-py3.11" / "result.json"
    broken.write_text(broken.read_text(encoding="utf-8")[:100], encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["report", str(out)]) == 3
    err = capsys.readouterr().err
    assert f"compat: skipped {out / 'run.json'}: not a run manifest" in err
    assert f"compat: skipped {broken}: unreadable or truncated" in err
    cells = {c["cell_id"]: c for c in document(out)["cells"]}
    assert cells["torch2.8.0-torch.ao-py3.11"]["status"] == "not-run"
    assert str(broken) in cells["torch2.8.0-torch.ao-py3.11"]["reason"]
    assert cells["torch2.7.0-torch.ao-py3.11"]["status"] == "passed"
    assert document(out)["exit_code"] == 3
