"""The results model: what one cell did, and how it travels as JSON.

A :class:`CellResult` is built from evidence only (the install record, the events the
plugin streamed, the exit code or signal, the clock; see :mod:`.classify`) and
round-trips through ``to_dict``/``from_dict`` so that a CI shard's cell folder merges
like a local one. Its JSON form is described by ``results.schema.json`` beside this file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from compat.harness.config.applicability import CheckedRule
from compat.harness.config.matrix import Cell
from compat.harness.errors import ResultFileError
from compat.harness.files import atomic_write_text, read_text_file
from compat.harness.redact import redact

__all__ = [
    "SCHEMA_VERSION",
    "CellResult",
    "CellStatus",
    "DiskUsage",
    "InstallRecord",
    "ListedBuild",
    "Outcome",
    "PlanRecord",
    "ResolutionRecord",
    "TestResult",
    "WheelRecord",
    "is_safe_id",
]

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
    {
        CellStatus.FAILED,
        CellStatus.ERROR,
        CellStatus.IMPORT_FAILED,
        CellStatus.CRASHED,
        CellStatus.TIMED_OUT,
    }
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
        return self in (Outcome.FAILED, Outcome.ERROR, Outcome.XFAILED, Outcome.FAILED_DIFFERENTLY)


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
    # Reused from the verdict cache, not run: "from run <id>, <date>" (``compat.harness.cache``)
    cached: str | None = None
    # The deepest frame of the failure inside the user's tree (``pkg/mod.py:48``).
    where: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready. Nested containers are the result's own, not copies (serialise the
        dict, do not edit it): deep-copying every porting snapshot made the documents of an
        all-cached rerun of the default matrix take twice as long."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["outcome"] = self.outcome.value
        return data


# --- the install record ---------------------------------------------------------------------
# What ``install`` in a result file holds, built by the cell runner from the install stage's
# plan, resolution and env record (results cannot import install: they are siblings). Every
# key is optional in a result file (an install that failed early records little), so every
# field is: ``None`` is "not recorded", and a key that was not recorded is not written.


def _present(record: object) -> dict[str, Any]:
    """The fields of a dataclass record that were recorded (not ``None``)."""
    return {
        f.name: value
        for f in fields(record)  # type: ignore[arg-type]
        if (value := getattr(record, f.name)) is not None
    }


@dataclass
class DiskUsage:
    """The env's size: apparent, and its own files (not hardlinked from uv's cache)."""

    apparent_bytes: int | None = None
    own_bytes: int | None = None
    bytecode_bytes: int | None = None  # what the cell's runs compiled (part of own_bytes)

    def to_dict(self) -> dict[str, int]:
        return _present(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiskUsage:
        _need_map(data, _NUMBER, "install.disk")
        return cls(
            **{k: _whole(v, f"install.disk.{k}") for k, v in data.items() if k in _fields(cls)}
        )


@dataclass
class WheelRecord:
    """The wheel of torch (or torchao) in the env, as the lock named it."""

    version: str | None = None
    file: str | None = None
    sha256: str | None = None
    url: str | None = None
    index: str | None = None
    size: str | None = None
    sha256_source: str | None = None  # set when the index gave no digest and one was computed

    def to_dict(self) -> dict[str, str]:
        return _present(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> WheelRecord:
        return cls(**_strings(data, cls, where))


@dataclass
class PlanRecord:
    """The install plan the env was built from (``install.install_plan.InstallPlan``)."""

    cell_id: str | None = None
    python: str | None = None
    requirements: list[str] = field(default_factory=list)
    index_args: list[str] = field(default_factory=list)
    env_dir: str | None = None
    source_args: list[str] = field(default_factory=list)
    deps_cutoff: str | None = None  # deps-as-of: the time other packages were resolved as of
    cutoff_args: list[str] = field(default_factory=list)
    key: str | None = None
    project_digest: str | None = None  # install-project: the project's build files' digest

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanRecord:
        _need(data, (dict,), "install.plan")
        known = {k: v for k, v in data.items() if k in _fields(cls)}
        for key, value in known.items():
            if key in ("requirements", "index_args", "source_args", "cutoff_args"):
                _need_list(value, _STR, f"install.plan.{key}")
            else:
                _need(value, _OPT_STR, f"install.plan.{key}")
        return cls(**known)


@dataclass
class ListedBuild:
    """A nightly build as the channel's listing named it (``install.nightly.Resolution``)."""

    version: str | None = None
    filename: str | None = None
    url: str | None = None
    sha256: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> ListedBuild:
        return cls(**_strings(data, cls, where))


@dataclass
class ResolutionRecord:
    """What the cell's request resolved to before installing (a nightly spec, notes)."""

    torch: str | None = None
    torchao: str | None = None
    notes: list[str] = field(default_factory=list)
    listing: dict[str, ListedBuild] = field(default_factory=dict)  # project -> nightly build

    def to_dict(self) -> dict[str, Any]:
        return {
            "torch": self.torch,
            "torchao": self.torchao,
            "notes": list(self.notes),
            "listing": {k: v.to_dict() for k, v in self.listing.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResolutionRecord:
        where = "install.resolution"
        _need(data, (dict,), where)
        _need(data.get("torch"), _OPT_STR, f"{where}.torch")
        _need(data.get("torchao"), _OPT_STR, f"{where}.torchao")
        _need_list(data.get("notes", []), _STR, f"{where}.notes")
        _need_map(data.get("listing", {}), (dict,), f"{where}.listing")
        return cls(
            data.get("torch"),
            data.get("torchao"),
            list(data.get("notes", [])),
            {
                k: ListedBuild.from_dict(v, f"{where}.listing.{k}")
                for k, v in data.get("listing", {}).items()
            },
        )


@dataclass
class InstallRecord:
    """How the cell's env came to be: the plan, the resolution, the env (built or reused),
    or why not (``error_kind``)."""

    plan: PlanRecord | None = None
    resolution: ResolutionRecord | None = None
    error_kind: str | None = None  # the install failed (no-such-version, no-interpreter...)
    python: str | None = None  # the env's interpreter
    reused: bool | None = None  # False: built for this run
    seconds: float | None = None
    key: str | None = None
    freeze: list[str] | None = None  # ``uv pip freeze`` of the env
    uv_version: str | None = None
    interpreter: str | None = None  # the CPython the env was made from
    wheels: dict[str, WheelRecord] | None = None  # project -> its wheel
    disk: DiskUsage | None = None

    def to_dict(self) -> dict[str, Any]:
        data = _present(self)
        for key in ("plan", "resolution", "disk"):
            if key in data:
                data[key] = data[key].to_dict()
        if self.wheels is not None:
            data["wheels"] = {k: v.to_dict() for k, v in self.wheels.items()}
        if self.freeze is not None:
            data["freeze"] = list(self.freeze)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstallRecord:
        """From a result file's ``install``; keys this harness does not know are ignored."""
        _need(data, (dict,), "install")
        for key, (check, kinds) in _INSTALL.items():
            if key in data:
                check(data[key], kinds, f"install.{key}")
        get = data.get
        return cls(
            plan=PlanRecord.from_dict(get("plan")) if get("plan") is not None else None,
            resolution=(
                ResolutionRecord.from_dict(get("resolution"))
                if get("resolution") is not None
                else None
            ),
            error_kind=get("error_kind"),
            python=get("python"),
            reused=get("reused"),
            seconds=get("seconds"),
            key=get("key"),
            freeze=list(get("freeze")) if get("freeze") is not None else None,
            uv_version=get("uv_version"),
            interpreter=get("interpreter"),
            wheels=(
                {
                    k: WheelRecord.from_dict(v, f"install.wheels.{k}")
                    for k, v in get("wheels").items()
                }
                if get("wheels") is not None
                else None
            ),
            disk=DiskUsage.from_dict(get("disk")) if get("disk") is not None else None,
        )


@dataclass
class CellResult:
    """Everything the report needs to know about one cell."""

    cell_id: str
    cell: Cell
    status: CellStatus
    reason: str | None = None
    gating: bool = True
    tests: list[TestResult] = field(default_factory=list)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    install: InstallRecord = field(default_factory=InstallRecord)
    adaptations: dict[str, str] = field(default_factory=dict)  # route -> how it departs upstream
    applicability: CheckedRule | None = None  # a not-applicable cell's rule and its evidence
    timings: dict[str, float] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    returncode: int | None = None
    log_excerpt: str | None = None
    # How the tests shared processes ("file": one per test file; "cell": one pytest), the
    # test files the cell ran (node ids), those of suites written for other cells, how each
    # file's process ended, the pytest options the user passed through, and the command
    # that reruns the first failing test alone in this cell's env.
    isolation: str | None = None
    files: list[str] = field(default_factory=list)
    out_of_scope: list[str] = field(default_factory=list)
    file_runs: list[dict[str, Any]] = field(default_factory=list)
    pytest_args: list[str] = field(default_factory=list)
    rerun_command: str | None = None
    # The verdict cache: each test file's key parts, and whether it was reused or why it ran.
    cache: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; shares nested containers like :meth:`TestResult.to_dict`."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(
            schema=SCHEMA_VERSION,
            cell=self.cell.to_dict(),
            status=self.status.value,
            tests=[t.to_dict() for t in self.tests],
            install=self.install.to_dict(),
            applicability=self.applicability.to_dict() if self.applicability else {},
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellResult:
        """A result as written by :meth:`to_dict`; anything else (a missing field, a value of
        the wrong type, an unsafe cell id) is a ``TypeError``/``ValueError``, never a result
        that breaks a report later."""
        if not isinstance(data, Mapping):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        schema = data.get("schema")
        if schema != SCHEMA_VERSION:
            raise ValueError(f"result schema {_show(schema)}, this harness reads {SCHEMA_VERSION}")
        given = dict(data)
        given.pop("schema")
        _check_fields(given)
        given["cell"] = Cell.from_dict(given["cell"])
        given["status"] = CellStatus(given["status"])
        given["tests"] = [
            TestResult(**{**t, "outcome": Outcome(t["outcome"])}) for t in given.get("tests", [])
        ]
        if "install" in given:
            given["install"] = InstallRecord.from_dict(given["install"])
        if "applicability" in given:
            found = given["applicability"]
            given["applicability"] = CheckedRule.from_dict(found) if found else None
        return cls(**given)

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
            return cls.from_dict(json.loads(read_text_file(path)))
        except FileNotFoundError:
            raise ResultFileError(path, "missing") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultFileError(path, f"unreadable or truncated ({exc})") from None
        except RecursionError:
            raise ResultFileError(path, "not a cell result (nested too deeply)") from None
        except (KeyError, TypeError, ValueError) as exc:
            message = f"not a cell result ({type(exc).__name__}: {exc})"
            raise ResultFileError(path, message) from None

    def write(self, path: Path) -> None:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        atomic_write_text(path, redact(text))


# --- what a result file must hold ----------------------------------------------------------

_STR, _OPT_STR = (str,), (str, type(None))
_NUMBER = (int, float)


def _show(value: object) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    text = redact(text)  # before the cut: a cut URL keeps its password
    return text if len(text) <= 40 else text[:37] + "..."


def _need(value: object, kinds: tuple[type, ...], where: str) -> None:
    if isinstance(value, bool) and bool not in kinds:
        raise TypeError(f"{where}: expected {'/'.join(k.__name__ for k in kinds)}, got bool")
    if not isinstance(value, kinds):
        raise TypeError(
            f"{where}: expected {'/'.join(k.__name__ for k in kinds)}, got {type(value).__name__}"
        )


def _need_map(value: object, kinds: tuple[type, ...], where: str) -> None:
    _need(value, (dict,), where)
    for key, item in value.items():  # type: ignore[attr-defined]
        _need(item, kinds, f"{where}.{key}")


def _need_list(value: object, kinds: tuple[type, ...], where: str) -> None:
    _need(value, (list,), where)
    for item in value:  # type: ignore[attr-defined]
        _need(item, kinds, where)


# Optional fields and the types their values (or items) must have; what the reports read.
_OPTIONAL: dict[str, tuple[Any, tuple[type, ...]]] = {
    "reason": (_need, _OPT_STR),
    "gating": (_need, (bool,)),
    "tests": (_need, (list,)),
    "fingerprint": (_need, (dict,)),
    "routes": (_need_map, _STR),
    "warnings": (_need_list, _STR),
    "install": (_need, (dict,)),
    "adaptations": (_need_map, _STR),
    "applicability": (_need_map, _STR),
    "timings": (_need_map, _NUMBER),
    "command": (_need_list, _STR),
    "returncode": (_need, (int, type(None))),
    "log_excerpt": (_need, _OPT_STR),
    "isolation": (_need, _OPT_STR),
    "files": (_need_list, _STR),
    "out_of_scope": (_need_list, _STR),
    "file_runs": (_need_list, (dict,)),
    "pytest_args": (_need_list, _STR),
    "rerun_command": (_need, _OPT_STR),
    "cache": (_need, (dict,)),
}
_CELL = {
    "python": _STR,
    "torch": _STR,
    "stack": _STR,
    "torchao": _OPT_STR,
    "channel": _STR,
    "gating": (bool,),
    "not_applicable": _OPT_STR,
    "url": _OPT_STR,
    "declared": (bool,),
}
_TEST = {
    "nodeid": _STR,
    "outcome": _STR,
    "duration": _NUMBER,
    "message": _OPT_STR,
    "expected_reason": _OPT_STR,
    "reruns": (int,),
    "expected_failure": _OPT_STR,
    "cached": _OPT_STR,
    "where": _OPT_STR,
}
_FINGERPRINT = {
    "torch": _STR,
    "torch_git_version": _OPT_STR,
    "torchao": _OPT_STR,
    "python": _OPT_STR,
    "platform": _OPT_STR,
}
_INSTALL = {
    "disk": (_need_map, _NUMBER),
    "plan": (_need, (dict,)),
    "resolution": (_need, (dict,)),
    "wheels": (_need_map, (dict,)),
    "freeze": (_need_list, _STR),
    "reused": (_need, (bool,)),
    "uv_version": (_need, _OPT_STR),
    "python": (_need, _OPT_STR),
    "seconds": (_need, _NUMBER),
    "key": (_need, _OPT_STR),
    "interpreter": (_need, _OPT_STR),
    "error_kind": (_need, _OPT_STR),
}
_SAFE_ID = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,199}")


def is_safe_id(text: object) -> bool:
    """A cell id that is one path component: ``[A-Za-z0-9._+-]``, no leading dot, at most
    200 characters (every id the matrix makes is one; a result file's id must be)."""
    return isinstance(text, str) and _SAFE_ID.fullmatch(text) is not None


def _fields(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _strings(data: object, cls: type, where: str) -> dict[str, str | None]:
    """The known keys of a record whose values are all strings (or null)."""
    _need(data, (dict,), where)
    known = {k: v for k, v in data.items() if k in _fields(cls)}  # type: ignore[attr-defined]
    for key, value in known.items():
        _need(value, _OPT_STR, f"{where}.{key}")
    return known


def _whole(value: float, where: str) -> int:
    """A byte count: a whole number (a float one is taken as such; inf and nan are not)."""
    if not math.isfinite(value):
        raise ValueError(f"{where}: expected a number of bytes, got {value}")
    return int(value)


def _check_fields(given: dict[str, Any]) -> None:
    if not is_safe_id(given.get("cell_id")):
        raise ValueError(f"cell_id {_show(given.get('cell_id'))} is not a cell id")
    _need(given.get("status"), _STR, "status")
    cell = given.get("cell")
    _need(cell, (dict,), "cell")
    for key in ("python", "torch", "stack"):
        _need(cell.get(key), _STR, f"cell.{key}")
    for key, kinds in _CELL.items():
        if key in cell:
            _need(cell[key], kinds, f"cell.{key}")
    for key, (check, kinds) in _OPTIONAL.items():
        if key in given:
            check(given[key], kinds, key)
    for number, test in enumerate(given.get("tests") or []):
        _need(test, (dict,), f"tests[{number}]")
        for key, kinds in _TEST.items():
            if key in test or key in ("nodeid", "outcome"):
                _need(test.get(key), kinds, f"tests[{number}].{key}")
        if "exc_types" in test:
            _need_list(test["exc_types"], _STR, f"tests[{number}].exc_types")
    fingerprint = given.get("fingerprint") or {}
    for key, kinds in _FINGERPRINT.items():
        if key in fingerprint:
            _need(fingerprint[key], kinds, f"fingerprint.{key}")
    if "torch_import_warnings" in fingerprint:
        _need_list(fingerprint["torch_import_warnings"], _STR, "fingerprint.torch_import_warnings")
