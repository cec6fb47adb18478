"""Upstream PyTorch and torchao test files through the matrix, checked against bare pytest.

Each test file runs in a process of its own inside a cell (``compat.file_runner``: torch
imported once, a fork per file). This runs PyTorch's and torchao's own pt2e test files of
several eras through ``python -m compat matrix``, then every file again alone with bare
``python -m pytest FILE`` in the same env (``scripts/compare_with_bare_pytest.py``), and
holds the grid to it: every test's verdict is bare pytest's, and every file that fails to
import is one ``E`` row whose message names the exception bare pytest reports.

The upstream files are not part of this repository (their source stays out of it): set
``COMPAT_UPSTREAM_SUITES`` to a folder holding ``matrix.toml`` (and optionally
``matrix-nodeps.toml``, the same cells without some dependency) and the ``suites/`` it
names; ``docs/upstream-suites-vs-bare-pytest.md`` lists the files, their commits and
sha256. Needs the torch builds in uv's cache or the index (several GB cold).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "compare_with_bare_pytest.py"
VARIABLE = "COMPAT_UPSTREAM_SUITES"
MATRICES = ("matrix.toml", "matrix-nodeps.toml")
# flag_missing_tests (compat/harness/results/classify.py) adds this row for a file whose
# import failed in another cell, to a cell where the file imported and its tests ran.
PHANTOM = "collected in other cells, missing from this one"


def upstream_folder() -> Path:
    given = os.environ.get(VARIABLE)
    if not given:
        pytest.skip(
            f"{VARIABLE} is not set: it names a folder with matrix.toml and the suites/ "
            "of upstream test files it runs (kept outside this repository; see "
            "docs/upstream-suites-vs-bare-pytest.md)"
        )
    folder = Path(given).resolve()
    if not (folder / "matrix.toml").is_file() or not (folder / "suites").is_dir():
        pytest.fail(f"{VARIABLE}={given}: no matrix.toml and suites/ there")
    return folder


@pytest.fixture(scope="module", params=MATRICES)
def compared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One matrix of the folder run into a fresh folder (with envs of its own, built from
    uv's cache), then compared with bare pytest: the script's JSON, its output, the run."""
    folder = upstream_folder()
    name = str(request.param)
    if not (folder / name).is_file():
        pytest.skip(f"{folder / name} does not exist")
    base = tmp_path_factory.mktemp(name.removesuffix(".toml"))
    run, envs = base / "run", base / "envs"
    env = {**os.environ, "COMPAT_ENVS_DIR": str(envs), "COLUMNS": "200"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    command = [sys.executable, "-m", "compat", "matrix", "--matrix", name, "--out", str(run)]
    matrix = subprocess.run(
        [*command, "-j", "2"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    # 0 or 1: the run finished (upstream tests fail on some torch); 2 or 3 would be a
    # configuration or infrastructure error, and nothing to compare.
    assert matrix.returncode in (0, 1), matrix.stdout + matrix.stderr
    out = base / "comparison.json"
    compare = [sys.executable, str(SCRIPT), str(run), "--json", str(out), "-j", "2"]
    script = subprocess.run(
        [*compare, "--work", str(base / "bare")],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert out.is_file(), script.stdout + script.stderr
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    data["output"] = script.stdout + script.stderr
    data["name"] = name
    data["results"] = {
        p.parent.name: json.loads(p.read_text(encoding="utf-8"))
        for p in (run / "cells").glob("*/result.json")
    }
    return data


def test_every_cell_with_tests_was_compared(compared: dict[str, Any]) -> None:
    cells = compared["cells"]
    assert cells, compared["output"]
    for cell in cells:
        assert not cell["failed_to_compare"], compared["output"]
        assert cell["compared"] > 0, (cell["cell"], cell["note"], compared["output"])
        assert cell["compared"] == cell["agree"] + len(cell["disagreements"])


def test_every_verdict_is_bare_pytests(compared: dict[str, Any]) -> None:
    found = [d for c in compared["cells"] for d in c["disagreements"]]
    assert found == [], compared["output"]
    # a test failing on both sides fails with the same exception on both
    assert [d for c in compared["cells"] for d in c["other_exception"]] == [], compared["output"]


def test_every_import_failure_is_an_e_row_naming_its_exception(
    compared: dict[str, Any],
) -> None:
    rows = [e for c in compared["cells"] for e in c["import_errors"]]
    for row in rows:
        assert row["names_exception"], (row, compared["output"])
        assert row["same_exception"], (row, compared["output"])
        assert row["bare"] == "error", (row, compared["output"])
    # a file whose import failed is the file's one row: none of its tests has a row there
    for cell_id, result in compared["results"].items():
        failed = {t["nodeid"] for t in result["tests"] if t["outcome"] == "error"}
        for test in result["tests"]:
            file = test["nodeid"].split("::", 1)[0]
            assert file == test["nodeid"] or file not in failed, (cell_id, test["nodeid"])
    if compared["name"] == "matrix-nodeps.toml":  # every file needs what is missing
        for cell in compared["cells"]:
            assert "missing dependency" in cell["reason"], (cell["cell"], cell["reason"])
            assert cell["compared"] == len([e for e in rows if e["cell"] == cell["cell"]])
    else:  # the folder's matrix scopes one era wide enough to fail to import somewhere
        assert rows, compared["output"]
