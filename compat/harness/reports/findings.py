"""The lists under every grid: what a symbol cannot say (what failed how, what to retire).

Each list is drawn from the results, so the console, Markdown and HTML list the same
lines under the same titles; each renderer only lays them out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from packaging.version import InvalidVersion, Version

from compat.harness.reports.grid import LINE_TEXT, env_problems, fit, test_labels
from compat.harness.results.drift import Finding, cross_stack_drifts, drift_findings, drifts
from compat.harness.results.failures import exception_name, short_message, signature, user_frame
from compat.harness.results.model import CellResult, CellStatus, Outcome, TestResult

__all__ = [
    "DRIFT_LINES",
    "DRIFT_SHOWN",
    "DRIFT_TITLE",
    "IR_TITLE",
    "drift_lines",
    "drift_report",
    "failure_text",
    "findings",
    "not_applicable_evidence",
    "not_applicable_lines",
]

DRIFT_TITLE = (
    "Porting drift (the porting snapshot changed between neighbouring versions; not a failure)"
)
IR_TITLE = "IR changes only (op renames, graph order; no metadata changed by them)"
DRIFT_SHOWN = 10  # findings summary.md shows before "and N more"
# Lines of findings (headlines and their bisect commands) the console shows: with its title,
# "and N more" and the IR-only count the section stays within 12 lines, what a reader
# takes in at a glance; the rest is one flag (--drift-detail) away.
DRIFT_LINES = 9
DETAIL_HINT = "--drift-detail"


def drift_report(results: Sequence[CellResult]) -> list[Finding]:
    """Every drift finding of a run: along each stack's torch axis, then torch.ao against
    torchao at each torch both ran; metadata findings first, IR-only ones last."""
    return drift_findings([*drifts(results), *cross_stack_drifts(results)])


def _several_groups(found: Sequence[Finding]) -> bool:
    return len({f.group for f in found}) > 1


def finding_lines(finding: Finding, *, detail: bool, group: bool = False) -> list[str]:
    """A finding's headline, its bisect commands, and (``detail``) its nodes, indented."""
    lines = [finding.headline(group=group)]
    lines += [f"  bisect: {command}" for command in finding.bisect]
    if detail:
        lines += [f"  - {o.text()}" for o in finding.occurrences]
    return lines


def drift_lines(
    found: Sequence[Finding], *, detail: bool = False, budget: int | None = DRIFT_LINES
) -> list[str]:
    """The drift findings as text lines: the metadata findings whose lines fit in
    ``budget`` (``None``: all; a finding is never cut between its lines) then "and N more";
    IR-only findings (renames, order) as one count, in full with ``detail``. ``detail``
    also lists every node under its finding, and every finding."""
    group = _several_groups(found)
    metadata = [f for f in found if f.metadata]
    ir_only = [f for f in found if not f.metadata]
    lines: list[str] = []
    shown = 0
    for finding in metadata:
        more = finding_lines(finding, detail=detail, group=group)
        if not detail and budget is not None and len(lines) + len(more) > budget:
            break
        lines += more
        shown += 1
    if shown < len(metadata):
        lines.append(f"and {len(metadata) - shown} more ({DETAIL_HINT})")
    if ir_only and not detail:
        kinds = sorted({f.kind.value for f in ir_only})
        lines.append(
            f"{len(ir_only)} IR-only finding(s) ({', '.join(kinds)}; not metadata): {DETAIL_HINT}"
        )
    elif ir_only:
        lines += [f"{IR_TITLE}:"]
        lines += [
            f"  {line}" for f in ir_only for line in finding_lines(f, detail=True, group=group)
        ]
    return lines


def _first_failure(result: CellResult) -> TestResult | None:
    return next((t for t in result.tests if t.outcome.unexpected and t.message), None)


def failure_text(test: TestResult) -> str:
    """``myquant/quantizer.py:48 TypeError: 'NodeSource' object is not subscriptable``: the
    user's frame (when one is known), the exception and its message."""
    said = short_message(test.message)
    name = exception_name(test)
    if name and not said.startswith(name):
        said = f"{name}: {said}"
    where = test.where or user_frame(test.message)
    return f"{where} {said}" if where else said


def _span(members: Sequence[CellResult], results: Sequence[CellResult]) -> str:
    """``since torch 2.8.0`` when every cell of that torch or later that ran is among
    ``members``, else the versions (``on torch 2.5.1, 2.10.0``)."""
    versions = sorted({v for r in members if (v := _torch_of(r)) is not None})
    if not versions:
        return ""
    ran = [r for r in results if r.status is not CellStatus.NOT_APPLICABLE and r.tests]
    later = {r.cell_id for r in ran if (v := _torch_of(r)) is not None and v >= versions[0]}
    if len(versions) > 1 and later <= {r.cell_id for r in members}:
        return f" since torch {versions[0].public}"
    return " on torch " + ", ".join(v.public for v in versions)


def _problems(results: Sequence[CellResult]) -> list[str]:
    """Each cell that did not pass and where its first unexpected failure happened (the
    user's frame); cells that fail identically (same status, exception and frame) are one
    line (``3 cells since torch 2.8.0: myquant/q.py:48 TypeError: ...``)."""
    label = test_labels(results)
    failing = [r for r in results if r.status not in (CellStatus.PASSED, CellStatus.NOT_APPLICABLE)]
    groups: dict[tuple[str, str, str], list[CellResult]] = {}
    for result in failing:
        first = _first_failure(result)
        key = signature(first) if first is not None else None
        if key is not None:
            groups.setdefault((result.status.value, *key), []).append(result)
    lines = []
    said: set[str] = set()
    for result in failing:
        if result.cell_id in said:
            continue
        first = _first_failure(result)
        key = signature(first) if first is not None else None
        members = groups.get((result.status.value, *key), []) if key is not None else []
        if first is not None and len(members) > 1:
            said.update(r.cell_id for r in members)
            ids = ", ".join(r.cell_id for r in members)
            lines.append(
                f"{len(members)} cells{_span(members, results)}: {result.status.value}: "
                f"{failure_text(first)} ({label[first.nodeid]}; cells: {ids})"
            )
            continue
        line = f"{result.cell_id}: {result.status.value}: {result.reason or ''}".rstrip()
        if first is not None and first.nodeid not in (result.reason or ""):
            line += f" (first: {label[first.nodeid]}: {failure_text(first)})"
        elif first is not None and (where := first.where or user_frame(first.message)):
            line += f" (at {where})"
        lines.append(line)
    return lines


def not_applicable_lines(cells: Iterable[tuple[str, str]]) -> list[str]:
    """(cell id, reason) pairs grouped by reason: what a grid lists instead of n/a columns."""
    by_reason: dict[str, list[str]] = {}
    for cell_id, reason in cells:
        by_reason.setdefault(reason, []).append(cell_id)
    return [f"  {', '.join(ids)}: {reason}" for reason, ids in by_reason.items()]


def _torch_of(result: CellResult) -> Version | None:
    """The torch the cell really had (its fingerprint), else the one it asked for."""
    for text in (result.fingerprint.get("torch"), result.cell.torch):
        try:
            return Version(str(text))
        except InvalidVersion:
            continue
    return None


def _fixed(results: Sequence[CellResult]) -> list[str]:
    """Expected failures that pass: each names the expectation to retire, and the first
    torch of the run where it passes ("fixed upstream in 2.9.0")."""
    label = test_labels(results)
    first: dict[str, Version] = {}
    for r in results:
        version = _torch_of(r)
        for t in r.tests:
            if t.outcome is Outcome.XPASSED and version is not None:
                known = first.get(t.nodeid)
                first[t.nodeid] = version if known is None else min(known, version)
    return [
        f"{r.cell_id}: {label[t.nodeid]} passes"
        + (f" (fixed upstream in torch {first[t.nodeid].public})" if t.nodeid in first else "")
        + f"; retire the expectation ({t.expected_failure}): {t.expected_reason}"
        for r in results
        for t in r.tests
        if t.outcome is Outcome.XPASSED
    ]


def _differently(results: Sequence[CellResult]) -> list[str]:
    """Expected failures that failed some other way: expected and actual, side by side."""
    label = test_labels(results)
    lines = []
    for r in results:
        for t in r.tests:
            if t.outcome is Outcome.FAILED_DIFFERENTLY:
                got = failure_text(t)  # the user's frame, the exception, its message
                lines.append(
                    f"{r.cell_id}: {label[t.nodeid]}: expected {t.expected_failure}; got {got}"
                )
    return lines


def _env_problems(results: Sequence[CellResult]) -> list[str]:
    return [f"{r.cell_id}: {p}" for r in results for p in env_problems(r)]


def _adaptations(results: Sequence[CellResult]) -> list[str]:
    """Each way a shim departs from upstream's own call, with the cells that rest on it."""
    where: dict[tuple[str, str], list[str]] = {}
    for r in results:
        for key, how in r.adaptations.items():
            where.setdefault((key, how), []).append(r.cell_id)
    return [
        f"{key} ({len(ids)} cell(s): {', '.join(ids)}): {how}" for (key, how), ids in where.items()
    ]


def _flaky(results: Sequence[CellResult]) -> list[str]:
    """Tests that failed and then passed: not a gate failure, never silent."""
    label = test_labels(results)
    return [
        f"{r.cell_id}: {label[t.nodeid]} passed after {t.reruns} failed attempt(s)"
        for r in results
        for t in r.tests
        if t.outcome is Outcome.FLAKY
    ]


def _reruns(results: Sequence[CellResult]) -> list[str]:
    """One copy-paste command per failing cell (``rerun_command`` in its result)."""
    return [f"{r.cell_id}: {r.rerun_command}" for r in results if r.rerun_command]


def not_applicable_evidence(result: CellResult) -> str:
    """``claim [source] (confirmed: ...)``: what an n/a rule rests on and how it was checked."""
    ev = result.applicability
    if ev is None:
        return ""
    verdict = ev.check_verdict if ev.check_verdict is not None else "unchecked"
    return f"{ev.claim or ''} [{ev.source or ''}] ({verdict}: {ev.check_detail or ''})"


def findings(results: Sequence[CellResult]) -> list[tuple[str, list[str]]]:
    """The lists under every grid, in reading order: (title, lines); empty ones omitted.
    Porting drift is not among them: each renderer lays it out (:func:`drift_report`)."""
    sections = [
        (
            "Failed differently than expected (a new failure behind a known one)",
            _differently(results),
        ),
        ("Fixed (an expected failure passes: retire its expectation)", _fixed(results)),
        ("Environment broken for some tests (warning at import torch)", _env_problems(results)),
        ("Adaptations (where the shims depart from upstream's own call)", _adaptations(results)),
        ("Flaky (failed, then passed on a rerun)", _flaky(results)),
        ("Cells not passing", _problems(results)),
        ("Rerun the first failing test alone in its cell's env", _reruns(results)),
    ]
    return [(title, [fit(line, LINE_TEXT) for line in lines]) for title, lines in sections if lines]
