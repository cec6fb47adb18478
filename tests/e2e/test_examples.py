"""examples/: a user's own suite on the shims, run from a folder outside the project
against two real torch versions (2.8.0 torch.ao, 2.13.0 torchao), as a user's repo would.

Needs PyPI on a cold uv cache (the same wheels as tests/e2e/matrix.toml).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_suite_runs_from_its_own_folder(tmp_path: Path) -> None:
    repo = tmp_path / "my-backend"
    shutil.copytree(ROOT / "examples", repo)
    env = {**os.environ, "COMPAT_ENVS_DIR": str(tmp_path / "envs"), "COLUMNS": "200"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "compat", "matrix", "--out", str(repo / "run"), "-j", "2"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    doc = json.loads((repo / "run" / "results.json").read_text(encoding="utf-8"))
    ran = {c["cell_id"]: c for c in doc["cells"] if c["status"] != "not-applicable"}
    assert set(ran) == {"torch2.8.0-torch.ao-py3.11", "torch2.13.0-torchao0.18.0-py3.11"}
    for cell in ran.values():
        assert [t["outcome"] for t in cell["tests"]] == ["passed"]
        assert cell["routes"]["my_backend.quantizer"] == "OP_TO_ANNOTATOR['conv_relu']"
        assert cell["tests"][0]["snapshots"]["converted"]
