"""``results.schema.json`` against the types it describes: a field added to a record and not
to the schema (or the other way round) fails here, not in a consumer of results.json."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from compat.harness.config.applicability import CheckedRule
from compat.harness.config.matrix import Cell
from compat.harness.errors import ErrorKind
from compat.harness.install.install_plan import InstallPlan
from compat.harness.results.model import (
    CellResult,
    CellStatus,
    DiskUsage,
    InstallRecord,
    ListedBuild,
    Outcome,
    PlanRecord,
    ResolutionRecord,
    WheelRecord,
)
from compat.harness.results.model import TestResult as Result
from compat.harness.results.run_folder import MANIFEST, RunManifest

SCHEMA = Path(__file__).parents[2] / "compat" / "harness" / "results" / "results.schema.json"


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _at(path: str) -> dict[str, Any]:
    """The sub-schema at ``cell.install.wheels.*``: ``*`` is a map's values, ``[]`` a list's
    items, anything else a property."""
    node = schema()["$defs"]["cell"]
    for part in path.split(".")[1:]:
        if part == "*":
            node = node["additionalProperties"]
        elif part == "[]":
            node = node["items"]
        else:
            node = node["properties"][part]
    return node  # type: ignore[no-any-return]


# Each record of a result file and where the schema describes it; keys written beside the
# fields (the file's own ``schema`` version) are named.
RECORDS = [
    (CellResult, "cell", {"schema"}),
    (Cell, "cell.cell", set()),
    (Result, "cell.tests.[]", set()),
    (InstallRecord, "cell.install", set()),
    (PlanRecord, "cell.install.plan", set()),
    (ResolutionRecord, "cell.install.resolution", set()),
    (ListedBuild, "cell.install.resolution.listing.*", set()),
    (WheelRecord, "cell.install.wheels.*", set()),
    (DiskUsage, "cell.install.disk", set()),
    (CheckedRule, "cell.applicability", set()),
]


@pytest.mark.parametrize(
    ("record", "where", "extra"), RECORDS, ids=[r[0].__name__ for r in RECORDS]
)
def test_every_field_is_in_the_schema_and_nothing_else(
    record: type, where: str, extra: set[str]
) -> None:
    declared = set(_at(where).get("properties", {}))
    names = {f.name for f in fields(record)} | extra
    assert names - declared == set(), f"fields of {record.__name__} missing from {where}"
    assert declared - names == set(), f"{where} describes what {record.__name__} lacks"


def test_the_plan_record_is_the_install_plan() -> None:
    """What a result records of the plan is what the env's stamp records of it."""
    plan = InstallPlan("c", "3.11", ("torch==2.8.0",), (), Path("/envs/c"))
    assert {f.name for f in fields(PlanRecord)} == set(plan.to_dict())


def rich_result() -> CellResult:
    """A result with every field (and every field of its records) set, not to a default."""
    cell = Cell(
        "3.12",
        "2.17.0.dev20261120+cpu",
        "torchao",
        "nightly",
        "nightly",
        False,
        None,
        "https://download.example/torch-2.17.0.whl",
        True,
        ("executorch==1.2.0",),
    )
    test = Result(
        "t.py::test_a",
        Outcome.XFAILED,
        1.5,
        "E boom",
        "known",
        1,
        "ValueError matching 'boom'",
        ["ValueError", "Exception"],
        {"converted": [{"op": "aten.add", "after": None, "tag": "t", "source": None}]},
    )
    listed = ListedBuild(
        "2.17.0.dev20261120+cpu",
        "torch-2.17.0.whl",
        "https://download.example/torch-2.17.0.whl",
        None,
        "two builds",
    )
    install = InstallRecord(
        plan=PlanRecord(
            "c",
            "3.12",
            ["torch==2.17.0"],
            ["--index-url", "https://x"],
            "/envs/c",
            ["--offline"],
            "2026-11-20T23:59:59Z",
            ["--exclude-newer", "2026-11-20T23:59:59Z"],
            "0123456789abcdef",
            "fedcba9876543210",
        ),
        resolution=ResolutionRecord(
            "2.17.0.dev20261120+cpu",
            "0.20.0.dev20261120+cpu",
            ["two builds on that day"],
            {"torch": listed},
        ),
        error_kind="no-such-version",
        python="/envs/c/bin/python",
        reused=False,
        seconds=12.5,
        key="0123456789abcdef",
        freeze=["torch==2.17.0"],
        uv_version="0.9.1",
        interpreter="/usr/bin/python3.12",
        wheels={
            "torch": WheelRecord(
                "2.17.0",
                "torch-2.17.0.whl",
                "ab" * 32,
                "https://download.example/torch-2.17.0.whl",
                "https://download.example",
                "123",
                "computed",
            )
        },
        disk=DiskUsage(2**30, 2**20, 2**10),
    )
    rule = CheckedRule(
        "removed in 2.11", "no quantize_pt2e.py", "docs", "torch 2.11: x", "confirmed", "read it"
    )
    return CellResult(
        "nightly-torch2.17-torchaonightly-py3.12",
        cell,
        CellStatus.ERROR,
        "1 test(s) failed",
        False,
        [test],
        {"torch": "2.17.0"},
        {"pt2e": "torchao"},
        ["a warning"],
        install,
        {"pt2e": "adapted"},
        rule,
        {"install": 12.5, "tests": 3.0},
        ["python", "-m", "pytest"],
        1,
        "the log",
        isolation="file",
        files=["tests/core/test_a.py"],
        out_of_scope=["suites/old/test_b.py"],
        file_runs=[
            {
                "nodeid": "tests/core/test_a.py",
                "returncode": 0,
                "timed_out": False,
                "seconds": 1.5,
                "orphans_killed": 0,
            }
        ],
        pytest_args=["-k", "porting"],
        rerun_command="cd /repo && env COMPAT_CELL_ID=c python -m pytest tests/core/test_a.py::t",
        cache={
            "files": {
                "tests/core/test_a.py": {
                    "key": "0123456789abcdef",
                    "parts": {"env": "0123456789abcdef"},
                    "cached": None,
                    "ran_because": "changed: env",
                }
            },
            "cached_files": 0,
        },
    )


def _unset(record: object, where: str) -> list[str]:
    """Fields of ``record`` (and its records) left at ``None`` or empty."""
    found = []
    for f in fields(record):  # type: ignore[arg-type]
        value = getattr(record, f.name)
        if value is None or value == [] or value == {}:
            found.append(f"{where}.{f.name}")
        elif hasattr(value, "__dataclass_fields__"):
            found += _unset(value, f"{where}.{f.name}")
    return found


def test_a_full_result_validates_and_round_trips() -> None:
    result = rich_result()
    # Every field set (Cell.not_applicable excepted: a cell that ran is applicable).
    assert _unset(result, "result") == ["result.cell.not_applicable"]
    data = json.loads(json.dumps(result.to_dict()))
    document = {
        "schema": 1,
        "run_id": "r",
        "created": "2026-11-21T00:00:00Z",
        "matrix": {"name": "m"},
        "host": {},
        "exit_code": 1,
        "summary": {},
        "cells": [data],
    }
    validator = jsonschema.Draft202012Validator(schema())
    validator.validate(document)
    assert set(data) == set(_at("cell")["properties"])
    assert set(data["install"]) == set(_at("cell.install")["properties"])
    assert CellResult.from_dict(data) == result


def test_the_schema_refuses_a_wrongly_typed_record() -> None:
    data = rich_result().to_dict()
    data["install"]["disk"]["own_bytes"] = "a lot"
    document = {
        "schema": 1,
        "run_id": "r",
        "created": "2026-11-21T00:00:00Z",
        "matrix": {"name": "m"},
        "host": {},
        "exit_code": 1,
        "summary": {},
        "cells": [data],
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema()).validate(document)


# --- the files keep their keys: what the harness wrote before the records were typed ------

CELL = {
    "python": "3.11",
    "torch": "2.17.0.dev20261120+cpu",
    "stack": "torchao",
    "torchao": "nightly",
    "channel": "nightly",
    "gating": False,
    "not_applicable": None,
    "url": None,
    "declared": False,
    "deps": ["executorch==1.2.0"],
}
PLAN = {
    "cell_id": "c",
    "python": "3.11",
    "requirements": ["torch==2.17.0.dev20261120+cpu"],
    "index_args": ["--extra-index-url", "https://download.example/whl/nightly/cpu"],
    "env_dir": "/envs/c",
    "source_args": [],
    "deps_cutoff": None,
    "cutoff_args": [],
    "key": "0123456789abcdef",
    "project_digest": None,
}
RESOLUTION = {
    "torch": "2.17.0.dev20261120+cpu",
    "torchao": "0.20.0.dev20261120+cpu",
    "notes": [],
    "listing": {
        "torch": {
            "version": "2.17.0.dev20261120+cpu",
            "filename": "torch-2.17.0.whl",
            "url": "https://download.example/torch-2.17.0.whl",
            "sha256": None,
            "note": None,
        }
    },
}
WRITTEN = {
    "schema": 1,
    "cell_id": "c",
    "cell": CELL,
    "status": "passed",
    "reason": None,
    "gating": False,
    "tests": [
        {
            "nodeid": "t.py::test_a",
            "outcome": "passed",
            "duration": 0.5,
            "message": None,
            "expected_reason": None,
            "reruns": 0,
            "expected_failure": None,
            "exc_types": [],
            "snapshots": {},
            "cached": None,
            "where": None,
        }
    ],
    "fingerprint": {"torch": "2.17.0.dev20261120+cpu"},
    "routes": {"pt2e": "torchao"},
    "warnings": [],
    "install": {
        "plan": PLAN,
        "resolution": RESOLUTION,
        "python": "/envs/c/bin/python",
        "reused": False,
        "seconds": 12.5,
        "key": "0123456789abcdef",
        "freeze": ["torch==2.17.0.dev20261120+cpu"],
        "uv_version": "uv 0.9.1",
        "interpreter": "/usr/bin/python3.11",
        "wheels": {
            "torch": {
                "version": "2.17.0.dev20261120+cpu",
                "file": "torch-2.17.0.whl",
                "sha256": "ab" * 32,
                "url": "https://download.example/torch-2.17.0.whl",
                "index": "https://download.example",
                "size": "",
                "sha256_source": "computed",
            }
        },
        "disk": {"apparent_bytes": 2**30, "own_bytes": 2**20 + 10, "bytecode_bytes": 10},
    },
    "adaptations": {},
    "applicability": {},
    "timings": {"install": 12.5, "tests": 1.0},
    "command": ["python", "-m", "pytest"],
    "returncode": 0,
    "log_excerpt": None,
    "isolation": "file",
    "files": ["tests/core/test_metadata_porting.py"],
    "out_of_scope": [],
    "file_runs": [{"nodeid": "tests/core/test_metadata_porting.py", "returncode": 0}],
    "pytest_args": [],
    "rerun_command": None,
    "cache": {},
}


@pytest.mark.parametrize(
    "written",
    [
        WRITTEN,
        {
            **WRITTEN,
            "status": "install-failed",
            "tests": [],
            "install": {"plan": PLAN, "resolution": RESOLUTION, "error_kind": "no-interpreter"},
        },
        {
            **WRITTEN,
            "status": "install-failed",
            "tests": [],
            "install": {"error_kind": "no-such-version"},
        },
        {
            **WRITTEN,
            "status": "not-applicable",
            "tests": [],
            "install": {},
            "applicability": {
                "rule": "removed in 2.11",
                "claim": "no quantize_pt2e.py",
                "source": "docs",
                "probe": "torch 2.11: x: expected not",
                "check_verdict": "unchecked",
                "check_detail": "no installed env holds torch 2.11",
            },
        },
    ],
    ids=["ran", "install-failed", "unresolved", "not-applicable"],
)
def test_a_result_file_reads_back_to_the_same_keys(written: dict[str, Any]) -> None:
    assert CellResult.from_dict(written).to_dict() == written


def test_a_result_of_an_older_harness_loads() -> None:
    """No url or declared in the cell, no disk or plan: the defaults, not an error."""
    older = {
        **WRITTEN,
        "cell": {k: v for k, v in CELL.items() if k not in ("url", "declared")},
        "install": {"reused": True, "freeze": [], "wheels": {}},
    }
    result = CellResult.from_dict(older)
    assert result.cell == Cell.from_dict(CELL)
    assert (result.install.reused, result.install.disk, result.install.plan) == (True, None, None)


def test_a_run_manifest_reads_back_to_the_same_keys(tmp_path: Path) -> None:
    written = {
        "run_id": "r",
        "matrix_path": "/m/matrix.toml",
        "matrix_name": "m",
        "matrix_sha256": "0" * 64,
        "cells": [{"id": "c", **CELL}],
        "all_cells": [{"id": "c", **CELL}, {"id": "d", **CELL, "torch": "2.8.0"}],
        "shard": "1/2",
        "merged_from": None,
        "source": {"commit": "a" * 40, "dirty": False},
    }
    (tmp_path / MANIFEST).write_text(json.dumps(written), encoding="utf-8")
    manifest = RunManifest.read(tmp_path)
    assert manifest is not None
    assert manifest.cells == {"c": Cell.from_dict(CELL)}
    assert manifest.to_dict() == written


def test_the_error_kinds_are_errorkinds_values() -> None:
    """Generated by scripts/schema_error_kinds.py: the schema admits exactly the kinds the
    install errors can carry."""
    assert _at("cell.install.error_kind")["enum"] == [kind.value for kind in ErrorKind]
    script = SCHEMA.parents[3] / "scripts" / "schema_error_kinds.py"
    spec = importlib.util.spec_from_file_location("schema_error_kinds", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generated(SCHEMA.read_text(encoding="utf-8")) == SCHEMA.read_text(
        encoding="utf-8"
    )
