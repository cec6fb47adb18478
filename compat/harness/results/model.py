"""The results model: what one cell did, and how it travels as JSON.

A :class:`CellResult` is built from evidence only (the install record, the events the
plugin streamed, the exit code or signal, the clock; see :mod:`.classify`) and
round-trips through ``to_dict``/``from_dict`` so that a CI shard's cell folder merges
like a local one. Its JSON form is described by ``results.schema.json`` beside this file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from compat.harness.errors import ResultFileError
from compat.harness.files import atomic_write_text
from compat.harness.redact import redact

__all__ = ["SCHEMA_VERSION", "CellResult", "CellStatus", "Outcome", "TestResult"]

SCHEMA_VERSION = 1


class CellStatus(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    INSTALL_FAILED = "install-failed"
    IMPORT_FAILED = "import-failed"
    CRASHED = "crashed"
    TIMED_OUT = "timed-out"
    NOT_APPLICABLE = "not-applicable"
    SKIPPED = "skipped"
    NOT_RUN = "not-run"

    @property
    def unexpected(self) -> bool:
        """Counts against the gate (when the cell is gating)."""
        return self in _UNEXPECTED

    @property
    def infrastructure(self) -> bool:
        """No verdict for reasons outside the code under test (no install, no result)."""
        return self in (CellStatus.INSTALL_FAILED, CellStatus.NOT_RUN)


_UNEXPECTED = frozenset(
    {CellStatus.FAILED, CellStatus.ERROR, CellStatus.IMPORT_FAILED, CellStatus.CRASHED,
     CellStatus.TIMED_OUT}
)


class Outcome(str, Enum):
    """One test in one cell, after expectations are applied."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    XFAILED = "xfailed"  # failed, and the matrix or the test said it would
    XPASSED = "xpassed"  # expected to fail, passed: reported as fixed
    FAILED_DIFFERENTLY = "failed-differently"  # expected to fail, failed some other way
    FLAKY = "flaky"  # failed, then passed on a rerun (``reruns`` in matrix.toml)
    NOT_RUN = "not-run"  # the cell died before reaching it

    @property
    def unexpected(self) -> bool:
        return self in (Outcome.FAILED, Outcome.ERROR, Outcome.FAILED_DIFFERENTLY)

    @property
    def passing(self) -> bool:
        """The test passed, whatever the matrix expected (bisect and history judge by this)."""
        return self in (Outcome.PASSED, Outcome.XPASSED)

    @property
    def failing(self) -> bool:
        """The test failed, whatever the matrix expected; flaky, skipped, not run: neither."""
        return self in (Outcome.FAILED, Outcome.ERROR, Outcome.XFAILED,
                        Outcome.FAILED_DIFFERENTLY)


@dataclass
class TestResult:
    nodeid: str
    outcome: Outcome
    duration: float = 0.0
    message: str | None = None
    expected_reason: str | None = None  # set when an expectation matched
    reruns: int = 0  # failed attempts before the last one
    expected_failure: str | None = None  # how the expectation said it fails (raises/match)
    exc_types: list[str] = field(default_factory=list)  # the failure's exception and its bases
    # Porting snapshots by stage (``compat.shims.snapshot``): what the porting produced.
    snapshots: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class CellResult:
    """Everything the report needs to know about one cell."""

    cell_id: str
    cell: dict[str, Any]
    status: CellStatus
    reason: str | None = None
    gating: bool = True
    tests: list[TestResult] = field(default_factory=list)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    install: dict[str, Any] = field(default_factory=dict)
    adaptations: dict[str, str] = field(default_factory=dict)  # route -> how it departs upstream
    applicability: dict[str, str] = field(default_factory=dict)  # an n/a rule and its evidence
    timings: dict[str, float] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    returncode: int | None = None
    log_excerpt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = SCHEMA_VERSION
        data["status"] = self.status.value
        for test in data["tests"]:
            test["outcome"] = test["outcome"].value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellResult:
        if not isinstance(data, Mapping):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        schema = data.get("schema")
        if schema != SCHEMA_VERSION:
            raise ValueError(f"result schema {schema!r}, this harness reads {SCHEMA_VERSION}")
        fields = dict(data)
        fields.pop("schema")
        fields["status"] = CellStatus(fields["status"])
        fields["tests"] = [
            TestResult(**{**t, "outcome": Outcome(t["outcome"])}) for t in fields.get("tests", [])
        ]
        return cls(**fields)

    def tests_named(self, test: str) -> list[TestResult]:
        """The results of ``test``: a node id, or a bare test name (every parametrization)."""
        return [t for t in self.tests if t.nodeid == test or t.nodeid.rsplit("::", 1)[-1] == test]

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for test in self.tests:
            totals[test.outcome.value] = totals.get(test.outcome.value, 0) + 1
        return totals

    @classmethod
    def read(cls, path: Path) -> CellResult:
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ResultFileError(path, "missing") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultFileError(path, f"unreadable or truncated ({exc})") from None
        except (KeyError, TypeError, ValueError) as exc:
            message = f"not a cell result ({type(exc).__name__}: {exc})"
            raise ResultFileError(path, message) from None

    def write(self, path: Path) -> None:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        atomic_write_text(path, redact(text))
