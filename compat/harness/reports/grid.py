"""The grid (tests x cells), built once from a list of :class:`CellResult`.

Rows are tests, then the rows that explain a column: its status, the torch build it
really had, install and test time, and every shim route the cell took. Each row has a
:class:`RowKind` and a typed :class:`Value` per cell, each column a typed :class:`Column`,
so the console, Markdown and HTML renderings draw the same grid and none of them
recomputes test ids or recognises a row by its label.

:func:`column_of` is the one place a report reads a result's ``cell`` and ``install``
records: every other renderer reads the :class:`Column` it made.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

from compat.harness.config.suites import file_of
from compat.harness.redact import redact
from compat.harness.results.drift import Drift, Finding, cross_stack_drifts, drift_findings, drifts
from compat.harness.results.failures import short_message
from compat.harness.results.model import (
    CellResult,
    CellStatus,
    DiskUsage,
    Outcome,
    TestResult,
    WheelRecord,
)

__all__ = [
    "FILE_FAILED",
    "GRID_TEXT",
    "LEGEND",
    "LINE_TEXT",
    "NOT_IN_SCOPE",
    "ROUTE_WIDTH",
    "SYMBOLS",
    "Column",
    "Grid",
    "Row",
    "RowKind",
    "Value",
    "build_grid",
    "column_of",
    "env_problems",
    "fit",
    "name_of_test",
    "short_message",
    "status_counts",
    "status_label",
    "test_labels",
    "torch_build",
]

SYMBOLS: dict[str, str] = {
    Outcome.PASSED.value: "✓",
    Outcome.FAILED.value: "✗",
    Outcome.ERROR.value: "E",
    Outcome.SKIPPED.value: "s",
    Outcome.XFAILED.value: "x",
    Outcome.XPASSED.value: "X",
    Outcome.FAILED_DIFFERENTLY.value: "≠",
    Outcome.FLAKY.value: "~",
    Outcome.NOT_RUN.value: "·",
    CellStatus.NOT_APPLICABLE.value: "n/a",
}
CACHED = "c"  # after a test's symbol: its verdict was reused from the cache, not run
NOT_IN_SCOPE = "n/s"  # the test's suite was written for other cells ([[suite]])
FILE_FAILED = "⊘"  # the test's file failed to import in this cell (its own row: E)
LEGEND = (
    "✓ passed  ✗ failed  E error  ≠ failed differently than expected  s skipped  "
    "x expected failure  X expected failure passed (fixed)  ~ flaky (passed on a rerun)  "
    "· not run  ⊘ its file failed to import (see the file's row)  n/a not applicable  "
    "n/s not in scope (a suite written for other cells);  "
    "c after a symbol: cached (the verdict of an earlier run, its inputs unchanged);  "
    "route 'adapted': the shim departs from upstream's own call at that version "
    "(see Adaptations)"
)
# The order outcomes are counted in on a status line: good news first.
_COUNTED = (
    Outcome.PASSED,
    Outcome.XFAILED,
    Outcome.SKIPPED,
    Outcome.XPASSED,
    Outcome.FLAKY,
    Outcome.FAILED_DIFFERENTLY,
    Outcome.FAILED,
    Outcome.ERROR,
    Outcome.NOT_RUN,
)
# A warning at ``import torch`` that says the env is broken for some tests, and its name.
_BROKEN_ENV = (
    (
        re.compile(r"Failed to initialize NumPy|_ARRAY_API not found|compiled using NumPy 1\.x"),
        "NumPy ABI",
    ),
    (
        re.compile(r"cannot open shared object file|Could not load library|undefined symbol"),
        "missing library",
    ),
)
_STATUS_LABEL = {
    CellStatus.PASSED: "PASS",
    CellStatus.FAILED: "FAIL",
    CellStatus.ERROR: "ERROR",
    CellStatus.INSTALL_FAILED: "INSTALL-FAILED",
    CellStatus.IMPORT_FAILED: "IMPORT-FAILED",
    CellStatus.CRASHED: "CRASHED",
    CellStatus.TIMED_OUT: "TIMED-OUT",
    CellStatus.NOT_APPLICABLE: "n/a",
    CellStatus.SKIPPED: "skipped",
    CellStatus.NOT_RUN: "not run",
}

GRID_TEXT = 120  # characters in one cell of a grid; what is longer is cut (redacted first)
LINE_TEXT = 1000  # characters in one line of a list under a grid
ROUTE_WIDTH = 14  # a route longer than this is a letter in a narrow grid (console, HTML)


def fit(text: object, limit: int = GRID_TEXT) -> str:
    """``text`` redacted, then cut to ``limit`` characters: a megabyte in a result file makes
    a long line in a list, never a table that takes minutes to lay out."""
    flat = redact(str(text))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def name_of_test(nodeid: str) -> str:
    """The test's own name: redacted before the cut (``user::token@host`` holds a ``::``)."""
    return redact(nodeid).rsplit("::", 1)[-1]


def status_counts(results: Iterable[CellResult]) -> dict[str, int]:
    """Cells per status (``{"passed": 3, "failed": 1}``): the one count every report shows."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status.value] = counts.get(result.status.value, 0) + 1
    return counts


def status_label(result: CellResult) -> str:
    """``PASS (6✓ 1s)``: the status and every outcome counted, so nothing is green by omission
    (``PASS (5✓ 1x 1X)``: one expected failure still fails, one now passes)."""
    label = _STATUS_LABEL[result.status]
    counts = result.counts()
    notes = [f"{counts[o.value]}{SYMBOLS[o.value]}" for o in _COUNTED if counts.get(o.value)]
    cached = sum(1 for t in result.tests if t.cached)
    if cached:
        notes.append(f"{cached} cached" if cached < len(result.tests) else "all cached")
    return f"{label} ({' '.join(notes)})" if notes else label


def env_problems(result: CellResult) -> list[str]:
    """Warnings at ``import torch`` that say the env is broken (``NumPy ABI: <warning>``)."""
    seen = [*result.fingerprint.get("torch_import_warnings", []), *result.warnings]
    found = []
    for pattern, name in _BROKEN_ENV:
        hit = next((w for w in seen if pattern.search(str(w))), None)
        if hit is not None:
            found.append(f"{name}: {hit}")
    return found


# --- the grid's parts ----------------------------------------------------------------------


class RowKind(Enum):
    """What a row says about each cell; renderers style a row by its kind, never its label."""

    TEST = "test"  # one test: its outcome symbol per cell
    STATUS = "status"  # the cell's status, every outcome counted
    TORCH_BUILD = "torch build"  # the torch the cell really had
    INSTALL_TIME = "install"  # seconds to install (or reuse) the env
    TEST_TIME = "tests"  # seconds the tests took
    ENV_DISK = "env disk"  # the env's size, and what of it is its own
    ENV_HEALTH = "env health"  # warnings at ``import torch`` that break the env
    DEPS_AS_OF = "deps as of"  # the day the other packages were resolved as of
    ROUTE = "route"  # one shim route: the call the cell took


@dataclass(frozen=True)
class Value:
    """One cell of a row: ``text`` in a full grid (Markdown); ``short`` in a narrow one
    (console, HTML: a long route is a letter); ``title`` is the uncut value behind it."""

    text: str
    short: str
    title: str
    test: TestResult | None = None  # a TEST row's result in this cell; None: it did not run

    @classmethod
    def plain(cls, text: str) -> Value:
        return cls(text, text, text)


@dataclass(frozen=True)
class Row:
    """A row of the grid: its kind, its label (cut), a value per column, and its key: the
    node id of a TEST row, the route of a ROUTE row."""

    kind: RowKind
    label: str
    values: tuple[Value, ...]
    key: str = ""

    @property
    def texts(self) -> list[str]:
        return [v.text for v in self.values]


@dataclass(frozen=True)
class Column:
    """One cell as the grid heads it, and the facts of its cell and install records that
    the reports show (so no renderer reads those records itself)."""

    cell_id: str
    status: CellStatus
    gating: bool
    torch: str  # as requested
    stack: str
    torchao: str | None
    python: str
    channel: str
    build: str  # the torch it really had (``2.8.0+cu128``), else the one requested
    reused: bool | None = None  # the env was reused (None: not recorded)
    uv_version: str | None = None
    deps_cutoff: str | None = None  # ``deps-as-of``: the day the rest was resolved as of
    disk: DiskUsage = field(default_factory=DiskUsage)  # the env's, apparent and own
    wheels: Mapping[str, WheelRecord] = field(default_factory=dict)  # project -> its wheel
    freeze: tuple[str, ...] = ()

    def header(self, sep: str = "\n") -> str:
        """``nightly/2.10.0/ao 0.14.0/py3.11/(non-gating)``, one part per ``sep``."""
        torch, stack, torchao = fit(self.torch, 40), fit(self.stack, 40), fit(self.torchao, 40)
        channel = fit(self.channel, 40)
        stack = "torch.ao" if stack == "torch.ao" else f"ao {torchao}"
        channel = "" if channel == "release" else f"{channel}{sep}"
        gating = "" if self.gating else f"{sep}(non-gating)"
        return f"{channel}{torch}{sep}{stack}{sep}py{fit(self.python, 40)}{gating}"


def column_of(result: CellResult) -> Column:
    """The column of ``result``: the one reader of its ``cell`` and ``install`` records."""
    cell, install = result.cell, result.install
    fp = result.fingerprint
    build = str(fp.get("torch") or cell.torch)
    if "+" not in build and fp.get("torch"):
        cuda = fp.get("torch_cuda")
        build += f"+cu{str(cuda).replace('.', '')}" if cuda else "+cpu"
    return Column(
        cell_id=result.cell_id,
        status=result.status,
        gating=result.gating,
        torch=cell.torch,
        stack=cell.stack,
        torchao=cell.torchao,
        python=cell.python,
        channel=cell.channel,
        build=build,
        reused=install.reused,
        uv_version=install.uv_version,
        deps_cutoff=install.plan.deps_cutoff if install.plan else None,
        disk=install.disk or DiskUsage(),
        wheels=install.wheels or {},
        freeze=tuple(install.freeze or ()),
    )


def torch_build(result: CellResult) -> str:
    """What the column really had: ``2.8.0+cu128``, ``2.13.0+cpu``, or the requested version."""
    return column_of(result).build


@dataclass
class Grid:
    """Tests x cells: a :class:`Column` per cell, test rows then info rows, the results they
    came from, and the legend of the letters long routes get in a narrow grid."""

    columns: list[Column]
    rows: list[Row]
    results: list[CellResult]
    route_legend: list[str] = field(default_factory=list)

    @cached_property
    def drifts(self) -> list[Drift]:
        """Every porting drift of the run: along each stack's torch axis, then torch.ao
        against torchao. Computed once: the console, summary.md, matrix.html and
        drift.svg all show it, and it is the costliest thing a report draws."""
        return [*drifts(self.results), *cross_stack_drifts(self.results)]

    @cached_property
    def drift_findings(self) -> list[Finding]:
        """:attr:`drifts` as findings, metadata ones first (``findings.drift_report``)."""
        return drift_findings(self.drifts)

    def row(self, kind: RowKind, key: str = "") -> Row:
        """The row of ``kind`` (and ``key``: a test's node id, a route)."""
        for row in self.rows:
            if row.kind is kind and row.key == key:
                return row
        raise KeyError(f"no {kind.value} row {key!r}")

    def table(
        self, *, sep: str = "\n", short: bool = False, columns: Sequence[int] | None = None
    ) -> tuple[list[str], list[list[str]]]:
        """Headers and rows of text, label first, for a text table: the ``columns`` given
        (all by default), each value ``short`` (a narrow grid) or in full."""
        picked = range(len(self.columns)) if columns is None else columns
        headers = [self.columns[j].header(sep) for j in picked]
        rows = [
            [row.label, *((row.values[j].short if short else row.values[j].text) for j in picked)]
            for row in self.rows
        ]
        return headers, rows


# --- building it ---------------------------------------------------------------------------


def test_labels(results: Iterable[CellResult]) -> dict[str, str]:
    """Each test's label in every report: its own name where no other file or class of the
    run defines the same name, else its file-qualified node id (``a/test_x.py::test_y``).
    A row of a file that failed to import is the file's path."""
    ids = list(dict.fromkeys(t.nodeid for r in results for t in r.tests))
    names = {nodeid: name_of_test(nodeid) for nodeid in ids}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {nodeid: fit(name if counts[name] == 1 else nodeid) for nodeid, name in names.items()}


def _empty_symbol(status: CellStatus) -> str:
    if status is CellStatus.NOT_APPLICABLE:
        return "n/a"
    if status is CellStatus.SKIPPED:
        return "-"
    return SYMBOLS[Outcome.NOT_RUN.value]


def _route_codes(values: Sequence[str], width: int) -> tuple[list[str], list[str]]:
    """Long route values become letters in the grid, spelled out once in a legend."""
    if all(len(v) <= width for v in values):
        return list(values), []
    distinct = [v for i, v in enumerate(values) if v and v not in values[:i]]
    codes = {v: chr(ord("A") + i) if i < 26 else str(i) for i, v in enumerate(distinct)}
    return [codes.get(v, "") for v in values], [f"{codes[v]} = {v}" for v in distinct]


def _seconds(result: CellResult, column: Column, key: str) -> str:
    value = result.timings.get(key)
    if value is None:
        return ""
    reused = key == "install" and column.reused
    return f"{value:.1f}s" + (" (reused)" if reused else "")


def _env_disk(column: Column) -> str:
    """Apparent size, and what is the env's own (not hardlinked from the uv cache)."""
    if column.disk.apparent_bytes is None:
        return ""
    return (
        f"{column.disk.apparent_bytes / 2**30:.1f}G/{(column.disk.own_bytes or 0) / 2**20:.0f}M own"
    )


def _env_health(result: CellResult) -> str:
    if not result.fingerprint:
        return ""
    problems = env_problems(result)
    return "⚠ " + ", ".join(p.split(":", 1)[0] for p in problems) if problems else "ok"


def _deps_as_of(column: Column) -> str:
    return redact(str(column.deps_cutoff))[:10] if column.deps_cutoff else ""


# The rows under the tests, in the order a grid shows them, and what each says about a cell
# (routes follow, one row per route).
_INFO: dict[RowKind, Callable[[CellResult, Column], str]] = {
    RowKind.STATUS: lambda r, c: status_label(r),
    RowKind.TORCH_BUILD: lambda r, c: c.build if r.fingerprint else "",
    RowKind.INSTALL_TIME: lambda r, c: _seconds(r, c, "install"),
    RowKind.TEST_TIME: lambda r, c: _seconds(r, c, "tests"),
    RowKind.ENV_DISK: lambda r, c: _env_disk(c),
    RowKind.ENV_HEALTH: lambda r, c: _env_health(r),
    RowKind.DEPS_AS_OF: lambda r, c: _deps_as_of(c),
}


def _test_rows(results: Sequence[CellResult], columns: Sequence[Column]) -> list[Row]:
    labels = test_labels(results)
    by_cell = [{t.nodeid: t for t in r.tests} for r in results]
    out_of_scope = [set(r.out_of_scope) for r in results]
    # Where a file failed to import, its row says so and its tests were never collected;
    # where it imported, its tests say how it went and its own row does not apply.
    files_ran = [{file_of(n) for n in tests if "::" in n} for tests in by_cell]
    rows = []
    for nodeid, label in labels.items():
        values = []
        cells = zip(columns, by_cell, out_of_scope, files_ran, strict=True)
        for column, tests, other, ran in cells:
            test = tests.get(nodeid)
            if test is not None:
                symbol = SYMBOLS[test.outcome.value] + (CACHED if test.cached else "")
            elif file_of(nodeid) in other:
                symbol = NOT_IN_SCOPE
            elif "::" in nodeid and file_of(nodeid) in tests:
                symbol = FILE_FAILED  # the file's E row says why
            elif "::" not in nodeid and nodeid in ran:
                symbol = ""  # the file imported here: its tests are its rows
            else:
                symbol = _empty_symbol(column.status)
            values.append(Value(symbol, symbol, symbol, test))
        rows.append(Row(RowKind.TEST, label, tuple(values), key=nodeid))
    return rows


def _route_rows(results: Sequence[CellResult], width: int) -> tuple[list[Row], list[str]]:
    """A row per route any cell took; a long value is a letter in ``short``, spelled out in
    the legend; ``adapted`` marks where the shim departs from upstream's own call."""
    keys: list[str] = []
    for result in results:
        keys += [k for k in result.routes if k not in keys]
    rows, legend = [], []
    for key in keys:
        full = [r.routes.get(key, "") for r in results]
        codes, spelled = _route_codes(full, width)
        legend += [f"{key}: {line}" for line in spelled]
        values = tuple(
            Value(
                fit(f"{text} adapted" if key in r.adaptations else text),
                fit(f"{code} adapted" if key in r.adaptations else code),
                title,
            )
            for r, text, code, title in zip(results, full, codes, full, strict=True)
        )
        rows.append(Row(RowKind.ROUTE, fit(f"route: {key}"), values, key=key))
    return rows, [fit(line, LINE_TEXT) for line in legend]


def build_grid(results: Sequence[CellResult], *, route_width: int = ROUTE_WIDTH) -> Grid:
    """The grid of ``results``: every report's table is drawn from it."""
    columns = [column_of(r) for r in results]
    pairs = list(zip(results, columns, strict=True))
    info = [
        Row(kind, fit(kind.value), tuple(Value.plain(fit(say(r, c))) for r, c in pairs))
        for kind, say in _INFO.items()
    ]
    routes, legend = _route_rows(results, route_width)
    return Grid(columns, [*_test_rows(results, columns), *info, *routes], list(results), legend)
