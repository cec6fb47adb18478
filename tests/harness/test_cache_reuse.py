"""The verdict cache through the real cell runner (only the uv install is stood in for):
an unchanged file is not run and its verdicts come back marked cached; a failure, a flaky
pass, an edited file, ``--refresh`` and ``--no-cache`` run again; a corrupt or foreign
entry is ignored with one warning line, never trusted."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.cache.reuse import CachePolicy
from compat.harness.cache.store import Store, prune
from compat.harness.commands.plan import cache_forecast
from compat.harness.config.matrix import Matrix
from compat.harness.execute import cell_runner
from compat.harness.install.pipconfig import PipIndexConfig
from compat.harness.reports.grid import build_grid, status_label
from compat.harness.reports.junit import merge_junit
from compat.harness.results.model import CellResult, CellStatus

CELL = "torch2.8.0-torch.ao-py3.11"
RED = {"tests/core/test_red.py": "def test_red(): assert False, 'red'\n"}


def run(
    matrix: Matrix,
    root: Path,
    name: str,
    *,
    lookup: bool = True,
    refresh: tuple[str, ...] = (),
) -> CellResult:
    policy = CachePolicy(Store(root / "verdicts"), name, lookup=lookup, refresh=refresh)
    results = cell_runner.run_cells(
        list(matrix.cells),
        matrix,
        run_dir=root / name,
        envs_root=root / "envs",
        pip_config=PipIndexConfig(),
        jobs=1,
        cache=policy,
    )
    return results[0]


def outcomes(result: CellResult) -> dict[str, str]:
    return {t.nodeid: t.outcome.value for t in result.tests}


def ran(result: CellResult) -> dict[str, str | None]:
    """Each file: None when cached, else why it ran."""
    return {f: r["ran_because"] for f, r in result.cache["files"].items()}


@pytest.fixture
def plain(cell_world: Callable[..., Matrix]) -> Matrix:
    return cell_world("plain", versions=("2.8.0",))


def test_an_unchanged_rerun_starts_no_python(plain: Matrix, tmp_path: Path) -> None:
    first = run(plain, tmp_path, "r1")
    assert first.status is CellStatus.PASSED
    assert ran(first) == {"tests/core/test_fault.py": "not in the cache"}
    second = run(plain, tmp_path, "r2")
    assert second.status is CellStatus.PASSED
    assert outcomes(second) == outcomes(first)
    assert {t.cached for t in second.tests} == {f"from run r1, {first_date(tmp_path)}"}
    assert second.command == []  # nothing was started
    assert not (tmp_path / "r2" / "cells" / CELL / "pytest.log").exists()
    assert second.fingerprint["torch"] == first.fingerprint["torch"]
    assert ran(second) == {"tests/core/test_fault.py": None}
    assert second.cache["files"]["tests/core/test_fault.py"]["cached"].startswith("from run r1")
    # the grid marks it, and so does JUnit
    grid = build_grid([second])
    assert [r.values[0].text for r in grid.rows if r.key.endswith("test_one")] == ["✓c"]
    assert status_label(second) == "PASS (2✓ all cached)"
    merged = ET.parse(merge_junit(tmp_path / "r2", [second])).getroot()
    properties = [
        p.get("value") for p in merged.iter("property") if p.get("name") == "compat.cached"
    ]
    assert len(properties) == 2
    assert all(p.startswith("from run r1") for p in properties)
    # and it round-trips through result.json
    again = CellResult.read(tmp_path / "r2" / "cells" / CELL / "result.json")
    assert [t.cached for t in again.tests] == [t.cached for t in second.tests]


def first_date(root: Path) -> str:
    entry = next((root / "verdicts" / "entries").glob("*/*.json"))
    return json.loads(entry.read_text(encoding="utf-8"))["date"]


def test_an_edited_file_reruns_and_says_why(plain: Matrix, tmp_path: Path) -> None:
    run(plain, tmp_path, "r1")
    test = tmp_path / "tests" / "core" / "test_fault.py"
    test.write_text(test.read_text(encoding="utf-8") + "def test_three(): pass\n", "utf-8")
    second = run(plain, tmp_path, "r2")
    assert ran(second) == {"tests/core/test_fault.py": "changed: test_file"}
    assert len(second.tests) == 3
    assert not any(t.cached for t in second.tests)


def test_failures_run_again_the_passing_file_does_not(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    matrix = cell_world("plain", versions=("2.8.0",), files=RED)
    first = run(matrix, tmp_path, "r1")
    assert first.status is CellStatus.FAILED
    second = run(matrix, tmp_path, "r2")
    assert second.status is CellStatus.FAILED
    assert outcomes(second) == outcomes(first)
    assert ran(second) == {
        "tests/core/test_fault.py": None,
        "tests/core/test_red.py": "not in the cache",
    }
    assert second.command  # the red file ran, alone
    spec = json.loads((tmp_path / "r2" / "cells" / CELL / "files.json").read_text("utf-8"))
    assert [f["nodeid"] for f in spec["files"]] == ["tests/core/test_red.py"]
    red = next(t for t in second.tests if t.nodeid.endswith("test_red"))
    assert red.cached is None


def test_a_flaky_pass_runs_again(cell_world: Callable[..., Matrix], tmp_path: Path) -> None:
    matrix = cell_world("flaky", versions=("2.8.0",), reruns=1)
    first = run(matrix, tmp_path, "r1")
    assert "flaky" in outcomes(first).values()
    second = run(matrix, tmp_path, "r2")
    assert not any(t.cached for t in second.tests)


def test_a_file_that_fails_after_passing_drops_its_entry(
    cell_world: Callable[..., Matrix], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same key passed once, then failed (an outside cause; ``--no-cache`` ran it):
    the stored pass is forgotten, so the next run runs it again."""
    outside = {
        "tests/core/test_outside.py": "import os\ndef test_it(): assert not os.environ.get('RED')\n"
    }
    matrix = cell_world("plain", versions=("2.8.0",), files=outside)
    run(matrix, tmp_path, "r1")
    monkeypatch.setenv("RED", "1")
    assert run(matrix, tmp_path, "r2", lookup=False).status is CellStatus.FAILED
    monkeypatch.delenv("RED")
    third = run(matrix, tmp_path, "r3")
    assert ran(third)["tests/core/test_outside.py"].startswith("no definitive verdict")
    assert ran(third)["tests/core/test_fault.py"] is None


def test_refresh_and_no_cache_run_again(plain: Matrix, tmp_path: Path) -> None:
    run(plain, tmp_path, "r1")
    assert ran(run(plain, tmp_path, "r2", refresh=("test_two",))) == {
        "tests/core/test_fault.py": "--refresh"
    }
    assert ran(run(plain, tmp_path, "r3", refresh=("test_nothing",))) == {
        "tests/core/test_fault.py": None
    }
    assert ran(run(plain, tmp_path, "r4", lookup=False)) == {
        "tests/core/test_fault.py": "--no-cache"
    }


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda entry: "{not json", "unreadable"),
        (lambda entry: json.dumps({**entry, "schema": 99}), "schema 99"),
        (
            lambda entry: json.dumps({**entry, "parts": {**entry["parts"], "env": "0" * 64}}),
            "not that of the key",
        ),
        (
            lambda entry: json.dumps(
                {**entry, "events": [{"event": "test", "nodeid": "other.py::t"}]}
            ),
            "another file",
        ),
    ],
    ids=["corrupt", "another schema", "foreign key", "another file's events"],
)
def test_a_bad_entry_is_ignored_with_one_warning(
    damage: Callable[[dict[str, object]], str],
    said: str,
    plain: Matrix,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = run(plain, tmp_path, "r1")
    (entry,) = (tmp_path / "verdicts" / "entries").glob("*/*.json")
    entry.write_text(damage(json.loads(entry.read_text("utf-8"))), encoding="utf-8")
    capsys.readouterr()
    second = run(plain, tmp_path, "r2")
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "verdict cache" in ln]
    assert len(warnings) == 1
    assert said in warnings[0]
    assert warnings[0].startswith("compat: warning: verdict cache entry ")
    assert not any(t.cached for t in second.tests)
    assert outcomes(second) == outcomes(first)


def test_plan_says_which_cells_hit(plain: Matrix, tmp_path: Path) -> None:
    store = Store(tmp_path / "verdicts")
    envs = tmp_path / "envs"
    assert cache_forecast(plain, plain.cells, envs, store) == [f"{CELL}: runs (no env yet)"]
    run(plain, tmp_path, "r1")
    (envs / CELL).mkdir(parents=True, exist_ok=True)
    (envs / CELL / ".compat-env.json").write_text("{}", encoding="utf-8")
    assert cache_forecast(plain, plain.cells, envs, store) == [f"{CELL}: cache hit, all 1 file(s)"]
    test = tmp_path / "tests" / "core" / "test_fault.py"
    test.write_text(test.read_text(encoding="utf-8") + "\n", "utf-8")
    assert cache_forecast(plain, plain.cells, envs, store) == [
        f"{CELL}: 0/1 file(s) cached; runs tests/core/test_fault.py (changed: test_file)"
    ]


def test_prune_by_age_then_by_size(tmp_path: Path) -> None:
    import os

    entries = tmp_path / "entries" / "ab"
    entries.mkdir(parents=True)
    now = 1_000_000_000.0
    for name, age_days, size in (("old", 40, 10), ("mid", 5, 100), ("new", 1, 100)):
        path = entries / f"{name}.json"
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
    report = prune(tmp_path, max_age_days=30, budget_bytes=150, now=now)
    assert report.removed == 2  # old by age, mid (least recently used) by size
    assert sorted(p.name for p in entries.iterdir()) == ["new.json"]
    assert report.kept_bytes == 100
