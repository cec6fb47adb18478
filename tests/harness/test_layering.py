"""The layering contracts (import-linter, ``[tool.importlinter]`` in pyproject.toml) hold,
and they fail when a violation is planted, so the check is not one that cannot fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = "The harness's stages only import downward"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    assert exe, "import-linter is a test dependency"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [exe, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def planted_copy(tmp_path: Path, module: str, line: str) -> Path:
    shutil.copytree(
        ROOT / "compat", tmp_path / "compat", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    old = target.read_text(encoding="utf-8") if target.exists() else ""  # or a new module
    target.write_text(old + f"\n{line}\n", encoding="utf-8")
    return tmp_path


def test_the_contracts_hold() -> None:
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" not in proc.stdout.replace("0 broken", "")


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "compat/harness/results/gate.py",
            "import torch  # noqa",
            "The host harness never imports torch or torchao",
        ),
        (
            "compat/shims/routes.py",
            "import compat.harness.results.gate  # noqa",
            "The shims never import the harness or pytest",
        ),
        (
            "compat/pytest_plugin.py",
            "import compat.harness.results.model  # noqa",
            "The cell's plugin never imports the harness",
        ),
        # the stages: an upward import, a sibling's, a leaf's, and a module outside every stage
        ("compat/harness/config/matrix.py", "import compat.harness.reports.grid  # noqa", STAGES),
        (
            "compat/harness/reports/grid.py",
            "import compat.harness.execute.progress  # noqa",
            STAGES,
        ),
        ("compat/harness/install/envs.py", "import compat.harness.results.model  # noqa", STAGES),
        ("compat/harness/files.py", "import compat.harness.errors  # noqa", STAGES),
        # redact is the bottom: the filter every outgoing string passes, it imports nothing
        ("compat/harness/redact.py", "import compat.harness.files  # noqa", STAGES),
        ("compat/harness/helpers.py", "import compat.harness.files  # noqa", STAGES),
    ],
)
def test_a_planted_violation_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    proc = lint_imports(planted_copy(tmp_path, module, line))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{contract} BROKEN" in proc.stdout
    assert "Contracts: 3 kept, 1 broken." in proc.stdout  # that contract, and only that one
