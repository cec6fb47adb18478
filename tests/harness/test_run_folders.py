"""Run folders through the real command line: no run is ever overwritten, no credential
reaches any output, every file the harness writes has one mode, two commands on one
folder both finish, and what a run folder or baseline says cannot break a report or
make it write outside the folder. The cells run the real harness with a stand-in torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from compat.harness.commands import cli
from compat.harness.config.matrix import Matrix
from compat.harness.install import prefetch as prefetch_module
from compat.harness.install.index import download
from compat.harness.install.interpreters import find_interpreter
from compat.harness.results.baseline import DIFF_LINES

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-T0KEN"
CELL = "torch2.8.0-torch.ao-py3.11"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def files_under(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in files_under(folder)}


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- no run is ever overwritten ----------------------------------------------------------


def test_merge_never_writes_into_an_existing_run(
    cell_world: Callable[..., Matrix], in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("plain", versions=("2.8.0",))
    assert run_cli(capsys, "matrix", "--matrix", str(matrix.path))[0] == 0
    latest = (in_tmp / "reports" / "latest").resolve()
    other = matrix.path.with_name("other.toml")  # CI shards of another matrix file
    other.write_text(matrix.path.read_text(encoding="utf-8") + "# another\n", encoding="utf-8")
    assert run_cli(capsys, "matrix", "--matrix", str(other), "--out", "artifacts/a")[0] == 0
    before = snapshot(in_tmp / "reports")

    for argv, message in [
        (
            [],
            "--merge needs --out DIR, a new folder for the merged run (a merge never writes "
            "into an existing run)",
        ),
        (["reports/latest"], "--merge needs --out DIR"),
        (["--out", "reports/latest"], "--out reports/latest: is a link (reports/latest?)"),
        (
            ["--out", str(latest)],
            f"--out {latest}: holds a run that is not a merge; merging "
            "there would overwrite it (give a new folder)",
        ),
        (["--out", "artifacts/a"], "--out artifacts/a: holds a run that is not a merge"),
    ]:
        code, _, err = run_cli(capsys, "report", "--merge", "artifacts", *argv)
        assert code == 2, err
        assert err == f"compat: error: {message}" + err.split(message, 1)[1], err
    assert snapshot(in_tmp / "reports") == before  # not a byte changed

    assert run_cli(capsys, "report", "--merge", "artifacts", "--out", "merged")[0] == 0
    assert run_cli(capsys, "report", "--merge", "artifacts", "--out", "merged")[0] == 0  # again
    assert json.loads((in_tmp / "merged" / "run.json").read_text())["merged_from"] == [
        str(in_tmp / "artifacts" / "a")
    ]
    code, _, err = run_cli(capsys, "report", "reports/latest", "--out", "x")
    assert (code, err) == (
        2,
        "compat: error: --out goes with --merge (a report is rebuilt in its run folder)\n",
    )


def test_a_run_never_overwrites_another(
    cell_world: Callable[..., Matrix], in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("plain", versions=("2.8.0",))
    assert run_cli(capsys, "matrix", "--matrix", str(matrix.path), "--out", "run")[0] == 0
    before = snapshot(in_tmp / "run")
    code, _, err = run_cli(capsys, "matrix", "--matrix", str(matrix.path), "--out", "run")
    assert (code, err) == (
        2,
        "compat: error: --out run: holds a run already; give a new "
        "folder (or --resume run to continue that run)\n",
    )
    assert snapshot(in_tmp / "run") == before
    code, out, _ = run_cli(
        capsys, "matrix", "--matrix", str(matrix.path), "--out", "run", "--resume", "run"
    )
    assert code == 0
    assert "resuming 1 finished cell(s)" in out


# --- credentials -------------------------------------------------------------------------

LEAKY_TESTS = f"""
    import os
    def test_ok(): pass
    def test_leaks():
        print("fetching https://user:{SECRET}@mirror.invalid/simple/torch/")
        raise AssertionError("could not read https://user:{SECRET}@mirror.invalid/x.whl")
"""


def test_a_credential_in_every_input_reaches_no_output(
    cell_world: Callable[..., Matrix],
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Planted in the matrix (a channel's index, a [[torch]] url), in what a test prints and
    raises: not in stdout, stderr, run.json, results.json, summary.md, matrix.html, the
    merged junit.xml, a cell's result, junit, events or pytest log, nor the step summary."""
    from tests.harness import fake_cells

    monkeypatch.setitem(fake_cells.TESTS, "leaky", LEAKY_TESTS)
    tables = textwrap.dedent(f"""
        [channels.mirror]
        index-url = "https://user:{SECRET}@mirror.invalid/simple"

        [[torch]]
        version = "2.9.0"
        channel = "mirror"

        [[torch]]
        version = "2.10.0"
        url = "https://user:{SECRET}@mirror.invalid/torch-2.10.0-py3-none-any.whl"
        """)
    matrix = cell_world("leaky", versions=("2.8.0",), tables=tables)
    assert SECRET in matrix.path.read_text(encoding="utf-8")
    step_summary = in_tmp / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))

    outputs = []
    outputs.append(run_cli(capsys, "matrix", "--matrix", str(matrix.path), "--out", "run"))
    outputs.append(run_cli(capsys, "report", "run"))
    outputs.append(run_cli(capsys, "report", "--merge", "run", "--out", "merged"))
    outputs.append(
        run_cli(
            capsys,
            "matrix",
            "--matrix",
            str(matrix.path),
            "--out",
            "again",
            "--resume",
            "run",
            "--baseline",
            "run/results.json",
        )
    )
    for code, out, err in outputs:
        assert code == 1  # test_leaks fails
        assert SECRET not in out + err
        assert "***@mirror.invalid" in out  # the console says where, without the secret
    written = [p for folder in ("run", "merged", "again") for p in files_under(in_tmp / folder)]
    names = {p.name for p in written}
    assert {
        "run.json",
        "results.json",
        "summary.md",
        "matrix.html",
        "junit.xml",
        "result.json",
        "pytest.log",
        "events.jsonl",
    } <= names
    leaks = [str(p) for p in [*written, step_summary] if SECRET.encode() in p.read_bytes()]
    assert leaks == []
    cell = json.loads(
        (in_tmp / "run" / "cells" / "torch2.10.0-torch.ao-py3.11" / "result.json").read_text(
            encoding="utf-8"
        )
    )
    assert cell["cell"]["url"] == "https://***@mirror.invalid/torch-2.10.0-py3-none-any.whl"
    assert "resuming 3 finished cell(s)" in outputs[3][1]  # redacted cells still match


# --- files: one mode, atomic, concurrent --------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_every_file_a_run_writes_has_one_mode(
    cell_world: Callable[..., Matrix], in_tmp: Path, capsys: pytest.CaptureFixture[str], umask: int
) -> None:
    matrix = cell_world("plain", versions=("2.8.0",))
    wheel = in_tmp / "w-1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    previous = os.umask(umask)
    try:
        assert run_cli(capsys, "matrix", "--matrix", str(matrix.path), "--out", "run")[0] == 0
        assert run_cli(capsys, "report", "run")[0] == 0
        download(wheel.as_uri(), in_tmp / "downloads" / wheel.name)
    finally:
        os.umask(previous)
    modes = {
        str(p.relative_to(in_tmp)): stat.S_IMODE(p.stat().st_mode)
        for folder in ("run", "downloads")
        for p in files_under(in_tmp / folder)
    }
    assert {
        "run/results.json",
        "run/summary.md",
        "run/matrix.html",
        "run/junit.xml",
        "run/run.json",
        f"run/cells/{CELL}/result.json",
        f"downloads/{wheel.name}",
    } <= set(modes)
    assert set(modes.values()) == {0o666 & ~umask}, modes


def test_two_reports_at_once_on_one_run_both_finish(
    cell_world: Callable[..., Matrix], in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("plain", versions=("2.7.0", "2.8.0", "2.9.0"))
    assert run_cli(capsys, "matrix", "--matrix", str(matrix.path), "--out", "run")[0] == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(3):
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "compat", "report", "run"],
                cwd=in_tmp,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, out + err
    assert json.loads((in_tmp / "run" / "results.json").read_text())["exit_code"] == 0
    assert not list((in_tmp / "run").rglob(".*.tmp"))  # no temp file left behind


# --- baselines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"cells": [{"cell_id": "c", "status": "passed", "tests": [{"nodeid": "t"}]}]}',
            "cells[0].tests[0]: expected an object with string nodeid and outcome",
        ),
        ('{"cells": [{"cell_id": 5}]}', "cells[0]: expected an object with a string cell_id"),
        ('{"cells": {}}', "KeyError: 'cells'"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (
            '{"cells": [{"cell_id": "c", "tests": ' + "[" * 5000 + "]" * 5000 + "}]}",
            "nested too deeply",
        ),
    ],
)
def test_a_bad_baseline_is_refused_before_any_cell_runs(
    cell_world: Callable[..., Matrix],
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    matrix = cell_world("plain", versions=("2.8.0",))
    (in_tmp / "baseline.json").write_text(content, encoding="utf-8")
    code, out, err = run_cli(
        capsys, "matrix", "--matrix", str(matrix.path), "--baseline", "baseline.json"
    )
    assert code == 2
    assert err.startswith("compat: error: --baseline baseline.json: not a results.json (")
    assert message in err
    assert err.count("\n") == 1
    assert out == ""
    assert not (in_tmp / "reports").exists()  # no run began


def test_a_huge_baseline_is_summarised_on_the_console(
    cell_world: Callable[..., Matrix], in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("plain", versions=("2.8.0",))
    assert run_cli(capsys, "matrix", "--matrix", str(matrix.path), "--out", "run")[0] == 0
    vanished = 300_000
    cells = [
        {
            "cell_id": f"torch9.{n}.0-torch.ao-py3.11",
            "status": "passed",
            "tests": [{"nodeid": "t.py::test_x", "outcome": "passed"}],
        }
        for n in range(vanished)
    ]
    baseline = in_tmp / "baseline.json"
    baseline.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    assert baseline.stat().st_size > 16 * 2**20
    code, out, _ = run_cli(capsys, "report", "run", "--baseline", str(baseline))
    assert code == 0
    assert f"cells that vanished: {vanished}" in out
    assert out.count("torch9.") == DIFF_LINES
    assert (
        f"... and {vanished - DIFF_LINES} more (all of them: baseline_diff in results.json)" in out
    )
    assert len(out.splitlines()) < 200
    summary = (in_tmp / "run" / "summary.md").read_text(encoding="utf-8")
    assert summary.count("torch9.") == DIFF_LINES
    doc = json.loads((in_tmp / "run" / "results.json").read_text(encoding="utf-8"))
    assert len(doc["baseline_diff"]["vanished"]) == vanished


# --- what a run folder says cannot send a write outside it -------------------------------


def test_a_result_file_cannot_name_a_folder_outside_the_run(
    cell_world: Callable[..., Matrix], in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("plain", versions=("2.7.0", "2.8.0"))
    assert run_cli(capsys, "matrix", "--matrix", str(matrix.path), "--out", "run")[0] == 0
    cells = in_tmp / "run" / "cells"
    good = json.loads((cells / CELL / "result.json").read_text(encoding="utf-8"))
    for folder, cell_id in [("evil", "../../../escaped"), ("other", CELL), ("dots", "..")]:
        (cells / folder).mkdir()
        (cells / folder / "result.json").write_text(
            json.dumps({**good, "cell_id": cell_id}), encoding="utf-8"
        )
    outside = in_tmp / "outside"
    outside.mkdir()
    (cells / "linked").symlink_to(outside)
    (outside / "result.json").write_text(
        json.dumps({**good, "cell_id": "linked"}), encoding="utf-8"
    )
    manifest = json.loads((in_tmp / "run" / "run.json").read_text(encoding="utf-8"))
    before = snapshot(outside)
    code, _, err = run_cli(capsys, "report", "run")
    assert code == 0, err
    for folder in ("evil", "other", "dots", "linked"):
        assert f"compat: skipped {cells / folder / 'result.json'}: " in err
    assert snapshot(outside) == before
    assert not (in_tmp / "escaped").exists()
    assert [p.name for p in in_tmp.iterdir() if p.name.startswith("escaped")] == []

    manifest["cells"][0]["id"] = "../../manifest-escape"
    (in_tmp / "run" / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    code, _, err = run_cli(capsys, "report", "run")
    assert code == 3  # no manifest to say what the run was: the unreadable folders count
    assert "run.json: not a run manifest (cells: an entry without a valid cell id)" in err
    assert not list(in_tmp.rglob("manifest-escape"))
    code, _, err = run_cli(capsys, "report", "--merge", "run", "--out", "merged")
    assert code == 2  # the only run of the merge has no readable manifest
    assert "no readable run manifest" in err


# --- prefetch and offline ----------------------------------------------------------------


def test_prefetch_records_a_hash_mismatch_and_keeps_the_rest(
    write_matrix: Callable[..., Path],
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_matrix('[[torch]]\nversion = "2.7.0"\n[[torch]]\nversion = "2.8.0"\n')
    source = in_tmp / "index"
    source.mkdir()
    wheels = {v: source / f"torch-{v}-py3-none-any.whl" for v in ("2.7.0", "2.8.0")}
    for version, wheel in wheels.items():
        wheel.write_bytes(f"torch {version}".encode())

    def fake_lock(requirements: list[str], *, folder: Path, **_: object) -> Path:
        version = requirements[0].split("==")[1]
        digest = hashlib.sha256(wheels[version].read_bytes()).hexdigest()
        if version == "2.8.0":
            digest = "0" * 64  # what the index's listing promised; the file differs
        folder.mkdir(parents=True, exist_ok=True)
        lock = folder / "pylock.toml"
        lock.write_text(
            textwrap.dedent(f"""
            lock-version = "1.0"
            created-by = "test"
            [[packages]]
            name = "torch"
            version = "{version}"
            wheels = [{{ url = "{wheels[version].as_uri()}", hashes = {{ sha256 = "{digest}" }} }}]
            """),
            encoding="utf-8",
        )
        return lock

    monkeypatch.setattr(prefetch_module, "compile_lock", fake_lock)
    monkeypatch.setattr(prefetch_module, "find_interpreter", lambda python: sys.executable)
    code, out, err = run_cli(capsys, "prefetch", "--matrix", str(path), "--wheelhouse", "wh")
    assert code == 3, err
    assert "prefetch: torch2.7.0-torch.ao-py3.11: 1 wheels" in out
    assert (
        "prefetch: torch2.8.0-torch.ao-py3.11: hash-mismatch: torch-2.8.0-py3-none-any.whl: "
        f"sha256 {hashlib.sha256(b'torch 2.8.0').hexdigest()} != {'0' * 64} (the lock's); "
        "the file was removed"
    ) in out
    manifest = json.loads((in_tmp / "wh" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["cells"]["torch2.7.0-torch.ao-py3.11"]["wheels"] == [wheels["2.7.0"].name]
    assert manifest["cells"]["torch2.8.0-torch.ao-py3.11"]["error"].startswith("hash-mismatch")
    assert sorted(p.name for p in (in_tmp / "wh").glob("*.whl")) == [wheels["2.7.0"].name]


def test_offline_without_the_version_in_the_wheelhouse_is_no_such_version(
    write_matrix: Callable[..., Path],
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Real uv, offline, against an empty wheelhouse: uv's whole sentence, its right kind."""
    if find_interpreter("3.11") is None:
        pytest.skip("no CPython 3.11 here")
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(in_tmp / "envs"))
    path = write_matrix('[matrix]\nstacks = ["torch.ao"]\n[[torch]]\nversion = "2.8.0"\n')
    (in_tmp / "wh").mkdir()
    (in_tmp / "wh" / "manifest.json").write_text('{"files": {}, "cells": {}}', encoding="utf-8")
    code, out, _ = run_cli(
        capsys, "matrix", "--matrix", str(path), "--offline", "wh", "--out", "run"
    )
    assert code == 3
    cell = json.loads((in_tmp / "run" / "cells" / CELL / "result.json").read_text())
    assert cell["status"] == "install-failed"
    assert cell["reason"] == (
        "no-such-version: Because torch was not found in the provided "
        "package locations and you require torch==2.8.0, we can "
        "conclude that your requirements are unsatisfiable."
    )
    assert f"{CELL}: install-failed: no-such-version: Because torch was not found" in out


def test_wrapped_uv_reports_are_read_whole() -> None:
    from compat.harness.install.uv_cli import _classify_uv_error

    text = (
        "  \u00d7 No solution found when resolving dependencies:\n"
        "  \u2570\u2500\u25b6 Because torch==2.9.0 was not found in the provided package "
        "locations and you require\n"
        "      torch==2.9.0, we can conclude that your requirements are unsatisfiable.\n"
    )
    assert _classify_uv_error(text) == (
        "no-such-version",
        "Because torch==2.9.0 was not found in the provided package "
        "locations and you require torch==2.9.0, we can conclude that your requirements are "
        "unsatisfiable.",
    )


def test_megabytes_in_a_result_make_a_bounded_report(
    cell_world: Callable[..., Matrix], in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the fuzzer: 2 MB route values laid out in the markdown table took seconds
    (tabulate measures every character). Grid cells and listed lines are cut, redacted first;
    results.json and the HTML details keep everything."""
    matrix = cell_world("plain", versions=("2.8.0",))
    assert run_cli(capsys, "matrix", "--matrix", str(matrix.path), "--out", "run")[0] == 0
    path = in_tmp / "run" / "cells" / CELL / "result.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    huge = "x" * 2_000_000 + f" https://user:{SECRET}@host/"
    result.update(
        status="failed",
        reason=huge,
        routes={"capture": huge},
        warnings=[huge],
        adaptations={"capture": huge},
    )
    result["tests"][0]["nodeid"] = huge
    path.write_text(json.dumps(result), encoding="utf-8")
    code, out, _ = run_cli(capsys, "report", "run")
    assert code == 1
    assert max(len(line) for line in out.splitlines()) < 2000
    assert "…" in out
    assert SECRET not in out
    summary = (in_tmp / "run" / "summary.md").read_text(encoding="utf-8")
    assert max(len(line) for line in summary.splitlines()) < 5000
    doc = json.loads((in_tmp / "run" / "results.json").read_text(encoding="utf-8"))
    assert len(doc["cells"][0]["reason"]) > 2_000_000
