"""A user's own repository, end to end: their src-layout package with a per-torch pin in
two real cells, and the README's own-repo commands run verbatim from an empty folder.

Both build their envs in a temporary folder from the shared uv cache: warm, the wheels
(torch 2.8.0 and 2.10.0, torchao 0.16.0) are already there; cold, a few GB from PyPI.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PUBLISHED = '"torch-compat-matrix @ git+https://github.com/OWNER/torch-compat-matrix@main"'


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.update(COMPAT_ENVS_DIR=str(tmp_path / "envs"), COLUMNS="200", COMPAT_PROGRESS="lines")
    return env


def write_src_layout_repo(repo: Path) -> None:
    """A package under ``src/`` (not importable from the repository root as it stands),
    its tests importing it and torch, and a matrix pinning tabulate for torch 2.8 only."""
    (repo / "src" / "mypkg").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "mypkg"
            version = "0.1.0"

            [tool.hatch.build.targets.wheel]
            packages = ["src/mypkg"]
            """
        ),
        encoding="utf-8",
    )
    (repo / "src" / "mypkg" / "__init__.py").write_text(
        "def double(x):\n    return x * 2\n", encoding="utf-8"
    )
    (repo / "tests" / "test_x.py").write_text(
        textwrap.dedent(
            f"""\
            import importlib.util

            import torch

            import mypkg


            def test_the_package_is_the_working_tree():
                assert mypkg.__file__.startswith({str(repo / "src")!r}), mypkg.__file__
                assert mypkg.double(torch.ones(2)).tolist() == [2.0, 2.0]


            def test_the_pin_of_this_torch_only():
                pinned = importlib.util.find_spec("tabulate") is not None
                assert pinned == torch.__version__.startswith("2.8."), torch.__version__
            """
        ),
        encoding="utf-8",
    )
    (repo / "matrix.toml").write_text(
        textwrap.dedent(
            """\
            [matrix]
            name = "mypkg"
            python = ["3.11"]
            stacks = ["torch.ao"]
            tests = ["tests"]
            install-project = true

            [[torch]]
            version = "2.8.0"
            deps = ["tabulate"]

            [[torch]]
            version = "2.10.0"
            """
        ),
        encoding="utf-8",
    )


def test_a_src_layout_package_with_a_per_torch_pin_runs_in_two_cells(tmp_path: Path) -> None:
    repo = tmp_path / "their-repo"
    write_src_layout_repo(repo)
    proc = subprocess.run(
        [sys.executable, "-m", "compat", "matrix", "--out", str(tmp_path / "run"), "-j", "2"],
        cwd=repo,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    cells = {c["cell_id"]: c for c in doc["cells"]}
    assert set(cells) == {"torch2.8.0-torch.ao-py3.11", "torch2.10.0-torch.ao-py3.11"}
    for cell in cells.values():
        assert {t["nodeid"].rsplit("::", 1)[-1]: t["outcome"] for t in cell["tests"]} == {
            "test_the_package_is_the_working_tree": "passed",
            "test_the_pin_of_this_torch_only": "passed",
        }, proc.stdout[-3000:]
        plan = cell["install"]["plan"]
        assert f"-e {repo.resolve()}" in plan["requirements"]
        assert plan["project_digest"]
    assert cells["torch2.8.0-torch.ao-py3.11"]["cell"]["deps"] == ["tabulate"]
    assert cells["torch2.10.0-torch.ao-py3.11"]["cell"]["deps"] == []


def readme_commands() -> list[str]:
    """The shell block of the README's own-repo section, line by line."""
    text = README.read_text(encoding="utf-8")
    section = text.split("<!-- own-repo:start -->", 1)[1].split("<!-- own-repo:end -->", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "the own-repo section has a ```sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_commands_from_an_empty_folder(tmp_path: Path) -> None:
    """The README's own-repo commands, verbatim but for one substitution: the tool's
    requirement (``"torch-compat-matrix @ git+https://github.com/OWNER/...@main"``, out of
    reach here) becomes the bare ``git+file://`` URL of a clone of this checkout at HEAD,
    so only committed work is installed. Bare, because the pip a fresh venv has (23.2 here)
    refuses a ``name @ git+file:///...`` URL, whose host part is empty; the https form has
    one. They run in one shell from an empty folder, with a venv of their own, and must
    install the tool, init the repository, run two cells and print the grid."""
    commands = readme_commands()
    assert any(PUBLISHED in c for c in commands), commands
    clone = tmp_path / "tool-clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=300)
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    local = f'"git+file://{clone}@{head}"'
    script = "set -eu\n" + "\n".join(c.replace(PUBLISHED, local) for c in commands) + "\n"
    repo = tmp_path / "empty"
    repo.mkdir()
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=repo,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert (repo / "matrix.toml").is_file()
    assert ".envs/" in (repo / ".gitignore").read_text(encoding="utf-8")
    assert "torch build" in proc.stdout  # the grid was printed
    doc = json.loads((repo / "reports" / "latest" / "results.json").read_text(encoding="utf-8"))
    ran = [c["cell_id"] for c in doc["cells"] if c["status"] != "not-applicable"]
    assert len(ran) == 2, ran
    assert all(cell.startswith("torch2.10") for cell in ran), ran
    assert doc["exit_code"] == 0, proc.stdout[-4000:]
