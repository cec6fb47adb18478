"""A real two-version matrix driven through ``nox``: install, test core, grid, reuse.

Needs PyPI (torch 2.8.0 is a CUDA wheel of ~0.9 GB plus ~2.5 GB of nvidia packages on a
cold uv cache) and runs the seven metadata-porting tests in every applicable cell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .isolation import write_isolation_test

pytestmark = [pytest.mark.e2e, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[2]
MATRIX = "tests/e2e/matrix.toml"
SEED = ROOT / "tests" / "core" / "test_metadata_porting.py"  # the core's first suite
SEVEN = {
    "test_simple_metadata_porting",
    "test_metadata_porting_with_no_quant_inbetween",
    "test_metadata_porting_for_dq",
    "test_metadata_porting_for_two_dq",
    "test_metadata_porting_for_dq_no_static_q",
    "test_no_metadata_porting",
    "test_no_metadata_porting_through_unknown_ops",
}


def nox(
    *args: str, envs: Path, extra_env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COMPAT_ENVS_DIR": str(envs), **(extra_env or {})}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )


def cells(run: Path) -> dict[str, dict[str, Any]]:
    doc = json.loads((run / "results.json").read_text(encoding="utf-8"))
    return {c["cell_id"]: c for c in doc["cells"]}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("e2e")
    envs, out = base / "envs", base / "run1"
    proc = nox("-s", "matrix", "--", "--matrix", MATRIX, "--out", str(out), "-j", "2", envs=envs)
    return envs, out, proc.stdout + proc.stderr


def test_matrix_runs_every_applicable_cell(first_run: tuple[Path, Path, str]) -> None:
    _, out, log = first_run
    found = cells(out)
    assert set(found) == {
        "torch2.8.0-torch.ao-py3.11",
        "torch2.13.0-torch.ao-py3.11",
        "torch2.13.0-torchao0.18.0-py3.11",
    }, log
    assert found["torch2.13.0-torch.ao-py3.11"]["status"] == "not-applicable"
    for cell_id in ("torch2.8.0-torch.ao-py3.11", "torch2.13.0-torchao0.18.0-py3.11"):
        cell = found[cell_id]
        names = {t["nodeid"].rsplit("::", 1)[-1] for t in cell["tests"]}
        assert names == SEVEN, (cell_id, cell["status"], cell["reason"], log)
        assert cell["fingerprint"]["torch"].startswith(cell["cell"]["torch"])
        assert cell["routes"]["pt2e"].startswith(cell["cell"]["stack"].replace(".", "."))
        assert (out / "cells" / cell_id / "junit.xml").is_file()
        assert (out / "cells" / cell_id / "events.jsonl").is_file()
    # The grid is printed, the documents are written.
    assert "test_no_metadata_porting_through_unknown_ops" in log
    assert (out / "summary.md").read_text(encoding="utf-8").count("test_") >= 7


def test_exit_code_matches_the_report(first_run: tuple[Path, Path, str]) -> None:
    _, out, log = first_run
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert f"exit code {doc['exit_code']}" in log
    unexpected = [
        c["cell_id"]
        for c in doc["cells"]
        if c["status"] in ("failed", "error", "crashed", "timed-out", "import-failed")
    ]
    assert (doc["exit_code"] == 1) == bool(unexpected), log
    assert doc["exit_code"] == 0, log


def test_warm_rerun_reuses_every_env(first_run: tuple[Path, Path, str], tmp_path: Path) -> None:
    envs, _, _ = first_run
    out = tmp_path / "run2"
    proc = nox("-s", "matrix", "--", "--matrix", MATRIX, "--out", str(out), envs=envs)
    applicable = [c for c in cells(out).values() if c["status"] != "not-applicable"]
    assert applicable
    for cell in applicable:
        assert cell["install"]["reused"] is True, proc.stdout
        assert cell["timings"]["install"] < 5.0
    assert "reused environment" in proc.stdout


def test_one_cell_session_and_report_session(
    first_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    envs, run1, _ = first_run
    listed = nox("-l", envs=envs, extra_env={"COMPAT_MATRIX": MATRIX})
    assert "cell(torch2.13.0-torchao0.18.0-py3.11)" in listed.stdout
    assert "cell(torch2.13.0-torch.ao-py3.11)" not in listed.stdout  # not applicable
    out = tmp_path / "one"
    proc = nox(
        "-s",
        "cell(torch2.13.0-torchao0.18.0-py3.11)",
        "--",
        "--out",
        str(out),
        envs=envs,
        extra_env={"COMPAT_MATRIX": MATRIX},
    )
    assert list(cells(out)) == ["torch2.13.0-torchao0.18.0-py3.11"], proc.stdout + proc.stderr
    before = (run1 / "results.json").read_text(encoding="utf-8")
    report = nox("-s", "report", "--", str(run1), envs=envs)
    assert "test_simple_metadata_porting" in report.stdout
    after = json.loads((run1 / "results.json").read_text(encoding="utf-8"))
    assert after["cells"] == json.loads(before)["cells"]


def test_bad_matrix_is_exit_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "tests" / "core").mkdir(parents=True)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[torch]]\nversion = "2.x"\n', encoding="utf-8")
    proc = nox("-s", "matrix", "--", "--matrix", str(bad), envs=tmp_path / "envs")
    assert proc.returncode == 1  # nox's own code for a failed session
    assert f"{bad}: torch[0].version: '2.x' is not a valid version" in proc.stderr
    assert "compat matrix: exit code 2 (usage or configuration error)" in proc.stderr
    assert "Traceback" not in proc.stderr
    gate = subprocess.run(
        [sys.executable, "-m", "compat", "matrix", "--matrix", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert gate.returncode == 2, gate.stderr  # the gate's own code, for a pipeline


def test_cell_sessions_run_on_after_one_fails_and_nox_summarises(
    first_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    """nox used as nox: a failing cell session does not stop the next one, and nox's
    summary and --report say which failed."""
    envs, _, _ = first_run
    user_tests = tmp_path / "user_tests"
    user_tests.mkdir()
    (user_tests / "test_user.py").write_text(
        "import torch\n\n\ndef test_not_on_2_8():\n"
        "    assert not torch.__version__.startswith('2.8'), 'planted: fails on 2.8'\n",
        encoding="utf-8",
    )
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(
        f"""
[matrix]
name = "sessions"
tests = ["{user_tests}"]
deps-as-of = "torch-release"  # as tests/e2e/matrix.toml: the same envs are reused

[[torch]]
version = "2.8.0"
stacks = ["torch.ao"]

[[torch]]
version = "2.13.0"
torchao = "0.18.0"
stacks = ["torchao"]
""",
        encoding="utf-8",
    )
    first, second = "torch2.8.0-torch.ao-py3.11", "torch2.13.0-torchao0.18.0-py3.11"
    report = tmp_path / "nox-report.json"
    # No --out: each session writes a run folder of its own (one folder is never reused)
    # under reports/ where nox runs, which is the noxfile's folder: a noxfile here that
    # is the project's keeps those folders (and reports/latest) out of the checkout.
    (tmp_path / "sessions_noxfile.py").write_text("from noxfile import *  # noqa: F403\n")
    proc = nox(
        "--report",
        str(report),
        "-f",
        str(tmp_path / "sessions_noxfile.py"),
        "-s",
        f"cell({first})",
        f"cell({second})",
        envs=envs,
        extra_env={"COMPAT_MATRIX": str(matrix), "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1, log
    assert "compat cell: exit code 1 (unexpected failures)" in log
    assert "Ran 2 sessions" in log, log
    sessions = {
        s["signatures"][0]: s["result"]
        for s in json.loads(report.read_text(encoding="utf-8"))["sessions"]
    }
    # session.error is nox's "aborted"; the next session still runs
    assert sessions == {f"cell({first})": "aborted", f"cell({second})": "success"}, sessions
    assert f"{second}: passed" in log
    assert len(list((tmp_path / "reports").glob("*-sessions"))) == 2, log


def test_prefetch_then_offline_run(tmp_path: Path) -> None:
    """Wheels of a torchao-era cell into a wheelhouse, then a run with no index at all;
    the repository itself installed in the cell (``install-project``, a hatchling build:
    its backend and the ``editables`` its editable hook adds come from the wheelhouse)."""
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(
        f"""
[matrix]
name = "offline"
tests = ["{SEED}", "tests"]
install-project = true

[[torch]]
version = "2.13.0"
torchao = "0.18.0"
""",
        encoding="utf-8",
    )
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "offproj"\nversion = "0.1.0"\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["src/offproj"]\n',
        encoding="utf-8",
    )
    (tmp_path / "src" / "offproj").mkdir(parents=True)
    (tmp_path / "src" / "offproj" / "__init__.py").write_text("VALUE = 42\n", encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_offproj.py").write_text(
        "def test_project_in_the_cell():\n    import offproj\n    assert offproj.VALUE == 42\n",
        encoding="utf-8",
    )
    wheelhouse = tmp_path / "wheelhouse"
    fetched = nox(
        "-s",
        "prefetch",
        "--",
        "--matrix",
        str(matrix),
        "--wheelhouse",
        str(wheelhouse),
        envs=tmp_path / "envs",
    )
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    manifest = json.loads((wheelhouse / "manifest.json").read_text(encoding="utf-8"))
    torch_files = [f for f in manifest["files"] if f.startswith("torch-2.13.0")]
    assert len(torch_files) == 1
    assert len(manifest["files"][torch_files[0]]["sha256"]) == 64
    built_by = {f.split("-")[0] for f in manifest["files"]}
    assert {"hatchling", "editables"} <= built_by, sorted(built_by)
    # A cold uv cache, uv told to stay offline, and no index: only the wheelhouse is left.
    out = tmp_path / "run"
    proc = nox(
        "-s",
        "matrix",
        "--",
        "--matrix",
        str(matrix),
        "--out",
        str(out),
        "--offline",
        str(wheelhouse),
        envs=tmp_path / "fresh-envs",
        extra_env={"UV_CACHE_DIR": str(tmp_path / "cold-cache"), "UV_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (cell,) = [c for c in cells(out).values() if c["status"] != "not-applicable"]
    assert cell["status"] == "passed"
    assert cell["install"]["reused"] is False
    assert cell["install"]["wheels"]["torch"]["file"] == torch_files[0]
    project_test = [t for t in cell["tests"] if t["nodeid"].endswith("test_project_in_the_cell")]
    assert [t["outcome"] for t in project_test] == ["passed"]


def test_real_results_match_the_schema(first_run: tuple[Path, Path, str]) -> None:
    import jsonschema

    _, out, _ = first_run
    schema_path = ROOT / "compat" / "harness" / "results" / "results.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(
        json.loads((out / "results.json").read_text(encoding="utf-8"))
    )


def test_baseline_diff_names_a_deliberately_broken_cell(
    first_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    """Force the capture API torch removed in 2.7 onto the 2.8.0 cell: the tests can no
    longer capture a graph there, and the diff against the first run must say so."""
    envs, run1, _ = first_run
    broken = tmp_path / "broken.toml"
    text = (
        (ROOT / MATRIX)
        .read_text(encoding="utf-8")
        .replace(
            'tests = ["../core/test_metadata_porting.py"]',
            f'tests = ["{SEED}"]\nenv = {{ COMPAT_CAPTURE = "capture_pre_autograd_graph" }}',
        )
    )
    broken.write_text(text + '\n[[exclude]]\ntorch = "2.13.0"\n', encoding="utf-8")
    proc = nox(
        "-s",
        "matrix",
        "--",
        "--matrix",
        str(broken),
        "--out",
        str(tmp_path / "run"),
        "--baseline",
        str(run1 / "results.json"),
        envs=envs,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    regressions = doc["baseline_diff"]["regressions"]
    assert regressions, proc.stdout
    assert all(r.startswith("torch2.8.0-torch.ao-py3.11: ") for r in regressions)
    assert "test_simple_metadata_porting: passed -> " in " ".join(regressions)
    assert doc["baseline_diff"]["vanished"] == [
        "torch2.13.0-torch.ao-py3.11",
        "torch2.13.0-torchao0.18.0-py3.11",
    ]
    assert "regressions: " in proc.stdout
    assert "Against " in (tmp_path / "run" / "summary.md").read_text(encoding="utf-8")


def test_two_runs_at_once_share_one_env_build(
    first_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    """Two terminals (or a CI retry) on the same envs: one builds, the other waits and
    reuses; both reports are complete and nothing is corrupted."""
    import shutil

    envs, _, _ = first_run
    cell_id = "torch2.13.0-torchao0.18.0-py3.11"
    shutil.rmtree(envs / cell_id)
    env = {**os.environ, "COMPAT_ENVS_DIR": str(envs), "COMPAT_MATRIX": MATRIX}
    env.pop("GITHUB_STEP_SUMMARY", None)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nox",
                "-s",
                f"cell({cell_id})",
                "--",
                "--out",
                str(tmp_path / name),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("a", "b")
    ]
    logs = [p.communicate(timeout=1800)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    results = [cells(tmp_path / name)[cell_id] for name in ("a", "b")]
    assert sorted(r["install"]["reused"] for r in results) == [False, True]
    assert [r["status"] for r in results] == ["passed", "passed"]
    assert results[0]["install"]["key"] == results[1]["install"]["key"]


def test_real_shards_merge_into_the_single_run(
    first_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    envs, run1, _ = first_run
    for shard in ("1/2", "2/2"):
        proc = nox(
            "-s",
            "matrix",
            "--",
            "--matrix",
            MATRIX,
            "--shard",
            shard,
            "--out",
            str(tmp_path / "artifacts" / shard.replace("/", "-of-")),
            envs=envs,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = tmp_path / "merged"
    proc = nox(
        "-s",
        "report",
        "--",
        "--merge",
        str(tmp_path / "artifacts"),
        "--out",
        str(merged),
        envs=envs,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    single, combined = cells(run1), cells(merged)
    assert list(combined) == list(single)
    for cell_id, cell in single.items():
        assert combined[cell_id]["status"] == cell["status"]
        assert {t["nodeid"]: t["outcome"] for t in combined[cell_id]["tests"]} == {
            t["nodeid"]: t["outcome"] for t in cell["tests"]
        }
        assert combined[cell_id]["routes"] == cell["routes"]
        assert combined[cell_id]["fingerprint"].get("torch") == cell["fingerprint"].get("torch")


def test_a_regression_planted_in_the_installed_pass_turns_its_tests_red(
    first_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    """The gate's promise, on real torch: quantization_tag no longer ported (only
    stack_trace) turns every test that checks tags red in both cells, and only those."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import plant_regression
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    envs, _, _ = first_run
    planted = [
        p
        for cell in ("torch2.8.0-torch.ao-py3.11", "torch2.13.0-torchao0.18.0-py3.11")
        for p in plant_regression.passes(envs / cell)
    ]
    assert len(planted) == 2
    try:
        assert all(plant_regression.plant(p) for p in planted)
        out = tmp_path / "planted"
        proc = nox("-s", "matrix", "--", "--matrix", MATRIX, "--out", str(out), envs=envs)
    finally:
        for path in planted:
            plant_regression.undo(path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    broken = {
        "test_simple_metadata_porting",
        "test_metadata_porting_with_no_quant_inbetween",
        "test_metadata_porting_for_two_dq",
        "test_metadata_porting_for_dq_no_static_q",
        "test_no_metadata_porting_through_unknown_ops",
    }
    for cell_id in ("torch2.8.0-torch.ao-py3.11", "torch2.13.0-torchao0.18.0-py3.11"):
        outcomes = {
            t["nodeid"].rsplit("::", 1)[-1]: t["outcome"] for t in cells(out)[cell_id]["tests"]
        }
        assert {n for n, o in outcomes.items() if o == "failed"} == broken, outcomes
        assert outcomes["test_no_metadata_porting"] == "passed"  # nothing to port: unbroken
        assert outcomes["test_metadata_porting_for_dq"] == "skipped"  # upstream's skip


def test_a_cell_sees_no_host_path(first_run: tuple[Path, Path, str], tmp_path: Path) -> None:
    """Isolation: the cell imports the shims from its own env and nothing of the host (its
    site-packages, this checkout), whatever the test folder (a user's own suite here)."""
    import site

    envs, _, _ = first_run
    user = tmp_path / "user_tests"
    user.mkdir()
    write_isolation_test(user, [*site.getsitepackages(), str(ROOT)])
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(
        f"""
[matrix]
name = "isolation"
tests = ["{user}"]
deps-as-of = "torch-release"
env = {{ COMPAT_ENVS_DIR = "{envs}" }}

[[torch]]
version = "2.13.0"
torchao = "0.18.0"
stacks = ["torchao"]
""",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "compat",
            "matrix",
            "--matrix",
            str(matrix),
            "--out",
            str(tmp_path / "run"),
        ],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        check=False,
        env={**os.environ, "COMPAT_ENVS_DIR": str(envs)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
