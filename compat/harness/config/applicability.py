"""Which (python, torch, torchao, stack) combinations are worth running, and why not.

Two kinds of rule. A *hard* rule says a cell cannot work at all (no wheel, an import
that fails); a *soft* rule says the pairing is one its own authors do not support
(torchao pt2e below torch 2.7), so a grid of it would be noise: a user who wants it
anyway names the cell in an ``[[include]]``. Every rule carries its evidence
(``docs/version-landscape.md``) and, where a file in a wheel decides it, a probe the
harness checks in any installed env (:mod:`compat.harness.config.evidence`). Versions newer
than the newest known release inherit the newest known rule, so a nightly is tried
rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from packaging.version import InvalidVersion, Version

from compat.harness.config.evidence import CONTRADICTED, Evidence, FileProbe, confirm

__all__ = [
    "STACKS",
    "CheckedRule",
    "NotApplicable",
    "checked_rule",
    "not_applicable",
    "not_applicable_reason",
]

STACKS = ("torch.ao", "torchao")
LANDSCAPE = "docs/version-landscape.md"

Minor = tuple[int, int]


@dataclass(frozen=True)
class NotApplicable:
    reason: str
    evidence: Evidence


@dataclass(frozen=True)
class CheckedRule:
    """A rule that rules a cell out, its evidence, and that evidence checked against the
    installed envs: a not-applicable result's ``applicability``. Every field is optional
    (``None``: not recorded) because a result file's record is read back as it was written."""

    rule: str | None = None  # the reason
    claim: str | None = None
    source: str | None = None
    probe: str | None = None  # the file probe, described
    check_verdict: str | None = None  # CONFIRMED, CONTRADICTED or UNCHECKED
    check_detail: str | None = None

    @property
    def contradicted(self) -> bool:
        """An installed env holds what the rule says cannot be: the rule is wrong."""
        return self.check_verdict == CONTRADICTED

    def to_dict(self) -> dict[str, str]:
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> CheckedRule:
        """From a result file's map of strings (checked by its reader); unknown keys are
        ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _minor(text: str) -> Minor | None:
    try:
        release = Version(text).release
    except InvalidVersion:
        return None
    return (release[0], release[1] if len(release) > 1 else 0)


# CPython minor -> torch minors with a Linux x86_64 wheel for it (the default index).
_PYTHON_WHEELS: dict[Minor, tuple[Minor, Minor | None]] = {
    (3, 8): ((2, 0), (2, 4)),
    (3, 9): ((2, 0), (2, 8)),
    (3, 10): ((2, 0), (2, 14)),
    (3, 11): ((2, 0), None),
    (3, 12): ((2, 2), None),
    (3, 13): ((2, 5), None),
    (3, 14): ((2, 9), None),
}


def _python_rule(python: str, torch: str) -> NotApplicable | None:
    py, tv = _minor(python), _minor(torch)
    window = _PYTHON_WHEELS.get(py) if py else None
    if tv is None or window is None:
        return None
    first, last = window
    if tv >= first and (last is None or tv <= last):
        return None
    return NotApplicable(
        f"torch {torch} has no wheel for CPython {python}",
        Evidence(
            f"no cp{python.replace('.', '')} Linux x86_64 wheel of torch {tv[0]}.{tv[1]}",
            f"{LANDSCAPE} (the default index's torch file listing)",
        ),
    )


def _torch_ao_rule(torch: str) -> NotApplicable | None:
    tv = _minor(torch)
    if tv is None:
        return None
    probe = FileProbe("torch", torch, "torch/ao/quantization/quantize_pt2e.py", present=False)
    if tv < (2, 1):
        return NotApplicable(
            "torch.ao pt2e with a Quantizer starts in torch 2.1 (2.0 has only _quantize_pt2e)",
            Evidence("torch 2.0 has no torch/ao/quantization/quantize_pt2e.py", LANDSCAPE, probe),
        )
    if tv > (2, 10):
        return NotApplicable(
            "torch.ao pt2e was removed in torch 2.11 (no torch/ao/quantization/quantize_pt2e.py)",
            Evidence(
                "torch >= 2.11 has no torch/ao/quantization/quantize_pt2e.py", LANDSCAPE, probe
            ),
        )
    return None


_NODE_SOURCE = "class NodeSource"
_FOLD_GATE = r"""torch_version_at_least\(\s*["']2\.7|TORCH_VERSION_AT_LEAST_2_7"""
_CONVERT = "torchao/quantization/pt2e/quantize_pt2e.py"


def _torchao_hard_rule(torch: str, torchao: str) -> NotApplicable | None:
    """Pairs in which torchao's pt2e cannot even be imported."""
    tv, av = _minor(torch), _minor(torchao)
    if tv is None or av is None:
        return None
    minor = av[1] if av[0] == 0 else 99  # a torchao 1.x inherits the newest rules
    if av < (0, 11):
        return NotApplicable(
            f"torchao {torchao} has no pt2e (torchao.quantization.pt2e starts in 0.11)",
            Evidence(
                "torchao < 0.11 has no torchao/quantization/pt2e/",
                LANDSCAPE,
                FileProbe("torchao", torchao, _CONVERT, present=False),
            ),
        )
    if minor in (11, 12) and tv < (2, 3):
        return NotApplicable(
            f"torchao 0.{minor} pt2e was not checked below torch 2.3",
            Evidence(f"torchao 0.{minor} was measured on torch 2.3 and up", LANDSCAPE),
        )
    if 13 <= minor <= 17 and tv < (2, 6):
        return NotApplicable(
            f"torchao 0.{minor} imports torch.fx.traceback.NodeSource (torch >= 2.6)",
            Evidence(
                f"torch {torch} has no NodeSource in torch/fx/traceback.py",
                LANDSCAPE,
                FileProbe("torch", torch, "torch/fx/traceback.py", _NODE_SOURCE, present=False),
            ),
        )
    if minor >= 18 and tv < (2, 7):
        return NotApplicable(
            f"torchao 0.{minor} imports torch._inductor.freezing_utils (torch >= 2.7)",
            Evidence(
                f"torch {torch} has no torch/_inductor/freezing_utils.py",
                LANDSCAPE,
                FileProbe("torch", torch, "torch/_inductor/freezing_utils.py", present=False),
            ),
        )
    if 12 <= minor <= 15 and tv >= (2, 11):
        return NotApplicable(
            f"torchao 0.{minor} raises AttributeError at import on torch >= 2.11",
            Evidence(
                f"importing torchao 0.{minor}'s pt2e on torch 2.11 raised AttributeError",
                f"{LANDSCAPE} (measured)",
            ),
        )
    return None


def _torchao_soft_rule(torch: str, torchao: str) -> NotApplicable | None:
    """Pairs torchao itself does not support for pt2e: torch below 2.7."""
    tv, av = _minor(torch), _minor(torchao)
    if tv is None or av is None or av[0] != 0 or not 11 <= av[1] <= 17 or tv >= (2, 7):
        return None
    return NotApplicable(
        "torchao's own pt2e tests require torch 2.7; convert folds only from 2.7 "
        "(declare the cell in an [[include]] to run it anyway)",
        Evidence(
            f"torchao {torchao}'s convert_pt2e gates fold_quantize on torch >= 2.7, and "
            "its test_metadata_porting.py is skipped below torch 2.7",
            f"{LANDSCAPE}; docs/upstream-test-at-tags.md",
            FileProbe("torchao", torchao, _CONVERT, _FOLD_GATE),
        ),
    )


def not_applicable(
    *, python: str, torch: str, stack: str, torchao: str | None, declared: bool = False
) -> NotApplicable | None:
    """Why this cell is not worth running, with the evidence; ``None`` when it is.

    ``declared`` (an ``[[include]]``) overrides the soft rules, never the hard ones.
    Unparseable versions (a nightly still to be resolved) are never ruled out here.
    """
    found = _python_rule(python, torch)
    if found is not None:
        return found
    if stack == "torch.ao":
        if torchao is not None:
            return NotApplicable(
                "the torch.ao stack does not use torchao; pair torchao with the torchao stack",
                Evidence("a matrix error, not a fact about wheels", "matrix.toml"),
            )
        return _torch_ao_rule(torch)
    if stack != "torchao":
        return NotApplicable(
            f"unknown pt2e stack {stack!r}",
            Evidence(f"stacks are {', '.join(STACKS)}", "matrix.toml"),
        )
    if torchao is None:
        return NotApplicable(
            "the torchao stack needs a torchao version",
            Evidence("a matrix error, not a fact about wheels", "matrix.toml"),
        )
    found = _torchao_hard_rule(torch, torchao)
    if found is not None or declared:
        return found
    return _torchao_soft_rule(torch, torchao)


def not_applicable_reason(
    *, python: str, torch: str, stack: str, torchao: str | None, declared: bool = False
) -> str | None:
    """The reason alone (the planner keeps it on the cell)."""
    found = not_applicable(
        python=python, torch=torch, stack=stack, torchao=torchao, declared=declared
    )
    return found.reason if found else None


def checked_rule(
    *, python: str, torch: str, stack: str, torchao: str | None, declared: bool, envs_root: Path
) -> CheckedRule | None:
    """The rule that rules a cell out, and its evidence checked against ``envs_root``'s envs
    (confirmed, contradicted or unchecked), as the result records it."""
    rule = not_applicable(
        python=python, torch=torch, stack=stack, torchao=torchao, declared=declared
    )
    if rule is None:
        return None
    check = confirm(rule.evidence, envs_root)
    evidence = rule.evidence
    return CheckedRule(
        rule.reason,
        evidence.claim,
        evidence.source,
        evidence.probe.describe() if evidence.probe else None,
        check.verdict,
        check.detail,
    )
