"""A user's repository: the tool installed from its wheel into its own venv (not editable),
``torch-compat-matrix init`` in a fresh folder outside this checkout, then a real cell whose
test imports the shims and asserts that nothing of the host is on its path.

Needs PyPI (the index's release list; torch 2.13.0 comes from pip's wheelhouse where the
machine has one, else a ~1 GB download).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .isolation import write_isolation_test

pytestmark = [pytest.mark.e2e, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[2]


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_init_then_matrix_from_a_wheel_install_in_a_fresh_folder(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is a dependency of the project"
    dist = tmp_path / "dist"
    run([uv, "build", "--wheel", "--out-dir", str(dist), str(ROOT)])
    (wheel,) = dist.glob("torch_compat_matrix-*.whl")
    venv = tmp_path / "venv"
    run([uv, "venv", "--python", sys.executable, str(venv)])
    run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), str(wheel)])
    tool = venv / "bin" / "torch-compat-matrix"
    assert tool.is_file()

    repo = tmp_path / "their-repo"
    repo.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(COMPAT_ENVS_DIR=str(tmp_path / "envs"), COLUMNS="200")
    run([str(tool), "init", "--noxfile"], cwd=repo, env=env)
    assert (repo / "matrix.toml").is_file()
    assert (repo / "noxfile.py").is_file()
    host = [
        *json.loads(
            run(
                [
                    str(venv / "bin" / "python"),
                    "-c",
                    "import json, site; print(json.dumps(site.getsitepackages()))",
                ]
            ).stdout
        ),
        str(ROOT),
    ]
    write_isolation_test(repo / "tests", host)
    proc = run(
        [str(tool), "matrix", "--cells", "torch2.13.0-torchao*", "--out", str(repo / "run")],
        cwd=repo,
        env=env,
    )
    doc = json.loads((repo / "run" / "results.json").read_text(encoding="utf-8"))
    (cell,) = [c for c in doc["cells"] if c["status"] != "not-applicable"]
    outcomes = {t["nodeid"].rsplit("::", 1)[-1]: t["outcome"] for t in cell["tests"]}
    assert outcomes == {
        "test_nothing_of_the_host_is_on_the_path": "passed",
        "test_linear_is_quantized_and_tagged": "passed",
    }, proc.stdout
    assert doc["exit_code"] == 0
