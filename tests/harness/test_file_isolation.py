"""Any test suite, told truthfully, through the real harness (only the uv install is stood
in for: the cells run this interpreter with a stand-in ``torch``).

One process per test file, as PyTorch's own CI runs its files: a file's verdict never
depends on another file's module-level state; a file that cannot be imported is a red row
of its own; a file that dies costs only itself; suites run only in the cells they were
written for.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compat.harness.commands import cli
from compat.harness.config.matrix import Matrix
from compat.harness.reports.grid import build_grid, status_label
from compat.harness.results.classify import flag_missing_tests
from compat.harness.results.model import CellStatus, Outcome

from .test_faults import outcomes, run_all

# One file changes the state every other file of its process would see, as PyTorch's own
# numeric-debugger file sets torch._dynamo.config.cache_size_limit at import; the other
# passes only when it runs alone, as it does in upstream's CI.
SETS_STATE = """
    import json
    json.LEAKED_BY_ANOTHER_FILE = 128
    def test_sets(): pass
"""
NEEDS_FRESH_STATE = """
    import json
    def test_sees_only_its_own_state():
        assert not hasattr(json, "LEAKED_BY_ANOTHER_FILE")
"""
HEALTHY = """
    def test_one(): pass
    def test_two(): pass
"""


def by_id(results: dict[str, Any], cell: str = "torch2.8.0-torch.ao-py3.11") -> Any:
    return results[cell]


@pytest.mark.parametrize(("isolation", "verdict"), [("file", "passed"), ("cell", "failed")])
def test_a_files_verdict_does_not_depend_on_the_files_beside_it(
    cell_world: Callable[..., Matrix], tmp_path: Path, isolation: str, verdict: str
) -> None:
    matrix = cell_world(
        "plain",
        versions=("2.8.0",),
        settings=f'isolation = "{isolation}"\n',
        files={"tests/core/test_a_sets.py": SETS_STATE, "tests/core/test_b.py": NEEDS_FRESH_STATE},
    )
    result = by_id(run_all(matrix, tmp_path / "run"))
    assert result.isolation == isolation
    assert outcomes(result)["test_sees_only_its_own_state"] == verdict
    if isolation == "file":
        assert [r["nodeid"] for r in result.file_runs] == [
            "tests/core/test_a_sets.py",
            "tests/core/test_b.py",
            "tests/core/test_fault.py",
        ]
        assert result.fingerprint["file_process"] == "fork"


def test_an_import_error_is_a_red_row_naming_the_exception(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    matrix = cell_world(
        "plain",
        versions=("2.8.0",),
        files={
            "tests/core/test_needs_dep.py": "import expecttest_not_installed\ndef test_x(): pass\n",
            "tests/core/test_broken.py": "raise RuntimeError('broken at import')\n",
        },
    )
    result = by_id(run_all(matrix, tmp_path / "run"))
    rows = {t.nodeid: t for t in result.tests}
    dep = rows["tests/core/test_needs_dep.py"]
    assert dep.outcome is Outcome.ERROR
    assert dep.message.startswith(
        "E   ModuleNotFoundError: No module named 'expecttest_not_installed'"
    )
    assert rows["tests/core/test_broken.py"].outcome is Outcome.ERROR
    assert "RuntimeError: broken at import" in rows["tests/core/test_broken.py"].message
    assert outcomes(result)["test_one"] == "passed"  # the other files ran
    assert result.status is CellStatus.ERROR
    assert "missing dependency 'expecttest_not_installed' (add it to deps)" in result.reason
    assert result.reason.count("missing dependency") == 1
    assert status_label(result) == "ERROR (2✓ 2E)"
    grid = build_grid([result])
    assert grid.row(grid.rows[0].kind, "tests/core/test_needs_dep.py").values[0].text == "E"


@pytest.mark.parametrize("isolation", ["file", "cell"])
def test_collection_continues_past_a_broken_file(
    cell_world: Callable[..., Matrix], tmp_path: Path, isolation: str
) -> None:
    matrix = cell_world(
        "plain",
        versions=("2.8.0",),
        settings=f'isolation = "{isolation}"\n',
        files={"tests/core/test_a_broken.py": "import nope_not_a_module\n"},
    )
    result = by_id(run_all(matrix, tmp_path / "run"))
    assert outcomes(result) == {
        "tests/core/test_a_broken.py": "error",
        "test_one": "passed",
        "test_two": "passed",
    }


DEATHS = {
    "tests/core/test_a_healthy.py": HEALTHY,
    "tests/core/test_b_segfault.py": """
        import ctypes
        def test_segfault(): ctypes.string_at(0)
    """,
    "tests/core/test_c_hang.py": """
        import time
        def test_hang(): time.sleep(600)
    """,
    "tests/core/test_d_exit.py": """
        import os
        def test_exits(): os._exit(0)
    """,
    "tests/core/test_e_healthy_after.py": """
        def test_after(): pass
    """,
}


def test_a_dead_file_costs_only_itself(cell_world: Callable[..., Matrix], tmp_path: Path) -> None:
    matrix = cell_world(
        "plain", versions=("2.8.0",), settings="file-timeout = 3\n", timeout=120, files=DEATHS
    )
    started = time.monotonic()
    result = by_id(run_all(matrix, tmp_path / "run"))
    assert time.monotonic() - started < 60
    assert outcomes(result) == {
        "test_one": "passed",
        "test_two": "passed",
        "test_segfault": "error",
        "test_hang": "error",
        "test_exits": "error",
        "test_after": "passed",
    }
    assert result.status is CellStatus.CRASHED
    assert "killed by SIGSEGV in tests/core/test_b_segfault.py::test_segfault" in result.reason
    assert "exited with 0 before pytest finished in tests/core/test_d_exit.py" in result.reason
    assert "timed out after 3s (file-timeout) in tests/core/test_c_hang.py" in result.reason
    ends = {r["nodeid"]: r for r in result.file_runs}
    assert ends["tests/core/test_b_segfault.py"]["signal"] == "SIGSEGV"
    assert ends["tests/core/test_c_hang.py"]["timed_out"] is True
    assert ends["tests/core/test_d_exit.py"]["returncode"] == 0


def test_what_a_passing_test_started_does_not_outlive_its_file(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    marker = f"compat-orphan-{os.getpid()}-{time.monotonic_ns()}"
    matrix = cell_world(
        "plain",
        versions=("2.8.0",),
        files={
            "tests/core/test_spawns.py": f"""
                import subprocess
                def test_plain_child():
                    subprocess.Popen(["sleep", "301", "{marker}-plain"])
                def test_daemon():
                    subprocess.Popen(["setsid", "sleep", "302", "{marker}-daemon"])
            """
        },
    )
    result = by_id(run_all(matrix, tmp_path / "run"))
    assert outcomes(result)["test_daemon"] == "passed"
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    assert left.stdout.strip() == "", "a process a test started outlived its cell"


SCOPED = """
[[suite]]
path = "suites/new"
torch = ">=2.9"

[[suite]]
path = "suites/old"
torch = "<2.9"
"""


def test_a_suite_runs_only_in_the_cells_it_was_written_for(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    matrix = cell_world(
        "plain",
        tables=SCOPED,
        files={
            # the same basename in two folders, and no __init__.py anywhere
            "suites/new/test_dq.py": "def test_new(): pass\n",
            "suites/old/test_dq.py": "def test_old(): pass\n",
        },
    )
    results = run_all(matrix, tmp_path / "run")
    old, new = results["torch2.8.0-torch.ao-py3.11"], results["torch2.9.0-torch.ao-py3.11"]
    assert old.status is new.status is CellStatus.PASSED, (old.reason, new.reason)
    assert set(outcomes(old)) == {"test_old"}  # declared suites: no default tests path
    assert set(outcomes(new)) == {"test_new"}
    assert old.out_of_scope == ["suites/new/test_dq.py"]
    grid = build_grid([old, new])
    row = next(r for r in grid.rows if r.key == "suites/new/test_dq.py::test_new")
    assert [v.text for v in row.values] == ["n/s", "✓"]


def test_a_suite_file_inside_a_tests_folder_runs_only_where_its_suite_applies(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    matrix = cell_world(
        "plain",
        settings='tests = ["tests/core"]\n',
        tables='[[suite]]\npath = "tests/core/test_new_api.py"\ntorch = ">=2.9"\n',
        files={"tests/core/test_new_api.py": "def test_new_api(): pass\n"},
    )
    results = run_all(matrix, tmp_path / "run")
    old, new = results["torch2.8.0-torch.ao-py3.11"], results["torch2.9.0-torch.ao-py3.11"]
    assert old.status is new.status is CellStatus.PASSED, (old.reason, new.reason)
    assert "test_new_api" not in outcomes(old)  # the folder does not pull it back in
    assert old.out_of_scope == ["tests/core/test_new_api.py"]
    assert "test_new_api" in outcomes(new)
    assert set(outcomes(old)) - {"test_new_api"} == set(outcomes(new)) - {"test_new_api"}
    grid = build_grid([old, new])
    row = next(r for r in grid.rows if r.key.endswith("test_new_api"))
    assert [v.text for v in row.values] == ["n/s", "✓"]


def test_pytest_args_reach_every_file_and_the_rerun_command_reruns_the_failure(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    matrix = cell_world(
        "plain",
        versions=("2.8.0",),
        settings='pytest-args = ["-k", "not test_two"]\n',
        files={"tests/core/test_fails.py": "def test_fails(): assert 1 == 2\n"},
    )
    result = by_id(run_all(matrix, tmp_path / "run"))
    assert "test_two" not in outcomes(result)
    assert outcomes(result)["test_fails"] == "failed"
    assert result.pytest_args == ["-k", "not test_two"]
    assert result.command[-2:] == ["-k", "not test_two"]
    command = result.rerun_command
    assert command is not None
    assert "tests/core/test_fails.py::test_fails" in command
    rerun = subprocess.run(
        command, shell=True, capture_output=True, text=True, check=False, timeout=120
    )
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert "1 failed" in rerun.stdout
    assert shlex.split(command)[0] == "cd"


@pytest.mark.parametrize(
    ("table", "key", "value"),
    [
        ('[[suite]]\npath = "suites/x"\ntorch = ">=3.0"\n', "suite[0].torch", "'>=3.0'"),
        ('[[suite]]\npath = "suites/missing"\n', "suite[0].path", "'suites/missing'"),
        ('[[suite]]\npath = "suites/x"\ntorch = "2.x.y"\n', "suite[0].torch", "'2.x.y'"),
        ('[matrix]\nisolation = "thread"\n', "matrix.isolation", "'thread'"),
    ],
)
def test_a_bad_suite_is_one_line_naming_file_key_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, key: str, value: str
) -> None:
    (tmp_path / "suites" / "x").mkdir(parents=True)
    (tmp_path / "suites" / "x" / "test_x.py").write_text("def test_x(): pass\n")
    matrix = tmp_path / "matrix.toml"
    head = "" if table.startswith("[matrix]") else '[matrix]\ntests = ["suites/x"]\n'
    matrix.write_text(f'{head}{table}[[torch]]\nversion = "2.8.0"\n', encoding="utf-8")
    code = cli.main(["matrix", "--matrix", str(matrix), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert f"{matrix}: {key}: {value}" in err[0]


def test_an_expectation_cites_its_upstream_issue_and_says_when_it_was_fixed(
    cell_world: Callable[..., Matrix], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expect = """
[[expect]]
test = "test_two"
torch = ">=2.8"
raises = "AssertionError"
issue = "pytorch/pytorch#130555"
reason = "re-export drops the output node's metadata"
"""
    matrix = cell_world("plain", versions=("2.8.0", "2.9.0"), tables=expect)
    code = cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0  # without strict, a fixed expectation is listed, not a gate failure
    assert "test_two passes (fixed upstream in torch 2.8.0); retire the expectation" in out
    assert "https://github.com/pytorch/pytorch/issues/130555" in out


@pytest.mark.parametrize(
    "argv",
    [["--pytest-args", "-k 'not test_two'"], ["--", "-k", "not test_two"]],
    ids=["--pytest-args", "after --"],
)
def test_pytest_options_pass_through_the_command_line(
    cell_world: Callable[..., Matrix], tmp_path: Path, argv: list[str]
) -> None:
    matrix = cell_world("plain", versions=("2.8.0",))
    out = tmp_path / "run"
    code = cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(out), *argv])
    assert code == 0
    result = json.loads((out / "cells" / matrix.cells[0].id / "result.json").read_text())
    assert {t["nodeid"].rsplit("::", 1)[-1] for t in result["tests"]} == {"test_one"}
    assert result["pytest_args"] == ["-k", "not test_two"]
    assert result["command"][-2:] == ["-k", "not test_two"]


def test_pytest_options_the_harness_owns_are_refused(
    cell_world: Callable[..., Matrix], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = cell_world("plain", versions=("2.8.0",))
    argv = ["matrix", "--matrix", str(matrix.path), "--out", str(tmp_path / "run")]
    code = cli.main([*argv, "--pytest-args=--rootdir=/tmp"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        "compat: error: --pytest-args: '--rootdir=/tmp' is set by the harness for every cell"
    ]


def test_a_file_that_failed_to_import_elsewhere_is_not_missing_where_it_ran(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    broken_on_29 = """
        import os
        if os.environ["COMPAT_CELL_ID"].startswith("torch2.9.0"):
            raise ImportError("cannot import name 'capture_pre_autograd_graph'")
        def test_dq(): pass
    """
    matrix = cell_world("plain", files={"tests/core/test_dq.py": broken_on_29})
    results = run_all(matrix, tmp_path / "run")
    flag_missing_tests(list(results.values()))  # as the run's judging step does
    here = results["torch2.8.0-torch.ao-py3.11"]
    assert here.status is CellStatus.PASSED, here.reason
    assert "tests/core/test_dq.py" not in outcomes(here)
    assert outcomes(results["torch2.9.0-torch.ao-py3.11"])["tests/core/test_dq.py"] == "error"
    grid = build_grid(list(results.values()))
    file_row = next(r for r in grid.rows if r.key == "tests/core/test_dq.py")
    test_row = next(r for r in grid.rows if r.key == "tests/core/test_dq.py::test_dq")
    assert [v.text for v in file_row.values] == ["", "E"]  # the file's row where it imported
    assert [v.text for v in test_row.values] == ["✓", "⊘"]  # never collected: see the file


def test_a_conftest_that_fails_to_import_is_an_error_row_not_a_crash(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    matrix = cell_world(
        "plain",
        versions=("2.8.0",),
        files={
            "tests/core/sub/conftest.py": "import not_a_module_anywhere\n",
            "tests/core/sub/test_under.py": "def test_under(): pass\n",
        },
    )
    result = by_id(run_all(matrix, tmp_path / "run"))
    assert outcomes(result)["tests/core/sub/test_under.py"] == "error"
    assert outcomes(result)["test_one"] == "passed"
    assert result.status is CellStatus.ERROR, result.reason


@pytest.mark.parametrize("isolation", ["file", "cell"])
def test_pytest_exit_in_a_test_says_interrupted(
    cell_world: Callable[..., Matrix], tmp_path: Path, isolation: str
) -> None:
    matrix = cell_world(
        "plain",
        versions=("2.8.0",),
        settings=f'isolation = "{isolation}"\n',
        files={"tests/core/test_z_exits.py": "import pytest\ndef test_z(): pytest.exit('bye')\n"},
    )
    result = by_id(run_all(matrix, tmp_path / "run"))
    row = next(t for t in result.tests if t.nodeid.endswith("test_z"))
    assert row.outcome is Outcome.ERROR
    assert row.message == "interrupted in this test (pytest.exit() or KeyboardInterrupt)"
    assert "interrupted in this test" in result.reason
    assert outcomes(result)["test_one"] == "passed"


def test_files_after_a_stop_are_said_not_run(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    matrix = cell_world(
        "plain",
        versions=("2.8.0",),
        settings='pytest-args = ["-x"]\n',
        files={"tests/core/test_a_fails.py": "def test_a(): assert False\n"},
    )
    result = by_id(run_all(matrix, tmp_path / "run"))
    assert outcomes(result)["test_a"] == "failed"
    row = next(t for t in result.tests if t.nodeid == "tests/core/test_fault.py")
    assert row.outcome is Outcome.NOT_RUN
    assert row.message == "not run: -x stopped the cell after the first failing file"
    assert result.status is CellStatus.FAILED
