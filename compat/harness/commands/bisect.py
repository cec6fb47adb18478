"""``nox -s bisect``: drive a :class:`Bisection` with real cells, one env per candidate.

Candidates are the final releases between the two ends on the index (or the nightly
builds between two dates on a nightly channel), or only the torch versions the matrix
declares (``--versions matrix``: their envs usually exist, so a first pass costs no
install). Each step is an ordinary cell run of the one test, in the same env folder as
the matrix, so envs are shared with matrix runs and other bisections. Verdicts are saved
after every step: Ctrl-C loses nothing and rerunning the same command resumes.

With ``--good`` newer than ``--bad`` the search finds a fix instead (mozregression's
``--find-fix``): the first good version after the last bad one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from compat.harness import processes
from compat.harness.config.channels import nightly_date
from compat.harness.config.matrix import NIGHTLY_TORCHAO, RELEASE, Cell, Matrix
from compat.harness.errors import UsageError
from compat.harness.execute.cell_runner import run_cell
from compat.harness.execute.progress import Progress
from compat.harness.files import atomic_write_text, read_json_object
from compat.harness.install.index import IndexUnreachable, list_wheels
from compat.harness.install.pipconfig import PipIndexConfig
from compat.harness.install.wheel_tags import cell_tags, installable
from compat.harness.results.bisection import Bisection, Verdict
from compat.harness.results.drift import diff_snapshots
from compat.harness.results.model import CellResult, CellStatus, Outcome

__all__ = ["BisectRequest", "bisect", "find_candidates", "matrix_candidates", "render_bisect",
           "verdict_of"]

COMPARE = "https://github.com/pytorch/pytorch/compare/{older}...{newer}"
_SKIP_STATUSES = {CellStatus.INSTALL_FAILED, CellStatus.IMPORT_FAILED, CellStatus.SKIPPED,
                  CellStatus.NOT_APPLICABLE, CellStatus.NOT_RUN}


@dataclass(frozen=True)
class BisectRequest:
    test: str
    good: str
    bad: str
    stack: str
    python: str
    channel: str = RELEASE
    torchao: str | None = None
    on: str = "outcome"  # or "snapshot": bad is "porting differs from the good end's"

    @property
    def finds_fix(self) -> bool:
        """The good end is the newer one: look for the version that fixed the test."""
        good, bad = _parse_date(self.good), _parse_date(self.bad)
        if good and bad:
            return good > bad
        try:
            return Version(self.good) > Version(self.bad)
        except InvalidVersion:
            return False

    @property
    def key(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _ends(request: BisectRequest) -> tuple[Version, Version]:
    """The two ends as versions, older first."""
    try:
        ends = sorted([Version(request.good), Version(request.bad)])
    except InvalidVersion as exc:
        raise UsageError(f"--good/--bad: {exc}") from None
    if ends[0] == ends[1]:
        raise UsageError(f"--good {request.good} and --bad {request.bad} are the same version")
    return ends[0], ends[1]


def find_candidates(request: BisectRequest, channel: dict[str, Any],
                    pip_config: PipIndexConfig) -> list[str]:
    """Ordered candidates from the older end to the newer one, both included."""
    nightly = channel.get("kind") == "nightly"
    index = channel.get("index-url") or (None if nightly else pip_config.index_url)
    if nightly:
        first, last = _parse_date(request.good), _parse_date(request.bad)
        if first is None or last is None:
            raise UsageError("on a nightly channel --good and --bad are dates (YYYY-MM-DD)")
        first, last = min(first, last), max(first, last)
    else:
        first_v, last_v = _ends(request)
    try:
        files = list_wheels(index, "torch")
    except IndexUnreachable as exc:
        raise UsageError(f"cannot list torch versions: {exc}") from None
    usable = installable(files, cell_tags(request.python))
    if nightly:
        newest: dict[date, Version] = {}
        for f in usable:
            day = nightly_date(f.version)
            if day and first <= day <= last and f.version > newest.get(day, Version("0")):
                newest[day] = f.version
        return [str(newest[d]) for d in sorted(newest)]
    found = {Version(f.version.public) for f in usable
             if not f.version.is_prerelease and first_v <= Version(f.version.public) <= last_v}
    return [str(v) for v in sorted(found)]


def matrix_candidates(request: BisectRequest, matrix: Matrix) -> list[str]:
    """The ends and the torch versions the matrix declares between them (``--versions
    matrix``): a first pass over envs that usually exist already."""
    if matrix.channels.get(request.channel, {}).get("kind") == "nightly":
        raise UsageError("--versions matrix needs a release channel (nightly cells are dates)")
    first, last = _ends(request)
    found = {first, last}
    for cell in matrix.cells:
        if cell.channel != request.channel or cell.url:
            continue
        try:
            version = Version(cell.torch)
        except InvalidVersion:
            continue
        if first <= version <= last:
            found.add(version)
    return [str(v) for v in sorted(found)]


def torchao_for(request: BisectRequest, candidate: str, channel: dict[str, Any],
                pairing: dict[str, str]) -> str | None:
    """The torchao of a candidate, as the matrix would pair it: ``--torchao`` if given,
    else the nightly of the same date, else the pairing a ``[[torch]]`` entry declares
    for that version (none: the candidate installs without torchao and is skipped)."""
    if request.stack != "torchao":
        return None
    if request.torchao:
        return request.torchao
    if channel.get("kind") == "nightly":
        return NIGHTLY_TORCHAO
    return pairing.get(candidate)


def verdict_of(result: CellResult, test: str) -> Verdict:
    if result.status in _SKIP_STATUSES:
        return Verdict.SKIP
    outcomes = [t.outcome for t in result.tests_named(test)]
    if Outcome.FLAKY in outcomes:
        return Verdict.SKIP  # failed, then passed: neither verdict can be trusted
    if outcomes and all(o.passing for o in outcomes):
        return Verdict.GOOD
    if any(o.failing for o in outcomes):
        return Verdict.BAD
    if result.status in (CellStatus.CRASHED, CellStatus.TIMED_OUT, CellStatus.ERROR):
        return Verdict.BAD
    return Verdict.SKIP  # the test does not exist there


def snapshots_of(result: CellResult, test: str) -> dict[str, Any]:
    """The test's porting snapshots (every parametrization), or {} when none was taken."""
    return {t.nodeid.rsplit("/", 1)[-1]: t.snapshots for t in result.tests_named(test)
            if t.snapshots}


def snapshot_verdict(result: CellResult, test: str, reference: dict[str, Any]) -> Verdict:
    """``--on snapshot``: good while the porting snapshot equals the good end's."""
    if result.status in _SKIP_STATUSES:
        return Verdict.SKIP
    taken = snapshots_of(result, test)
    if not taken:
        return Verdict.SKIP  # the test did not record a snapshot here: no verdict
    return Verdict.GOOD if taken == reference else Verdict.BAD


def bisect(request: BisectRequest, matrix: Matrix, *, out: Path, envs_root: Path,
           pip_config: PipIndexConfig, candidates: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the search to the end; returns (and saves) the full record."""
    channel = dict(matrix.channels.get(request.channel) or {})
    if candidates is None:
        candidates = find_candidates(request, channel, pip_config)
    if len(candidates) < 2:
        raise UsageError(f"fewer than two torch versions between {request.good} and "
                         f"{request.bad} for CPython {request.python}")
    state_path = out / "bisect.json"
    saved = read_json_object(state_path)
    fix = request.finds_fix

    def searched(verdict: Verdict) -> Verdict:
        """The search looks for the first "bad"; looking for a fix, that is the first pass."""
        flipped = {Verdict.GOOD: Verdict.BAD, Verdict.BAD: Verdict.GOOD}
        return flipped.get(verdict, verdict) if fix else verdict

    search = Bisection.resume(candidates, {k: searched(Verdict(v)).value
                                           for k, v in saved.get("verdicts", {}).items()})
    record: dict[str, Any] = {
        "mode": "fix" if fix else "regression",
        "request": dataclasses.asdict(request), "candidates": list(candidates),
        "verdicts": {k: searched(v).value for k, v in search.verdicts.items()},
        "git": saved.get("git", {}), "steps": saved.get("steps", []),
        "envs_built": saved.get("envs_built", 0), "on": request.on,
        "snapshots": saved.get("snapshots", {}),
    }
    good_end = candidates[-1] if fix else candidates[0]
    if "::" in request.test:
        one_test = dataclasses.replace(matrix, tests=(request.test,), select=None)
    else:
        one_test = dataclasses.replace(matrix, select=request.test)
    progress = Progress(len(candidates))
    pairing = {c.torch: c.torchao for c in matrix.cells if c.stack == "torchao" and c.torchao}
    def next_step() -> str | None:
        """In snapshot mode the good end runs first: its snapshot is the reference."""
        if request.on == "snapshot" and good_end not in record["snapshots"]:
            return good_end
        return search.next_candidate()

    while (candidate := next_step()) is not None:
        torchao = torchao_for(request, candidate, channel, pairing)
        unpaired = (f"no torchao paired with torch {candidate} in the matrix (give --torchao)"
                    if request.stack == "torchao" and torchao is None else None)
        cell = Cell(request.python, candidate, request.stack, torchao, request.channel,
                    gating=True, not_applicable=unpaired)
        result = run_cell(cell, one_test, run_dir=out, envs_root=envs_root,
                          pip_config=pip_config, progress=progress)
        if processes.stopping():  # a stop, not a verdict: nothing is recorded for it
            raise KeyboardInterrupt
        if request.on == "snapshot":
            taken = snapshots_of(result, request.test)
            record["snapshots"][candidate] = taken
            if candidate == good_end and not taken:
                raise UsageError(f"{request.test} recorded no porting snapshot on the good end "
                                 f"{candidate} ({result.status.value}): nothing to compare with")
            verdict = snapshot_verdict(result, request.test, record["snapshots"][good_end])
        else:
            verdict = verdict_of(result, request.test)
        search.record(candidate, searched(verdict))
        built = result.install.get("reused") is False
        record["envs_built"] += int(built)
        record["verdicts"][candidate] = verdict.value
        if result.fingerprint.get("torch_git_version"):
            record["git"][candidate] = result.fingerprint["torch_git_version"]
        # What the test did ("xfailed": it failed, as the matrix expected), else the cell.
        shown = "/".join(t.outcome.value for t in result.tests_named(request.test))
        record["steps"].append({"candidate": candidate, "verdict": verdict.value,
                                "status": shown or result.status.value,
                                "reason": result.reason, "env_built": built})
        progress.finished(result)
        progress.phase(cell.id, f"verdict {verdict.value}")
        atomic_write_text(state_path, json.dumps(record, indent=2) + "\n")
    before, after, skipped = search.result()  # the boundary, older side first
    if fix:
        record.update(last_bad=before, first_good=after,
                      inconsistencies=search.inconsistencies(good="bad", bad="good"))
    else:
        record.update(last_good=before, first_bad=after,
                      inconsistencies=search.inconsistencies())
    record.update(skipped=skipped, endpoints_hold=search.endpoints_hold)
    if request.on == "snapshot":
        old, new = record["snapshots"].get(before) or {}, record["snapshots"].get(after) or {}
        record["snapshot_changes"] = [f"{test}: {change}" for test in new if test in old
                                      for change in diff_snapshots(old[test], new[test])]
    git_before, git_after = record["git"].get(before), record["git"].get(after)
    record["compare"] = (COMPARE.format(older=git_before, newer=git_after)
                         if git_before and git_after else None)
    atomic_write_text(state_path, json.dumps(record, indent=2) + "\n")
    return record


def render_bisect(record: dict[str, Any]) -> str:
    request = record["request"]
    n = len(record["candidates"])
    bound = math.ceil(math.log2(n)) + 2
    fix = record.get("mode") == "fix"
    on = " on its porting snapshot" if record.get("on") == "snapshot" else ""
    lines = [f"bisect {request['test']}{on} ({request['stack']}, py{request['python']}, "
             f"{request['channel']}{', looking for the fix' if fix else ''}): {n} candidates "
             f"{record['candidates'][0]} .. {record['candidates'][-1]}"]
    for number, step in enumerate(record["steps"], 1):
        built = "built env" if step["env_built"] else "reused env"
        why = f": {step['reason']}" if step["verdict"] == "skip" and step["reason"] else ""
        lines.append(f"  step {number}: {step['candidate']:<28} {step['verdict']:<5} "
                     f"({step['status']}, {built}){why}")
    if not record["endpoints_hold"]:
        lines.append(f"the ends do not hold: {request['good']} should be good and is "
                     f"{record['verdicts'].get(request['good'], 'untried')}, "
                     f"{request['bad']} should be bad and is "
                     f"{record['verdicts'].get(request['bad'], 'untried')}")
        return "\n".join(lines)
    git = record["git"]
    ends = ([("last bad", record["last_bad"]), ("first good", record["first_good"])] if fix
            else [("last good", record["last_good"]), ("first bad", record["first_bad"])])
    lines += [f"{label}: {version} (git {git.get(version, '?')})" for label, version in ends]
    if record["skipped"]:
        lines.append(f"skipped in between (could not install or import): "
                     f"{', '.join(record['skipped'])}")
    for note in record["inconsistencies"]:
        lines.append(f"warning: {note}")
    if record.get("on") == "snapshot":
        lines.append("what the porting does differently there:")
        lines += [f"  {change}" for change in record.get("snapshot_changes") or []]
    if record["compare"]:
        lines.append(record["compare"])
    lines.append(f"environments built: {record['envs_built']} "
                 f"(bound ceil(log2({n})) + 2 = {bound}), steps: {len(record['steps'])}")
    return "\n".join(lines)
