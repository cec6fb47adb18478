"""A real bisection over torch releases: where does torch.ao's pt2e route stop working?

Candidates come from PyPI's listing (2.10.0 .. 2.13.0 for CPython 3.11); each step is a
real env. Needs PyPI and, on a cold uv cache, several CUDA torch wheels (~4 GB each).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[2]


def test_torch_ao_pt2e_stops_at_2_11(tmp_path: Path) -> None:
    out = tmp_path / "bisect"
    env = {
        **os.environ,
        "COMPAT_ENVS_DIR": os.environ.get("COMPAT_E2E_ENVS", str(tmp_path / "envs")),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nox",
            "-s",
            "bisect",
            "--",
            "test_simple_metadata_porting",
            "--good",
            "2.10.0",
            "--bad",
            "2.13.0",
            "--stack",
            "torch.ao",
            "--matrix",
            "tests/e2e/matrix.toml",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    record = json.loads((out / "bisect.json").read_text(encoding="utf-8"))
    n = len(record["candidates"])
    assert record["candidates"][0] == "2.10.0"
    assert record["candidates"][-1] == "2.13.0"
    assert "2.11.0" in record["candidates"]
    # The boundary named in version-landscape.md: torch.ao pt2e is gone from 2.11.
    assert (record["last_good"], record["first_bad"]) == ("2.10.0", "2.11.0"), log
    assert record["envs_built"] <= math.ceil(math.log2(n)) + 2
    good, bad = record["git"]["2.10.0"], record["git"]["2.11.0"]
    link = f"https://github.com/pytorch/pytorch/compare/{good}...{bad}"
    assert record["compare"] == link
    assert link in log
    assert all(step["verdict"] in ("good", "bad", "skip") for step in record["steps"])

    # Rerunning the same bisection resumes from the saved verdicts: nothing is run again.
    again = subprocess.run(
        proc.args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert again.returncode == 0
    assert json.loads((out / "bisect.json").read_text(encoding="utf-8"))["steps"] == record["steps"]
    assert "testing" not in again.stdout


def test_the_fix_for_porting_through_unknown_ops(tmp_path: Path) -> None:
    """--good newer than --bad finds the fix. The grid shows 2.2.2 and 2.3.1 porting a
    get_attr's tag through add/relu; 2.4.0 restricted port_metadata_pass's walk-back to
    view-like ops. Over the matrix's own versions, the search must name 2.4.1."""
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(
        f"""
[matrix]
tests = ["{ROOT / "tests" / "core" / "test_metadata_porting.py"}"]
stacks = ["torch.ao"]

[[torch]]
version = "2.2.2"

[[torch]]
version = "2.3.1"

[[torch]]
version = "2.4.1"
""",
        encoding="utf-8",
    )
    out = tmp_path / "fix"
    env = {**os.environ, "COMPAT_ENVS_DIR": str(tmp_path / "envs")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nox",
            "-s",
            "bisect",
            "--",
            "test_no_metadata_porting_through_unknown_ops",
            "--good",
            "2.4.1",
            "--bad",
            "2.2.2",
            "--versions",
            "matrix",
            "--matrix",
            str(matrix),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    record = json.loads((out / "bisect.json").read_text(encoding="utf-8"))
    assert record["candidates"] == ["2.2.2", "2.3.1", "2.4.1"]
    assert (record["mode"], record["last_bad"], record["first_good"]) == (
        "fix",
        "2.3.1",
        "2.4.1",
    ), log
    assert record["verdicts"] == {"2.2.2": "bad", "2.4.1": "good", "2.3.1": "bad"}
    assert "first good: 2.4.1" in log
    assert record["compare"] == (
        "https://github.com/pytorch/pytorch/compare/"
        f"{record['git']['2.3.1']}...{record['git']['2.4.1']}"
    )
