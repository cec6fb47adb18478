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
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from compat.harness import processes
from compat.harness.commands.options import writable_folder
from compat.harness.commands.pipeline import execute
from compat.harness.commands.test_names import check_test_exists
from compat.harness.config.channels import Channel, nightly_date
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
from compat.harness.results.run_folder import holds_run

__all__ = [
    "BisectRecord",
    "BisectRequest",
    "BisectStep",
    "bisect",
    "find_candidates",
    "matrix_candidates",
    "render_bisect",
    "verdict_of",
]

COMPARE = "https://github.com/pytorch/pytorch/compare/{older}...{newer}"
_SKIP_STATUSES = {
    CellStatus.INSTALL_FAILED,
    CellStatus.IMPORT_FAILED,
    CellStatus.SKIPPED,
    CellStatus.NOT_APPLICABLE,
    CellStatus.NOT_RUN,
}


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


def find_candidates(
    request: BisectRequest, channel: Channel, pip_config: PipIndexConfig
) -> list[str]:
    """Ordered candidates from the older end to the newer one, both included."""
    nightly = channel.is_nightly
    index = channel.index_url or (None if nightly else pip_config.index_url)
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
    found = {
        Version(f.version.public)
        for f in usable
        if not f.version.is_prerelease and first_v <= Version(f.version.public) <= last_v
    }
    return [str(v) for v in sorted(found)]


def matrix_candidates(request: BisectRequest, matrix: Matrix) -> list[str]:
    """The ends and the torch versions the matrix declares between them (``--versions
    matrix``): a first pass over envs that usually exist already."""
    if matrix.channel(request.channel).is_nightly:
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


def torchao_for(
    request: BisectRequest, candidate: str, channel: Channel, pairing: dict[str, str]
) -> str | None:
    """The torchao of a candidate, as the matrix would pair it: ``--torchao`` if given,
    else the nightly of the same date, else the pairing a ``[[torch]]`` entry declares
    for that version (none: the candidate installs without torchao and is skipped)."""
    if request.stack != "torchao":
        return None
    if request.torchao:
        return request.torchao
    if channel.is_nightly:
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
    return {
        t.nodeid.rsplit("/", 1)[-1]: t.snapshots for t in result.tests_named(test) if t.snapshots
    }


def snapshot_verdict(result: CellResult, test: str, reference: dict[str, Any]) -> Verdict:
    """``--on snapshot``: good while the porting snapshot equals the good end's."""
    if result.status in _SKIP_STATUSES:
        return Verdict.SKIP
    taken = snapshots_of(result, test)
    if not taken:
        return Verdict.SKIP  # the test did not record a snapshot here: no verdict
    return Verdict.GOOD if taken == reference else Verdict.BAD


def _check_same_request(request: BisectRequest, versions: str, saved: Mapping[str, Any]) -> None:
    """Refuse (one line) a saved state whose request is not ``request``."""
    before = saved.get("request")
    if not isinstance(before, Mapping):
        raise KeyError("request")
    now = {**dataclasses.asdict(request), "versions": versions}
    before = {**before, "versions": saved.get("versions", "index")}
    differs = [
        f"{key} {before.get(key)!r} there, {value!r} here"
        for key, value in now.items()
        if before.get(key, _DEFAULTS.get(key)) != value
    ]
    if differs:
        raise OtherRequest(
            f"holds the bisection of another request ({'; '.join(differs)}): give "
            "another --out, or remove its bisect.json to start over"
        )


class OtherRequest(ValueError):
    """``bisect.json`` answers another request than the one given."""


_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(BisectRequest) if f.default is not MISSING
}


@dataclass
class BisectStep:
    """One candidate run: its verdict, and what the test (else the cell) did."""

    candidate: str
    verdict: Verdict
    status: str  # the test's outcomes ("xfailed": failed, as expected), else the cell's status
    reason: str | None
    env_built: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "verdict": self.verdict.value,
            "status": self.status,
            "reason": self.reason,
            "env_built": self.env_built,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BisectStep:
        return cls(
            str(data["candidate"]),
            Verdict(data["verdict"]),
            str(data["status"]),
            data.get("reason"),
            bool(data["env_built"]),
        )


@dataclass
class BisectRecord:
    """A bisection as far as it went, and its answer once the search ended: what
    ``bisect.json`` holds (saved after every step, read back to resume)."""

    request: BisectRequest
    candidates: list[str]
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # the real ones, not the search's
    git: dict[str, str] = field(default_factory=dict)  # candidate -> torch's git version
    steps: list[BisectStep] = field(default_factory=list)
    envs_built: int = 0
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # candidate -> by test
    # Once the search ended: the boundary, older side first (last good/bad, first bad/good).
    boundary: tuple[str, str] | None = None
    inconsistencies: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    endpoints_hold: bool = False
    snapshot_changes: list[str] | None = None  # --on snapshot: what changed at the boundary
    compare: str | None = None  # the GitHub compare link between the two builds
    versions: str = "index"  # where the candidates came from: the index, or the matrix
    # --versions matrix: the index's versions between the boundary's two that were never
    # tried (None: the index could not be listed; ``untried_note`` says why).
    untried: list[str] | None = None
    untried_note: str | None = None

    @property
    def mode(self) -> str:
        return "fix" if self.request.finds_fix else "regression"

    @property
    def ends(self) -> list[tuple[str, str]]:
        """The boundary with its labels: ``last good``/``first bad``, or for a fix
        ``last bad``/``first good``."""
        if self.boundary is None:
            return []
        labels = (
            ("last bad", "first good") if self.request.finds_fix else ("last good", "first bad")
        )
        return list(zip(labels, self.boundary, strict=True))

    @classmethod
    def resumed(
        cls,
        request: BisectRequest,
        candidates: Sequence[str],
        saved: Mapping[str, Any],
        versions: str = "index",
    ) -> BisectRecord:
        """The record of an earlier run of the same search (``bisect.json``), or a new one.

        Saved verdicts answer the saved request only: a state of another request (another
        test, range, stack, Python, channel, torchao, ``--on`` or ``--versions``) is a
        usage error naming what differs, never verdicts taken over."""
        if saved:
            _check_same_request(request, versions, saved)
        return cls(
            request,
            list(candidates),
            {k: Verdict(v) for k, v in saved.get("verdicts", {}).items() if k in candidates},
            dict(saved.get("git", {})),
            [BisectStep.from_dict(step) for step in saved.get("steps", [])],
            int(saved.get("envs_built", 0)),
            dict(saved.get("snapshots", {})),
            versions=versions,
        )

    def to_dict(self) -> dict[str, Any]:
        """``bisect.json``: the search so far, and the answer's keys once it ended."""
        data: dict[str, Any] = {
            "mode": self.mode,
            "request": dataclasses.asdict(self.request),
            "versions": self.versions,
            "candidates": list(self.candidates),
            "verdicts": {k: v.value for k, v in self.verdicts.items()},
            "git": dict(self.git),
            "steps": [step.to_dict() for step in self.steps],
            "envs_built": self.envs_built,
            "on": self.request.on,
            "snapshots": self.snapshots,
        }
        if self.boundary is None:
            return data
        data.update({label.replace(" ", "_"): version for label, version in self.ends})
        data.update(
            inconsistencies=self.inconsistencies,
            skipped=self.skipped,
            endpoints_hold=self.endpoints_hold,
        )
        if self.snapshot_changes is not None:
            data["snapshot_changes"] = self.snapshot_changes
        data["compare"] = self.compare
        if self.versions == "matrix":
            data["untried"] = self.untried
            data["untried_note"] = self.untried_note
        return data

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


def bisect(
    request: BisectRequest,
    matrix: Matrix,
    *,
    out: Path,
    envs_root: Path,
    pip_config: PipIndexConfig,
    candidates: Sequence[str] | None = None,
    versions: str = "index",
) -> BisectRecord:
    """Run the search to the end; returns (and saves) the full record.

    The steps run in order by the driver the matrix run uses (:func:`.pipeline.execute`):
    the request and ``out`` checked, the candidates found, an earlier state of the same
    request resumed, one cell run per step of the search, the answer concluded.
    """
    search = _Search(request, matrix, out, envs_root, pip_config, candidates, versions)
    execute((_check_request, _find_candidates, _resume, _run_steps, _conclude), search)
    return search.record


@dataclass
class _Search:
    """What the steps of one bisection share."""

    request: BisectRequest
    matrix: Matrix
    out: Path
    envs_root: Path
    pip_config: PipIndexConfig
    candidates: Sequence[str] | None
    versions: str
    record: BisectRecord = field(init=False)
    search: Bisection = field(init=False)

    @property
    def state_path(self) -> Path:
        return self.out / "bisect.json"

    @property
    def good_end(self) -> str:
        assert self.candidates is not None
        return self.candidates[-1] if self.request.finds_fix else self.candidates[0]

    def searched(self, verdict: Verdict) -> Verdict:
        """The search looks for the first "bad"; looking for a fix, that is the first pass."""
        flipped = {Verdict.GOOD: Verdict.BAD, Verdict.BAD: Verdict.GOOD}
        return flipped.get(verdict, verdict) if self.request.finds_fix else verdict

    def undo(self) -> None:
        """Nothing to take back: every verdict so far is saved, for the rerun to resume."""


def _check_request(state: _Search) -> None:
    """What the command line cannot check alone: a test named, versions that parse, and
    an ``out`` that is no matrix run (a bisection writes its cells' folders there)."""
    request = state.request
    if not request.test.strip():
        raise UsageError("bisect: the test is empty; give a test name or node id")
    for option, value in (("--python", request.python), ("--torchao", request.torchao)):
        if value is None or value == NIGHTLY_TORCHAO:
            continue
        try:
            Version(value)
        except InvalidVersion:
            raise UsageError(f"{option} {value!r}: not a version") from None
    check_test_exists(state.matrix, request.test)  # a typo must not build envs
    out = state.out
    if out.is_dir() and holds_run(out) and not state.state_path.is_file():
        raise UsageError(f"--out {out}: holds a run already; give a new folder")
    writable_folder(out, "--out")  # a file there, or a folder that cannot be written: exit 2


def _find_candidates(state: _Search) -> None:
    """The versions between the ends (the index's, unless given), at least two."""
    request = state.request
    if state.candidates is None:
        channel = state.matrix.channel(request.channel)
        state.candidates = find_candidates(request, channel, state.pip_config)
    if len(state.candidates) < 2:
        raise UsageError(
            f"fewer than two torch versions between {request.good} and "
            f"{request.bad} for CPython {request.python}"
        )


def _resume(state: _Search) -> None:
    """The verdicts an earlier run of this very request saved (none: a new record)."""
    assert state.candidates is not None
    try:
        state.record = BisectRecord.resumed(
            state.request, state.candidates, read_json_object(state.state_path), state.versions
        )
    except OtherRequest as exc:
        raise UsageError(f"--out {state.out}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(
            f"{state.state_path}: not a bisection's state ({type(exc).__name__}: "
            f"{exc}); remove it to start over"
        ) from None
    # The search sees the verdicts as it searches (flipped when looking for a fix).
    state.search = Bisection.resume(
        state.candidates,
        {k: state.searched(v).value for k, v in state.record.verdicts.items()},
    )


def _run_steps(state: _Search) -> None:
    """One cell run of the one test per candidate the search asks for, each verdict saved
    at once (Ctrl-C loses nothing)."""
    request, matrix = state.request, state.matrix
    assert state.candidates is not None
    if "::" in request.test:
        one_test = dataclasses.replace(matrix, tests=(request.test,), suites=(), select=None)
    else:
        one_test = dataclasses.replace(matrix, select=request.test)
    progress = Progress(len(state.candidates))
    pairing = {c.torch: c.torchao for c in matrix.cells if c.stack == "torchao" and c.torchao}
    channel = matrix.channel(request.channel)

    def next_step() -> str | None:
        """In snapshot mode the good end runs first: its snapshot is the reference."""
        if request.on == "snapshot" and state.good_end not in state.record.snapshots:
            return state.good_end
        return state.search.next_candidate()

    while (candidate := next_step()) is not None:
        cell = _candidate_cell(request, candidate, channel, pairing)
        result = run_cell(
            cell,
            one_test,
            run_dir=state.out,
            envs_root=state.envs_root,
            pip_config=state.pip_config,
            progress=progress,
        )
        if processes.stopping():  # a stop, not a verdict: nothing is recorded for it
            raise KeyboardInterrupt
        verdict = _record_step(state, candidate, result)
        progress.finished(result)
        progress.phase(cell.id, f"verdict {verdict.value}")
        state.record.save(state.state_path)


def _candidate_cell(
    request: BisectRequest, candidate: str, channel: Channel, pairing: dict[str, str]
) -> Cell:
    """The cell of one candidate; on the torchao stack without a torchao to pair, a cell
    that is not applicable (its verdict: skip) rather than a torch.ao run in disguise."""
    torchao = torchao_for(request, candidate, channel, pairing)
    unpaired = (
        f"no torchao paired with torch {candidate} in the matrix (give --torchao)"
        if request.stack == "torchao" and torchao is None
        else None
    )
    return Cell(
        request.python,
        candidate,
        request.stack,
        torchao,
        request.channel,
        gating=True,
        not_applicable=unpaired,
    )


def _record_step(state: _Search, candidate: str, result: CellResult) -> Verdict:
    """The candidate's verdict, into the search and the record."""
    request, record = state.request, state.record
    if request.on == "snapshot":
        taken = snapshots_of(result, request.test)
        record.snapshots[candidate] = taken
        if candidate == state.good_end and not taken:
            raise UsageError(
                f"{request.test} recorded no porting snapshot on the good end "
                f"{candidate} ({result.status.value}): nothing to compare with"
            )
        verdict = snapshot_verdict(result, request.test, record.snapshots[state.good_end])
    else:
        verdict = verdict_of(result, request.test)
    state.search.record(candidate, state.searched(verdict))
    built = result.install.reused is False
    record.envs_built += int(built)
    record.verdicts[candidate] = verdict
    if result.fingerprint.get("torch_git_version"):
        record.git[candidate] = result.fingerprint["torch_git_version"]
    # What the test did ("xfailed": it failed, as the matrix expected), else the cell.
    shown = "/".join(t.outcome.value for t in result.tests_named(request.test))
    record.steps.append(
        BisectStep(candidate, verdict, shown or result.status.value, result.reason, built)
    )
    return verdict


def _conclude(state: _Search) -> int:
    """The boundary, what is odd about it, what changed there; saved."""
    request, record, search = state.request, state.record, state.search
    before, after, skipped = search.result()  # the boundary, older side first
    record.boundary = (before, after)
    # A fix search ran on flipped verdicts: name them as the user gave them.
    record.inconsistencies = (
        search.inconsistencies(good="bad", bad="good")
        if request.finds_fix
        else search.inconsistencies()
    )
    record.skipped, record.endpoints_hold = skipped, search.endpoints_hold
    if request.on == "snapshot":
        old, new = record.snapshots.get(before) or {}, record.snapshots.get(after) or {}
        record.snapshot_changes = [
            f"{test}: {change}"
            for test in new
            if test in old
            for change in diff_snapshots(old[test], new[test])
        ]
    git_before, git_after = record.git.get(before), record.git.get(after)
    record.compare = (
        COMPARE.format(older=git_before, newer=git_after) if git_before and git_after else None
    )
    if state.versions == "matrix" and record.endpoints_hold:
        _untried(state, before, after)
    record.save(state.state_path)
    return 0


def _untried(state: _Search, before: str, after: str) -> None:
    """``--versions matrix`` searched the matrix's versions only: the index's releases
    strictly between the boundary's two were never tried, and the answer holds for the
    matrix's versions only. Listing the index costs one page, no install."""
    request = dataclasses.replace(state.request, good=before, bad=after)  # listed in order
    try:
        between = find_candidates(request, state.matrix.channel(request.channel), state.pip_config)
    except UsageError as exc:
        state.record.untried, state.record.untried_note = None, str(exc)
        return
    low, high = sorted((Version(before), Version(after)))
    state.record.untried = [v for v in between if low < Version(v) < high]


def _untried_text(record: BisectRecord) -> str:
    """`` (last good 2.5.1; 2.6.0, 2.7.0 not tried: ...)``: what ``--versions matrix`` did
    not look at between the boundary's two versions."""
    (older_label, older), _ = record.ends
    holds = "the answer holds for the matrix's versions; drop --versions matrix to try them"
    if record.untried is None:
        return (
            f" ({older_label} {older}; the index's versions between were not listed "
            f"({record.untried_note}): the answer holds for the matrix's versions)"
        )
    if not record.untried:
        return f" ({older_label} {older}; no release of the index lies between)"
    return f" ({older_label} {older}; {', '.join(record.untried)} not tried: {holds})"


def render_bisect(record: BisectRecord) -> str:
    request = record.request
    n = len(record.candidates)
    bound = math.ceil(math.log2(n)) + 2
    fix = record.mode == "fix"
    on = " on its porting snapshot" if request.on == "snapshot" else ""
    lines = [
        f"bisect {request.test}{on} ({request.stack}, py{request.python}, "
        f"{request.channel}{', looking for the fix' if fix else ''}): {n} candidates "
        f"{record.candidates[0]} .. {record.candidates[-1]}"
    ]
    for number, step in enumerate(record.steps, 1):
        built = "built env" if step.env_built else "reused env"
        why = f": {step.reason}" if step.verdict is Verdict.SKIP and step.reason else ""
        lines.append(
            f"  step {number}: {step.candidate:<28} {step.verdict.value:<5} "
            f"({step.status}, {built}){why}"
        )
    if not record.endpoints_hold:
        good, bad = record.verdicts.get(request.good), record.verdicts.get(request.bad)
        lines.append(
            f"the ends do not hold: {request.good} should be good and is "
            f"{good.value if good else 'untried'}, {request.bad} should be bad and "
            f"is {bad.value if bad else 'untried'}"
        )
        return "\n".join(lines)
    git = record.git
    lines += [f"{label}: {version} (git {git.get(version, '?')})" for label, version in record.ends]
    if record.versions == "matrix":
        lines[-1] += _untried_text(record)
    if record.skipped:
        lines.append(
            f"skipped in between (could not install or import): {', '.join(record.skipped)}"
        )
    for note in record.inconsistencies:
        lines.append(f"warning: {note}")
    if request.on == "snapshot":
        lines.append("what the porting does differently there:")
        lines += [f"  {change}" for change in record.snapshot_changes or []]
    if record.compare:
        lines.append(record.compare)
    lines.append(
        f"environments built: {record.envs_built} "
        f"(bound ceil(log2({n})) + 2 = {bound}), steps: {len(record.steps)}"
    )
    return "\n".join(lines)
