"""The disk budget during a run, on a stand-in uv cache laid out as uv lays it out.

Archives are folders of real bytes under ``archive-v0``, wheel entries are links to them
under ``wheels-v8/pypi/<name>/``, and an env holds hardlinks to an archive's files, as
uv's installs do: a wheel's blocks only come back once its env and its entry are both
gone and the prune (a stand-in for ``uv cache prune``) has removed the dangling archive.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from compat.harness.config.matrix import Cell
from compat.harness.execute.cell_runner import run_order
from compat.harness.install import disk
from compat.harness.install.disk import footprint
from compat.harness.install.disk_budget import BudgetReport, DiskBudget, RunDisk
from compat.harness.install.disk_estimate import UNPACK_RATIO, DiskEstimate
from compat.harness.install.envs import STAMP
from compat.harness.install.install_plan import InstallPlan

MiB = 2**20
LINUX = "manylinux_2_28_x86_64"
TORCH_A = f"torch-2.8.0-cp311-cp311-{LINUX}.whl"
TORCH_C = f"torch-2.9.0-cp311-cp311-{LINUX}.whl"
SHARED = f"nvidia_cublas_cu12-12.8.4.1-py3-none-{LINUX}.whl"

PRUNE = textwrap.dedent("""
    import os, shutil, sys
    from pathlib import Path
    cache = Path(sys.argv[1])
    linked = {os.path.realpath(p) for p in cache.glob("wheels-v8/**/*") if p.is_symlink()}
    for archive in (cache / "archive-v0").iterdir():
        if str(archive.resolve()) not in linked:
            shutil.rmtree(archive)
""")


class World:
    def __init__(self, root: Path) -> None:
        self.cache = root / "cache"
        self.envs = root / "envs"
        self.envs.mkdir(parents=True)
        (self.cache / "archive-v0").mkdir(parents=True)
        self.prune_script = root / "prune.py"
        self.prune_script.write_text(PRUNE, encoding="utf-8")

    def cache_wheel(self, filename: str, size: int) -> None:
        """What uv leaves after a download: an unpacked archive and the entry linking it."""
        name, _, rest = filename.removesuffix(".whl").partition("-")
        archive = self.cache / "archive-v0" / filename.removesuffix(".whl")
        archive.mkdir()
        (archive / "payload").write_bytes(os.urandom(size))
        entry = self.cache / "wheels-v8" / "pypi" / name.replace("_", "-") / rest
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.symlink_to(archive)
        entry.with_name(entry.name + ".msgpack").write_text("{}", encoding="utf-8")

    def build(self, plan: InstallPlan, wheels: list[str]) -> None:
        """An install: the env's files hardlinked from the archives, then its stamp."""
        site = plan.env_dir / "lib" / "python3.11" / "site-packages"
        site.mkdir(parents=True)
        for wheel in wheels:
            os.link(
                self.cache / "archive-v0" / wheel.removesuffix(".whl") / "payload", site / wheel
            )
        (plan.env_dir / STAMP).write_text(f'{{"key": "{plan.key}"}}', encoding="utf-8")

    def budget(self, limit: int, estimate: DiskEstimate, cells: list[str]) -> DiskBudget:
        return DiskBudget(
            limit,
            cache=self.cache,
            envs_root=self.envs,
            estimate=estimate,
            cells=cells,
            prune=[sys.executable, str(self.prune_script), str(self.cache)],
            bytecode=0,
        )


def plan(world: World, cell_id: str) -> InstallPlan:
    return InstallPlan(cell_id, "3.11", (f"torch  # {cell_id}",), (), world.envs / cell_id)


SIZES = {TORCH_A: 8 * MiB, SHARED: 4 * MiB, TORCH_C: 8 * MiB}  # unpacked, in the cache


def estimate() -> DiskEstimate:
    """Cells a and b on one torch build, c on another; all three share a CUDA library."""
    wheels = {
        "a": frozenset({TORCH_A, SHARED}),
        "b": frozenset({TORCH_A, SHARED}),
        "c": frozenset({TORCH_C, SHARED}),
    }
    return DiskEstimate(
        ["a", "b", "c"],
        cell_wheels=wheels,
        wheel_bytes={w: int(size / UNPACK_RATIO) + 1 for w, size in SIZES.items()},
    )


def test_a_build_that_would_pass_the_budget_frees_only_what_no_remaining_cell_needs(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    keeper = world.budget(18 * MiB, estimate(), ["a", "b", "c"])
    for cell in ("a", "b"):  # two cells of one torch build: downloaded once, two envs
        p = plan(world, cell)
        keeper.before_build(p)
        if cell == "a":
            for wheel in (TORCH_A, SHARED):
                world.cache_wheel(wheel, SIZES[wheel])
        world.build(p, [TORCH_A, SHARED])
        keeper.after_build(p)
        keeper.finished(cell)
    assert keeper.report.freed_envs == []  # 12 MiB held, nothing to free yet

    c = plan(world, "c")
    keeper.before_build(c)  # 12 MiB held + 8 coming > 18: torch 2.8.0 goes
    # a's env alone gives nothing back (b's env links the same files); after b's, torch
    # 2.8.0's blocks are free, and the budget stops there.
    assert keeper.report.freed_envs == ["a", "b"]
    world.cache_wheel(TORCH_C, SIZES[TORCH_C])
    world.build(c, [TORCH_C, SHARED])
    keeper.after_build(c)
    keeper.finished("c")
    report = keeper.close()

    assert not (world.envs / "a").exists()
    assert not (world.envs / "b").exists()
    assert list((world.cache / "wheels-v8" / "pypi" / "nvidia-cublas-cu12").iterdir())  # c's
    assert not list((world.cache / "wheels-v8" / "pypi" / "torch").glob("2.8.0-*"))
    assert not (world.cache / "archive-v0" / TORCH_A.removesuffix(".whl")).exists()
    assert (world.cache / "archive-v0" / SHARED.removesuffix(".whl")).exists()
    assert report.freed_wheels == 1
    assert report.freed_bytes >= 8 * MiB
    assert report.over_budget == []
    assert 12 * MiB <= report.peak_bytes <= 18 * MiB
    assert report.end_bytes == footprint([world.envs, world.cache])


def test_an_env_in_use_or_needed_later_is_never_freed(tmp_path: Path) -> None:
    world = World(tmp_path)
    keeper = world.budget(13 * MiB, estimate(), ["a", "c"])
    a = plan(world, "a")
    keeper.before_build(a)
    world.cache_wheel(TORCH_A, 8 * MiB)
    world.build(a, [TORCH_A])
    keeper.after_build(a)  # a is built but has not finished: it is still needed
    c = plan(world, "c")
    keeper.before_build(c)
    report = keeper.close()
    assert (world.envs / "a" / STAMP).exists()
    assert report.freed_envs == []
    assert len(report.over_budget) == 1
    assert report.over_budget[0].startswith("c (needs 12 MiB")  # torch 2.9.0 and the library


def test_a_build_waits_while_another_downloads_a_wheel_it_needs(tmp_path: Path) -> None:
    """a and c share the CUDA library: c starts once a's build is over (the library then
    cached, c needs only its torch); without the wait both would unpack a copy."""
    world = World(tmp_path)
    keeper = world.budget(100 * MiB, estimate(), ["a", "c"])
    a, c = plan(world, "a"), plan(world, "c")
    keeper.before_build(a)
    started = threading.Event()

    def build_c() -> None:
        keeper.before_build(c)
        started.set()

    waiter = threading.Thread(target=build_c)
    waiter.start()
    assert not started.wait(1.5)  # a is still downloading the library
    for wheel in (TORCH_A, SHARED):
        world.cache_wheel(wheel, SIZES[wheel])
    world.build(a, [TORCH_A, SHARED])
    keeper.after_build(a)
    assert started.wait(5)
    waiter.join()
    assert keeper.growth("c") == pytest.approx(SIZES[TORCH_C], rel=0.01)
    keeper.close()


def test_a_reused_env_costs_nothing_and_frees_nothing(tmp_path: Path) -> None:
    world = World(tmp_path)
    keeper = world.budget(1 * MiB, estimate(), ["a", "b"])
    a = plan(world, "a")
    world.cache_wheel(TORCH_A, 2 * MiB)
    world.build(a, [TORCH_A])
    keeper.before_build(a)  # built already (its stamp holds its key): no download
    report = keeper.close()
    assert report.freed_envs == []
    assert report.over_budget == []


def test_cells_of_one_torch_build_run_together_longest_build_first() -> None:
    def cell(torch: str, stack: str, python: str = "3.11") -> Cell:
        return Cell(
            python=python,
            torch=torch,
            stack=stack,
            torchao=None if stack == "torch.ao" else "0.13.0",
        )

    cells = [
        cell("2.8.0", "torch.ao"),
        cell("2.9.0", "torch.ao"),
        cell("2.8.0", "torchao"),
        cell("2.2.2", "torch.ao"),
        cell("2.8.0", "torch.ao", "3.12"),
    ]
    last = {
        cells[0].id: 10.0,
        cells[1].id: 30.0,
        cells[2].id: 12.0,
        cells[3].id: 80.0,
        cells[4].id: 11.0,
    }
    assert run_order(cells, last) == [3, 1, 2, 4, 0]
    assert run_order(cells, last, by_build=True) == [3, 1, 2, 0, 4]


def test_every_document_of_a_budgeted_run_records_its_peak(tmp_path: Path) -> None:
    from compat.harness.reports.documents import write_reports
    from compat.harness.reports.grid import build_grid

    from .factories import cell_result

    report = BudgetReport(
        budget_bytes=30 * 2**30,
        start_bytes=2**30,
        peak_bytes=29 * 2**30,
        end_bytes=28 * 2**30,
        freed_bytes=40 * 2**30,
        freed_envs=["torch2.2.2-torch.ao-py3.11"],
        freed_wheels=17,
    )
    write_reports(
        tmp_path,
        build_grid([cell_result("2.8.0")]),
        run_id="r1",
        matrix={"name": "m"},
        exit_code=0,
        disk=RunDisk(budget=report),
    )
    line = (
        "disk budget 30.0 GiB: peak 29.0 GiB of uv cache and envs (start 1.0 GiB, end "
        "28.0 GiB); freed 1 env(s) and 17 wheel(s), 40.0 GiB"
    )
    assert line in (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert line in (tmp_path / "matrix.html").read_text(encoding="utf-8")
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert BudgetReport.from_dict(doc["disk"]["budget"]) == report


def test_the_footprint_counts_a_hardlinked_file_once_even_when_du_complains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """du exits 1 when uv removes a file under it; its total still stands. Without du, the
    walk counts an env's links into the cache once too (a per-tree sum would double it)."""
    world = World(tmp_path)
    world.cache_wheel(TORCH_A, 8 * MiB)
    a = plan(world, "a")
    world.build(a, [TORCH_A])
    honest = footprint([world.envs, world.cache])
    assert 8 * MiB <= honest < 9 * MiB

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "du").write_text(
        f'#!/bin/sh\n"{shutil.which("du")}" "$@"\n'
        "echo \"du: cannot access 'x.tmp': No such file or directory\" >&2\nexit 1\n",
        encoding="utf-8",
    )
    (fake / "du").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    assert footprint([world.envs, world.cache]) == honest

    monkeypatch.setattr(disk.shutil, "which", lambda name: None)
    assert abs(footprint([world.envs, world.cache]) - honest) < 64 * 1024


def test_without_a_budget_nothing_is_freed_but_the_peak_is_recorded(tmp_path: Path) -> None:
    world = World(tmp_path)
    keeper = DiskBudget(
        None,
        cache=world.cache,
        envs_root=world.envs,
        estimate=estimate(),
        cells=["a", "c"],
        bytecode=0,
    )
    for name, wheels in (("a", [TORCH_A, SHARED]), ("c", [TORCH_C])):
        p = plan(world, name)
        keeper.before_build(p)
        for wheel in wheels:
            world.cache_wheel(wheel, SIZES[wheel])
        world.build(p, [*wheels, SHARED] if name == "c" else wheels)
        keeper.after_build(p)
        keeper.finished(name)
    report = keeper.close()
    assert report.freed_envs == []
    assert report.peak_bytes >= 20 * MiB
    assert report.line().startswith("disk (no budget): peak 20 MiB")
    assert BudgetReport.from_dict(report.to_dict()) == report


def test_the_results_schema_describes_every_field_of_the_run_disk_record() -> None:
    import dataclasses

    from .test_schema import SCHEMA

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))["properties"]["disk"]
    budget = {f.name for f in dataclasses.fields(BudgetReport)}
    assert set(schema["properties"]["budget"]["properties"]) == budget
    run_disk = {f.name for f in dataclasses.fields(RunDisk)}
    assert set(schema["properties"]) == run_disk


def test_the_disk_line_keeps_this_runs_envs_apart_from_the_shared_cache() -> None:
    from compat.harness.install.disk_budget import EnvsFootprint, RunDisk
    from compat.harness.reports.context import envs_footprint
    from compat.harness.results.model import DiskUsage, InstallRecord

    from .factories import cell_result

    results = [cell_result("2.8.0"), cell_result("2.10.0"), cell_result("2.5.1")]
    for result, key in zip(results, ("a", "b", "b"), strict=True):  # two cells share env b
        result.install = InstallRecord(
            key=key, disk=DiskUsage(apparent_bytes=2 * 2**30, own_bytes=100 * 2**20)
        )
    envs = envs_footprint(results)
    assert envs == EnvsFootprint(2, 4 * 2**30, 200 * 2**20)
    disk = RunDisk(uv_cache_dir="/cache/uv", uv_cache_bytes=57 * 2**30)
    [line] = disk.lines(envs)
    this_run, cache = line.removeprefix("disk: ").split("; the shared uv cache: ")
    assert this_run.startswith("this run's envs: 2 env(s), 200")
    assert "57" not in this_run
    assert cache.startswith("57")
    assert "/cache/uv" in cache
