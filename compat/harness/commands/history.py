"""``nox -s history``: one test across the kept runs, and since when it broke.

Each run folder under ``reports/`` is a dated observation. A ``latest`` nightly cell keeps
its id while its build changes every day, so only the history of runs says on which
night a test broke; a release cell keeps its build, so a change there came from the
tests or the other packages, and the two runs' package lists say which. A break between
two nightly builds ends with the bisection that narrows it to a commit range.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from compat.harness.config.channels import nightly_date
from compat.harness.errors import UsageError
from compat.harness.reports.bands import render_banded
from compat.harness.reports.grid import SYMBOLS, status_label, torch_build
from compat.harness.results.drift import diff_snapshots
from compat.harness.results.model import CellResult, CellStatus
from compat.harness.results.run_folder import MANIFEST, load_run

__all__ = ["Change", "Observation", "changes", "collect_history", "render_history"]


@dataclass
class Observation:
    """One kept run: its id and every cell's result."""

    run_id: str
    results: dict[str, CellResult]
    source: dict[str, Any] | None = None  # run.json's git commit of the tested tree


@dataclass
class Change:
    cell_id: str
    kind: str  # "broke" or "fixed"
    before: tuple[str, CellResult]  # (run id, result) of the last run on the old side
    after: tuple[str, CellResult]


def collect_history(reports: Path, *, matrix_name: str | None = None) -> list[Observation]:
    """Runs of one matrix (default: the newest run's), oldest first.

    Runs are ordered by when they started (their manifest is written first); a run whose
    files are broken contributes what it can, as ``nox -s report`` would.
    """
    if not reports.is_dir():
        raise UsageError(f"{reports}: no reports folder")
    folders = [
        d
        for d in reports.iterdir()
        if d.is_dir() and not d.is_symlink() and (d / MANIFEST).is_file()
    ]
    folders.sort(key=_started)
    loaded = [(d.name, load_run(d)) for d in folders]
    loaded = [(name, run) for name, run in loaded if run.manifest is not None]
    if not loaded:
        raise UsageError(f"{reports}: no runs kept here")
    wanted = matrix_name or loaded[-1][1].manifest.matrix_name  # type: ignore[union-attr]
    names = sorted({run.manifest.matrix_name for _, run in loaded if run.manifest})
    if wanted not in names:
        raise UsageError(
            f"--matrix-name {wanted}: no run of that matrix in {reports} "
            f"(runs of: {', '.join(names)})"
        )
    return [
        Observation(name, {r.cell_id: r for r in run.results}, run.manifest.source)
        for name, run in loaded
        if run.manifest and run.manifest.matrix_name == wanted
    ]


def _started(folder: Path) -> str:
    """When a run started: its id's stamp (``20261127-031411-default``), else its manifest's
    time; sortable either way."""
    if re.match(r"\d{8}-\d{6}", folder.name):
        return folder.name
    return time.strftime("%Y%m%d-%H%M%S", time.localtime((folder / MANIFEST).stat().st_mtime))


def _value(result: CellResult | None, test: str | None) -> str:
    if result is None:
        return ""  # the cell was not in that run
    if test is None:
        return status_label(result)
    found = result.tests_named(test)
    if found:
        return SYMBOLS[found[0].outcome.value]
    return "n/a" if result.status is CellStatus.NOT_APPLICABLE else SYMBOLS["not-run"]


def _passing(result: CellResult, test: str | None) -> bool | None:
    """True / False where the run says something about the test (or the cell), else None."""
    if test is None:
        if result.status is CellStatus.PASSED:
            return True
        return False if result.status.unexpected else None
    outcomes = [t.outcome for t in result.tests_named(test)]
    if outcomes and all(o.passing for o in outcomes):
        return True
    if any(o.failing for o in outcomes):
        return False
    return None  # absent, skipped, flaky, not run: no evidence either way


def changes(history: Sequence[Observation], test: str | None, cells: Sequence[str]) -> list[Change]:
    """Every pass -> fail ("broke") and fail -> pass ("fixed"), run over run, per cell."""
    found: list[Change] = []
    for cell_id in cells:
        last: tuple[str, CellResult, bool] | None = None
        for observation in history:
            result = observation.results.get(cell_id)
            state = _passing(result, test) if result is not None else None
            if state is None or result is None:
                continue
            if last is not None and last[2] != state:
                kind = "fixed" if state else "broke"
                found.append(
                    Change(cell_id, kind, (last[0], last[1]), (observation.run_id, result))
                )
            last = (observation.run_id, result, state)
    return found


def behaviour_changes(history: Sequence[Observation], test: str, cells: Sequence[str]) -> list[str]:
    """Run over run, where the test's porting snapshot moved: a change, not a failure."""
    found = []
    for cell_id in cells:
        last: tuple[str, dict[str, Any]] | None = None
        for observation in history:
            result = observation.results.get(cell_id)
            snaps = {
                t.nodeid.rsplit("/", 1)[-1]: t.snapshots
                for t in (result.tests_named(test) if result else [])
                if t.snapshots
            }
            if not snaps:
                continue
            if last is not None and last[1] != snaps:
                first = next(
                    (
                        f"{name.rsplit('::', 1)[-1]}: {change}"
                        for name in snaps
                        if name in last[1]
                        for change in diff_snapshots(last[1][name], snaps[name])
                    ),
                    "the recorded graphs changed",
                )
                found.append(
                    f"{cell_id}: behaviour changed between {last[0]} and "
                    f"{observation.run_id}: {first}"
                )
            last = (observation.run_id, snaps)
    return found


def _packages(result: CellResult) -> dict[str, str]:
    pins = (p.split("==", 1) for p in result.install.freeze or [] if "==" in p)
    return {name.lower(): version for name, version in pins}


def _short(source: dict[str, Any]) -> str:
    dirty = " (with uncommitted changes)" if source.get("dirty") else ""
    return f"{str(source.get('commit'))[:12]}{dirty}"


def _tree_moved(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str | None:
    """``commit a1b2c3..d4e5f6 of the tested tree (git log a1b2c3..d4e5f6)``, when the two
    runs recorded different commits or uncommitted changes; None when nothing says so."""
    if not old or not new:
        return None
    if old.get("commit") != new.get("commit"):
        span = f"{str(old['commit'])[:12]}..{str(new['commit'])[:12]}"
        return (
            f"the tested tree moved from {_short(old)} to {_short(new)}: "
            f"the change is in that range (git log {span})"
        )
    if old.get("dirty") or new.get("dirty"):
        return (
            f"the tested tree is at {_short(new)} in both runs, with uncommitted changes "
            "in one: the change is in those (or the shims)"
        )
    return None


def _explain(
    change: Change, test: str | None, sources: dict[str, dict[str, Any] | None] | None = None
) -> list[str]:
    """What differed between the two runs: the torch build (then: bisect it), the other
    packages, or the tested tree's commit (``run.json``)."""
    (_, old), (_, new) = change.before, change.after
    old_torch, new_torch = torch_build(old), torch_build(new)
    if old_torch != new_torch:
        try:
            days = nightly_date(Version(old_torch)), nightly_date(Version(new_torch))
        except InvalidVersion:
            days = (None, None)
        if test and days[0] and days[1]:
            good, bad = (days[0], days[1]) if change.kind == "broke" else (days[1], days[0])
            cell = new.cell
            return [
                f"bisect: nox -s bisect -- {test} --good {good} --bad {bad} "
                f"--channel {cell.channel} --stack {cell.stack} --python {cell.python}"
            ]
        return []
    before, after = _packages(old), _packages(new)
    moved = [
        f"{name} {before.get(name, 'absent')} -> {after.get(name, 'absent')}"
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]
    sources = sources or {}
    tree = _tree_moved(sources.get(change.before[0]), sources.get(change.after[0]))
    if moved:
        said = f"same torch build; other packages changed: {', '.join(moved)}"
        return [said + (f"; also {tree}" if tree else "")]
    if tree:
        return [f"same torch build and packages; {tree}"]
    return ["same torch build and packages: the change is in the tests or the shims"]


def render_history(
    history: Sequence[Observation],
    *,
    test: str | None,
    cell_patterns: Sequence[str] = (),
    width: int | None = None,
) -> str:
    cells: list[str] = []
    for observation in history:
        cells += [c for c in observation.results if c not in cells]
    if cell_patterns:
        cells = [c for c in cells if any(fnmatch.fnmatchcase(c, p) for p in cell_patterns)]
        if not cells:
            raise UsageError(f"--cells {' '.join(cell_patterns)}: no such cell in these runs")
    if test and not any(r.tests_named(test) for o in history for r in o.results.values()):
        raise UsageError(f"{test}: no such test in the {len(history)} run(s) kept")
    what = test or "every cell's status"
    lines = [f"history of {what}: {len(history)} run(s)", ""]
    headers = ["run", *(c.replace("-", "\n", 2) for c in cells)]
    rows = [[o.run_id, *(_value(o.results.get(c), test) for c in cells)] for o in history]
    lines.append(render_banded(headers, rows, width=width))
    found = changes(history, test, cells)
    sources = {o.run_id: o.source for o in history}
    lines += ["", "Changes:" if found else "No change between runs."]
    for change in found:
        (old_run, old), (new_run, new) = change.before, change.after
        lines.append(
            f"  {change.cell_id}: {change.kind} between {old_run} "
            f"(torch {torch_build(old)}) and {new_run} (torch {torch_build(new)})"
        )
        lines += [f"    {line}" for line in _explain(change, test, sources)]
    moved = behaviour_changes(history, test, cells) if test else []
    if moved:
        lines += [
            "",
            "Behaviour changed (porting snapshot; not a failure):",
            *(f"  {line}" for line in moved),
        ]
    return "\n".join(lines)
