"""Release qualification: a candidate torch against a reference, column by column.

For every (stack, Python) the matrix declares, the candidate's cell is compared with the
reference's: a test that passes on the reference and fails on the candidate (failed
differently included) is a regression, the reverse a fix, and the porting snapshots
are diffed node by node. One verdict comes out, with the exit code a release pipeline
gates on: 0 QUALIFIED, 1 NOT QUALIFIED, 3 no verdict (a column could not be installed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from compat.harness.results.drift import (
    ChangeKind,
    Drift,
    NodeChange,
    drift_findings,
    node_changes,
    pair_drifts,
)
from compat.harness.results.gate import EXIT_INFRA, EXIT_OK, EXIT_UNEXPECTED
from compat.harness.results.model import CellResult, CellStatus

__all__ = ["NOT_QUALIFIED", "NO_VERDICT", "QUALIFIED", "Column", "Qualification", "qualify"]

QUALIFIED, NOT_QUALIFIED, NO_VERDICT = "QUALIFIED", "NOT QUALIFIED", "NO VERDICT"


def _loses_tag(change: NodeChange) -> bool:
    """A tag the reference's porting produced that the candidate's does not."""
    if change.kind is ChangeKind.TAG_LOST:
        return True
    return change.kind is ChangeKind.NODE_REMOVED and change.before not in (None, "", "none")


@dataclass(frozen=True)
class Column:
    """One (stack, python) pair: the reference cell and the candidate cell."""

    label: str  # "torch.ao py3.11"
    reference: CellResult
    candidate: CellResult


@dataclass
class Qualification:
    candidate: str
    reference: str
    verdict: str = QUALIFIED
    exit_code: int = EXIT_OK
    regressions: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    lost_tags: list[str] = field(default_factory=list)
    infrastructure: list[str] = field(default_factory=list)
    candidate_problems: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _name(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1]


def _outcomes(result: CellResult) -> dict[str, Any]:
    return {_name(t.nodeid): t for t in result.tests}


def qualify(columns: Sequence[Column], *, candidate: str, reference: str) -> Qualification:
    """Compare each column's candidate with its reference; the verdict and its evidence."""
    q = Qualification(candidate, reference, columns=[c.label for c in columns])
    changed: list[Drift] = []
    for column in columns:
        ref, cand = column.reference, column.candidate
        for side, result in (("reference", ref), ("candidate", cand)):
            if result.status.infrastructure or result.status is CellStatus.SKIPPED:
                q.infrastructure.append(
                    f"{column.label}: {side} {result.cell_id}: "
                    f"{result.status.value}: {result.reason or ''}"
                )
        if cand.status.unexpected:
            q.candidate_problems.append(
                f"{column.label}: {cand.cell_id}: {cand.status.value}: {cand.reason or ''}"
            )
        before, after = _outcomes(ref), _outcomes(cand)
        for test in dict.fromkeys([*before, *after]):
            old, new = before.get(test), after.get(test)
            if (
                new is not None
                and new.outcome.unexpected
                and (old is None or old.outcome.passing or not old.outcome.unexpected)
            ):
                was = old.outcome.value if old else "absent"
                q.regressions.append(f"{column.label}: {test}: {was} -> {new.outcome.value}")
            elif (
                old is not None and new is not None and old.outcome.failing and new.outcome.passing
            ):
                q.fixes.append(
                    f"{column.label}: {test}: {old.outcome.value} -> {new.outcome.value}"
                )
            if (
                old is not None
                and new is not None
                and old.snapshots
                and new.snapshots
                and old.snapshots != new.snapshots
            ):
                for change in node_changes(old.snapshots, new.snapshots):
                    if _loses_tag(change):
                        q.lost_tags.append(
                            f"{column.label}: {test}: {change.kind.value}: {change.text()}"
                        )
        changed += pair_drifts(ref, cand)
    # What changed in metadata: the run report's findings (one per kind, merged over tests
    # and columns); an op the IR renamed or a node that only moved is left out here.
    q.drift = [f.headline() for f in drift_findings(changed) if f.metadata]
    if q.regressions or q.candidate_problems:
        q.verdict, q.exit_code = NOT_QUALIFIED, EXIT_UNEXPECTED
    elif q.infrastructure or not columns:
        q.verdict, q.exit_code = NO_VERDICT, EXIT_INFRA
    return q
