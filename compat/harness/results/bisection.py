"""First bad version by binary search, with mozregression's good / bad / skip verdicts.

The search is pure: it proposes a candidate, is told a verdict, and narrows. A skip (the
candidate would not install or import) is never evaluated again, and the nearest
untried neighbour of the midpoint is tried instead. Verdicts are data, so a search
resumes from any saved set of them and a test can script them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Bisection", "Verdict"]


class Verdict(str, Enum):
    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"


@dataclass
class Bisection:
    """Candidates in order, oldest first; the first is assumed good, the last bad."""

    candidates: Sequence[str]
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.candidates) < 2:
            raise ValueError("need at least a good and a bad candidate")
        self.verdicts = {k: Verdict(v) for k, v in self.verdicts.items()}

    @classmethod
    def resume(cls, candidates: Sequence[str], saved: Mapping[str, str]) -> Bisection:
        return cls(candidates, {k: Verdict(v) for k, v in saved.items() if k in candidates})

    def record(self, candidate: str, verdict: Verdict) -> None:
        self.verdicts[candidate] = verdict

    def _bounds(self) -> tuple[int, int]:
        """Index of the newest good before the oldest bad, and of that bad."""
        bads = [i for i, c in enumerate(self.candidates) if self.verdicts.get(c) is Verdict.BAD]
        hi = bads[0] if bads else len(self.candidates) - 1
        goods = [
            i for i, c in enumerate(self.candidates[:hi]) if self.verdicts.get(c) is Verdict.GOOD
        ]
        lo = goods[-1] if goods else 0
        return lo, hi

    def endpoints_pending(self) -> list[str]:
        """The good and bad ends must be confirmed first (they give the git range too)."""
        return [c for c in (self.candidates[0], self.candidates[-1]) if c not in self.verdicts]

    def next_candidate(self) -> str | None:
        """What to try next, or None when the boundary is found (or only skips remain)."""
        pending = self.endpoints_pending()
        if pending:
            return pending[0]
        lo, hi = self._bounds()
        inside = list(range(lo + 1, hi))
        untried = [i for i in inside if self.candidates[i] not in self.verdicts]
        if not untried:
            return None
        mid = (lo + hi) // 2
        return self.candidates[min(untried, key=lambda i: (abs(i - mid), i))]

    @property
    def endpoints_hold(self) -> bool:
        first, last = self.candidates[0], self.candidates[-1]
        return self.verdicts.get(first) is Verdict.GOOD and self.verdicts.get(last) is Verdict.BAD

    def result(self) -> tuple[str, str, list[str]]:
        """(last good, first bad, skipped candidates between them)."""
        lo, hi = self._bounds()
        between = [c for c in self.candidates[lo + 1 : hi] if self.verdicts.get(c) is Verdict.SKIP]
        return self.candidates[lo], self.candidates[hi], between

    def inconsistencies(self, good: str = "good", bad: str = "bad") -> list[str]:
        """Goods found after a bad: the behaviour flipped back (flaky or not monotonic).

        ``good`` / ``bad`` name the two verdicts in the message (a fix search swaps them).
        """
        seen_bad: str | None = None
        found = []
        for candidate in self.candidates:
            verdict = self.verdicts.get(candidate)
            if verdict is Verdict.BAD and seen_bad is None:
                seen_bad = candidate
            elif verdict is Verdict.GOOD and seen_bad is not None:
                found.append(f"{candidate} is {good} although {seen_bad} before it is {bad}")
        return found
