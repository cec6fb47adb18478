"""The cell-side plugin, run in-process by pytester with a stand-in torch module."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from compat.harness.results.classify import read_events

TESTS = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_pass():
    pass

def test_fail():
    assert 1 == 2

def test_skip():
    pytest.skip("not here")

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

def test_error(broken):
    pass
"""


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = types.ModuleType("torch")
    torch.__version__ = "2.8.0+cu128"  # type: ignore[attr-defined]
    torch.version = types.SimpleNamespace(  # type: ignore[attr-defined]
        git_version="a1b2c3", cuda="12.8", debug=False
    )
    monkeypatch.setitem(sys.modules, "torch", torch)
    routes = types.ModuleType("compat.shims.routes")
    routes.routes = lambda: {"pt2e": "torch.ao"}  # type: ignore[attr-defined]
    routes.warnings_seen = lambda: ["DeprecationWarning: going away"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "compat.shims.routes", routes)


@pytest.mark.usefixtures("fake_torch")
def test_events_carry_outcomes_fingerprint_and_routes(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(test_cell=TESTS)
    events_path = tmp_path / "events.jsonl"
    result = pytester.runpytest("-p", "compat.pytest_plugin", "--compat-events", str(events_path))
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1, errors=1)
    events = read_events(events_path)
    outcomes = {k.split("::")[-1]: v["outcome"] for k, v in events.tests.items()}
    assert outcomes == {
        "test_pass": "passed",
        "test_fail": "failed",
        "test_skip": "skipped",
        "test_xfail": "xfailed",
        "test_error": "error",
    }
    assert "assert 1 == 2" in events.tests["test_cell.py::test_fail"]["message"]
    assert "fixture broke" in events.tests["test_cell.py::test_error"]["message"]
    assert events.fingerprint["torch"] == "2.8.0+cu128"
    assert events.fingerprint["torch_git_version"] == "a1b2c3"
    assert events.fingerprint["torch_import_error"] is None
    assert events.finish is not None
    assert events.finish.routes == {"pt2e": "torch.ao"}
    assert events.finish.warnings == ["DeprecationWarning: going away"]
    assert events.started == list(events.tests)


def test_torch_that_cannot_import_is_recorded(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes ``import torch`` raise ImportError
    pytester.makepyfile(test_cell="def test_pass():\n    pass\n")
    events_path = tmp_path / "events.jsonl"
    pytester.runpytest("-p", "compat.pytest_plugin", "--compat-events", str(events_path))
    error = read_events(events_path).fingerprint["torch_import_error"]
    assert error.startswith("ModuleNotFoundError") or error.startswith("ImportError")


def test_without_option_plugin_is_silent(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cell="def test_pass():\n    pass\n")
    result = pytester.runpytest("-p", "compat.pytest_plugin")
    result.assert_outcomes(passed=1)


FLAKY = """
from pathlib import Path

def test_flaky():
    marker = Path(__file__).with_name("attempts")
    attempts = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(attempts + 1))
    assert attempts >= 2, f"attempt {attempts + 1} fails"

def test_always_fails():
    assert 1 == 2
"""


@pytest.mark.usefixtures("fake_torch")
def test_a_pass_on_a_rerun_is_flaky(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """With pytest-rerunfailures' --reruns, attempts are counted and a late pass is flaky."""
    pytester.makepyfile(test_cell=FLAKY)
    events_path = tmp_path / "events.jsonl"
    pytester.runpytest(
        "-p", "compat.pytest_plugin", "--compat-events", str(events_path), "--reruns", "3"
    )
    tests = {k.split("::")[-1]: v for k, v in read_events(events_path).tests.items()}
    assert (tests["test_flaky"]["outcome"], tests["test_flaky"]["reruns"]) == ("flaky", 2)
    assert tests["test_flaky"]["message"].startswith("passed on attempt 3; the first failed:")
    assert "attempt 1 fails" in tests["test_flaky"]["message"]
    assert (tests["test_always_fails"]["outcome"], tests["test_always_fails"]["reruns"]) == (
        "failed",
        3,
    )


@pytest.mark.usefixtures("fake_torch")
def test_tests_the_matrix_expects_to_fail_are_not_rerun(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(test_cell=FLAKY)
    events_path = tmp_path / "events.jsonl"
    pytester.runpytest(
        "-p",
        "compat.pytest_plugin",
        "--compat-events",
        str(events_path),
        "--reruns",
        "3",
        "--compat-no-rerun",
        "test_always_*",
    )
    tests = {k.split("::")[-1]: v for k, v in read_events(events_path).tests.items()}
    assert (tests["test_always_fails"]["outcome"], tests["test_always_fails"]["reruns"]) == (
        "failed",
        0,
    )
    assert tests["test_flaky"]["outcome"] == "flaky"  # the others still get their reruns


@pytest.mark.usefixtures("fake_torch")
def test_a_failure_records_the_deepest_frame_in_the_users_tree(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(
        **{
            "myquant/__init__.py": "",
            "myquant/quantizer.py": "def annotate(node):\n    return node['meta']\n",
            "test_q.py": "from myquant.quantizer import annotate\n\n"
            "def test_q():\n    annotate(object())\n",
        }
    )
    events_path = tmp_path / "events.jsonl"
    pytester.runpytest("-p", "compat.pytest_plugin", "--compat-events", str(events_path))
    record = read_events(events_path).tests["test_q.py::test_q"]
    assert record["where"] == "myquant/quantizer.py:2"
    assert record["exc_types"][0] == "TypeError"
