"""A disk budget kept while a run builds envs: uv's cache and the envs never hold more.

The anchor is mozregression's ``--persist-size-limit``, for wheels and envs instead of
builds. Before an env is built, what the cache and the envs hold now, plus what this build
and the builds in flight will add (the lock's size of each of its wheels uv does not hold
yet, times ``UNPACK_RATIO``), is held against the budget. Over it, what no cell left in
the run needs is freed, oldest first, until the build fits: the env of a finished cell (or
an env of a cell not in this run), then uv's entries for the wheels only such envs used,
and ``uv cache prune`` removes the archives no entry points to any more. uv hardlinks an
env's files from its cache, so a wheel's blocks come back only once both are gone.

A build waits while one in flight downloads a wheel it needs too: two uv processes
fetching one wheel each unpack a copy, and the loser's stays in the cache, counted by no
estimate, until a prune (measured: the first cold run without this wait peaked at 57 GiB
under a 30 GiB budget).

The footprint is measured as ``du`` does (blocks, a hardlinked file once) before and
after every build and every few seconds while builds run; the report records its peak.
A build that cannot fit even after freeing everything it may is still built (a run never
loses a cell to its budget) and is named in the report as over budget.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from compat.harness import processes
from compat.harness.config.sizes import format_size
from compat.harness.install.disk import footprint
from compat.harness.install.disk_estimate import (
    UNPACK_RATIO,
    DiskEstimate,
    cache_entries,
    in_uv_cache,
    lock_wheels,
    reusable,
)
from compat.harness.install.env_folder import STAMP, Env
from compat.harness.install.install_plan import InstallPlan
from compat.harness.install.lockfile import LOCK, read_packages

__all__ = ["SAMPLE_EVERY", "BudgetReport", "DiskBudget", "EnvsFootprint", "RunDisk"]

SAMPLE_EVERY = 5.0  # seconds between footprint samples while an env is being built
POLL = 0.5  # seconds between looks at a stop while a build waits for another
UNSIZED_GROWTH = 6 * 2**30  # a cell the estimate could not size: one CUDA torch env, measured
BYTECODE = 128 * 2**20  # what a cell's tests compile into its env (measured 64 MB), doubled
HEADROOM = 1 / 32  # of the budget, kept free for the estimate's error (see plan_limit)


@dataclass
class BudgetReport:
    """What the budget did, for results.json and the console."""

    budget_bytes: int | None  # None: a cold run without a budget (peak recorded, nothing freed)
    start_bytes: int = 0
    peak_bytes: int = 0
    end_bytes: int = 0
    freed_bytes: int = 0
    freed_envs: list[str] = field(default_factory=list)
    freed_wheels: int = 0
    over_budget: list[str] = field(default_factory=list)  # builds that could not fit
    events: list[str] = field(default_factory=list)  # each decision, with the figures behind it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BudgetReport:
        """As :meth:`to_dict` wrote it; a field of the wrong kind reads as not recorded."""

        def number(key: str) -> int:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        def strings(key: str) -> list[str]:
            value = data.get(key)
            return [str(v) for v in value] if isinstance(value, list) else []

        budget = data.get("budget_bytes")
        return cls(
            budget_bytes=number("budget_bytes") if budget is not None else None,
            start_bytes=number("start_bytes"),
            peak_bytes=number("peak_bytes"),
            end_bytes=number("end_bytes"),
            freed_bytes=number("freed_bytes"),
            freed_envs=strings("freed_envs"),
            freed_wheels=number("freed_wheels"),
            over_budget=strings("over_budget"),
            events=strings("events"),
        )

    def line(self) -> str:
        freed = (
            f"; freed {len(self.freed_envs)} env(s) and {self.freed_wheels} wheel(s), "
            f"{format_size(self.freed_bytes)}"
            if self.freed_envs or self.freed_wheels
            else ""
        )
        over = f"; OVER BUDGET for {', '.join(self.over_budget)}" if self.over_budget else ""
        what = (
            "disk (no budget)"
            if self.budget_bytes is None
            else f"disk budget {format_size(self.budget_bytes)}"
        )
        return (
            f"{what}: peak "
            f"{format_size(self.peak_bytes)} of uv cache and envs (start "
            f"{format_size(self.start_bytes)}, end {format_size(self.end_bytes)}){freed}"
            f"{over}"
        )


@dataclass
class RunDisk:
    """What a run says about the disk: uv's cache after it, and the budget's account."""

    uv_cache_dir: str | None = None
    uv_cache_bytes: int | None = None  # apparent size, hardlinked files once
    uv_cache_measured: str | None = None  # when (UTC): a warm run reuses the last figure
    budget: BudgetReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """As results.json records it (``disk``): only what was measured."""
        data: dict[str, Any] = {}
        if self.uv_cache_dir is not None and self.uv_cache_bytes is not None:
            data.update(uv_cache_dir=self.uv_cache_dir, uv_cache_bytes=self.uv_cache_bytes)
            if self.uv_cache_measured is not None:
                data["uv_cache_measured"] = self.uv_cache_measured
        if self.budget is not None:
            data["budget"] = self.budget.to_dict()
        return data

    def lines(self, envs: EnvsFootprint | None = None) -> list[str]:
        """Under the grid: the budget's account, then this run's envs apart from the uv
        cache every run and project shares (a warm run of two cells owns megabytes of a
        cache of tens of gigabytes: the two are never one figure)."""
        found = [self.budget.line()] if self.budget is not None else []
        parts = [envs.text()] if envs is not None and envs.count else []
        if self.uv_cache_bytes is not None:
            when = f", measured {self.uv_cache_measured}" if self.uv_cache_measured else ""
            parts.append(
                f"the shared uv cache: {format_size(self.uv_cache_bytes)} "
                f"({self.uv_cache_dir}{when}; shared by every run and project on this machine)"
            )
        if parts:
            found.append("disk: " + "; ".join(parts))
        return found


@dataclass(frozen=True)
class EnvsFootprint:
    """This run's envs: how many, their apparent size, and their own files (what is not
    hardlinked from the uv cache: what deleting them would give back)."""

    count: int = 0
    apparent_bytes: int = 0
    own_bytes: int = 0

    def text(self) -> str:
        return (
            f"this run's envs: {self.count} env(s), {format_size(self.own_bytes)} of their "
            f"own files ({format_size(self.apparent_bytes)} apparent; the rest is hardlinked "
            "from the uv cache)"
        )


class DiskBudget:
    """Keeps the uv cache and the envs root under ``limit`` bytes during one run.

    With no limit (a cold run without a budget) nothing is freed, but builds still wait
    for a shared download and the peak is still recorded.
    """

    def __init__(
        self,
        limit: int | None,
        *,
        cache: Path | None,
        envs_root: Path,
        estimate: DiskEstimate,
        cells: Sequence[str],
        prune: Sequence[str] | None = None,
        bytecode: int = BYTECODE,
    ) -> None:
        self.limit = limit
        self.bytecode = bytecode
        self.cache = cache
        self.envs_root = envs_root
        self.estimate = estimate
        self.remaining = set(cells)  # not finished: their envs and wheels are kept
        self.finished_order: list[str] = []
        self.prune = list(prune) if prune else None  # the uv command that drops dangling archives
        self.report = BudgetReport(budget_bytes=limit)
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a build ended: waiters look again
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._last = 0
        self._started = time.monotonic()
        self.report.start_bytes = self.report.peak_bytes = self.measure()
        self._sampler = threading.Thread(
            target=self._sample, daemon=True, name="compat-disk-budget"
        )
        self._sampler.start()

    # -- measuring ---------------------------------------------------------------------

    def measure(self) -> int:
        """The footprint now (the last one known if a stop came), and the peak so far."""
        paths = [self.envs_root] + ([self.cache] if self.cache is not None else [])
        try:
            size = footprint(paths)
        except processes.Stopped:
            return self._last
        self._last = size
        self.report.peak_bytes = max(self.report.peak_bytes, size)
        return size

    def _sample(self) -> None:
        while not self._closed.is_set():
            if self._in_flight:
                self.measure()
                self._closed.wait(SAMPLE_EVERY)
            else:
                self._wake.wait(SAMPLE_EVERY)
                self._wake.clear()

    def _missing(self, cell_id: str) -> frozenset[str] | None:
        """The wheels of the cell uv does not hold yet (None: its wheels are not known)."""
        wheels = self.estimate.cell_wheels.get(cell_id)
        if wheels is None:
            return None
        return frozenset(w for w in wheels if not in_uv_cache(self.cache, w))

    @property
    def plan_limit(self) -> float:
        """What builds are planned against: the budget less a headroom. An estimate is
        off by the unpack ratio of its wheels (1.1x to 3.8x around the 1.9x assumed), and
        the disk also grows outside builds (bytecode while cells test): measured, planning
        against the whole budget peaked at 30.3 GiB of 30."""
        return float("inf") if self.limit is None else int(self.limit * (1 - HEADROOM))

    def growth(self, cell_id: str) -> int:
        """What building this cell's env adds now: its wheels not cached yet, unpacked, and
        the bytecode its tests will compile."""
        missing = self._missing(cell_id)
        if missing is None:
            return UNSIZED_GROWTH
        wheels = sum(self.estimate.wheel_bytes.get(w, 0) for w in missing)
        return int(wheels * UNPACK_RATIO) + self.bytecode

    def _shares_a_download(self, cell_id: str) -> bool:
        """Whether a build in flight downloads a wheel this cell needs (unknown wheels, on
        either side, count as shared)."""
        if not self._in_flight:
            return False
        mine = self._missing(cell_id)
        if mine is None:
            return True
        for other in self._in_flight:
            theirs = self._missing(other)
            if theirs is None or mine & theirs:
                return True
        return False

    # -- the run's hooks ---------------------------------------------------------------

    def before_build(self, plan: InstallPlan) -> None:
        """Make room for ``plan``'s env, if it must be built, before uv downloads a byte."""
        if reusable(plan):
            return
        with self._changed:
            while self._shares_a_download(plan.cell_id):
                self._changed.wait(POLL)
                if processes.stopping():
                    raise processes.Stopped(f"stopped while {plan.cell_id} waited to build")
            need = self.growth(plan.cell_id)
            used = self.measure()
            flying = sum(self._in_flight.values())
            planned = used + need + flying
            limit = self.plan_limit
            self._note(
                f"{plan.cell_id}: {format_size(used)} held + {format_size(need)} to "
                f"build + {format_size(flying)} in flight"
                + (f" > {format_size(int(limit))}" if planned > limit else "")
            )
            if planned > limit:
                used = self._free(planned - limit)
                planned = used + need + flying
            if planned > limit:
                self.report.over_budget.append(
                    f"{plan.cell_id} (needs {format_size(need)}; "
                    f"{format_size(used)} held by what the run still needs)"
                )
            self._in_flight[plan.cell_id] = need
        self._wake.set()

    def after_build(self, plan: InstallPlan) -> None:
        with self._changed:
            if self._in_flight.pop(plan.cell_id, None) is not None:
                self.measure()
            self._changed.notify_all()

    def finished(self, cell_id: str) -> None:
        with self._lock:
            self.remaining.discard(cell_id)
            self.finished_order.append(cell_id)

    def close(self) -> BudgetReport:
        self._closed.set()
        self._wake.set()
        self._sampler.join(timeout=SAMPLE_EVERY + 60)
        self.report.end_bytes = self.measure()
        return self.report

    # -- freeing -----------------------------------------------------------------------

    def _candidates(self) -> list[Env]:
        """Envs no remaining cell needs, the first to go first: this run's finished cells
        in the order they finished, then envs of cells not in this run, oldest first."""
        ours = [Env(self.envs_root, c) for c in self.finished_order]
        others = sorted(
            (
                Env(self.envs_root, p.parent.name)
                for p in self.envs_root.glob("*/" + STAMP)
                if p.parent.name not in self.remaining and p.parent.name not in self.finished_order
            ),
            key=lambda env: env.stamp_path.stat().st_mtime,
        )
        return [env for env in [*ours, *others] if env.stamp_path.exists()]

    def _needed_wheels(self) -> set[str]:
        needed: set[str] = set()
        for cell in self.remaining:
            needed |= self.estimate.cell_wheels.get(cell, frozenset())
        return needed

    def _free(self, wanted: int) -> int:
        """Free envs and wheels no remaining cell needs until ``wanted`` bytes came back
        (or nothing is left to free); the footprint afterwards."""
        start = used = self.measure()
        needed = self._needed_wheels()
        for env in self._candidates():
            wheels = self.estimate.cell_wheels.get(env.name) or _env_wheels(env)
            if not env.remove(wait=False):  # one in use is left alone
                continue
            self.report.freed_envs.append(env.name)
            before = used
            if self.cache is not None:
                for wheel in sorted(wheels - needed):
                    entries = cache_entries(self.cache, wheel)
                    for entry in entries:
                        entry.unlink(missing_ok=True)
                    self.report.freed_wheels += bool(entries)
                self._prune()
            used = self.measure()
            self._note(
                f"freed {env.name} and its wheels no remaining cell needs: "
                f"{format_size(max(0, before - used))} back"
            )
            if start - used >= wanted:
                break
        self.report.freed_bytes += max(0, start - used)
        return used

    def _note(self, text: str) -> None:
        self.report.events.append(f"{time.monotonic() - self._started:7.1f}s {text}")

    def _prune(self) -> None:
        if self.prune:
            with contextlib.suppress(OSError, processes.Stopped):
                processes.run([*self.prune, "cache", "prune"], capture=True, timeout=600)


def _env_wheels(env: Env) -> frozenset[str]:
    """The wheels an env of another run installed, from its lock and its Python."""
    site = env.site_packages()
    if site is None:
        return frozenset()
    return lock_wheels(read_packages(env.path / LOCK), site.parent.name.removeprefix("python"))
