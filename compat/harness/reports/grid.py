"""The grid (tests x cells) and its renderings, all from one list of :class:`CellResult`.

Rows are tests, then the rows that explain a column: its status, the torch build it
really had, install and test time, and every shim route the cell took.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tabulate import tabulate

from compat.harness.reports.bands import render_banded
from compat.harness.results.drift import drifts, snapshot_classes
from compat.harness.redact import redact
from compat.harness.results.model import CellResult, CellStatus, Outcome

__all__ = [
    "LEGEND",
    "SYMBOLS",
    "Grid",
    "build_grid",
    "env_problems",
    "findings",
    "not_applicable_evidence",
    "not_applicable_lines",
    "render_console",
    "render_markdown",
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
LEGEND = (
    "✓ passed  ✗ failed  E error  ≠ failed differently than expected  s skipped  "
    "x expected failure  X expected failure passed (fixed)  ~ flaky (passed on a rerun)  "
    "· not run  n/a not applicable;  route 'adapted': the shim departs from upstream's own "
    "call at that version (see Adaptations)"
)
# The order outcomes are counted in on a status line: good news first.
_COUNTED = (Outcome.PASSED, Outcome.XFAILED, Outcome.SKIPPED, Outcome.XPASSED, Outcome.FLAKY,
            Outcome.FAILED_DIFFERENTLY, Outcome.FAILED, Outcome.ERROR, Outcome.NOT_RUN)
# A warning at ``import torch`` that says the env is broken for some tests, and its name.
_BROKEN_ENV = (
    (re.compile(r"Failed to initialize NumPy|_ARRAY_API not found|compiled using NumPy 1\.x"),
     "NumPy ABI"),
    (re.compile(r"cannot open shared object file|Could not load library|undefined symbol"),
     "missing library"),
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


def short_message(message: str | None) -> str:
    """The line that says what went wrong: pytest's first ``E`` line, else the last line."""
    lines = [ln.strip() for ln in redact(message or "").splitlines() if ln.strip()]
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    return (errors[0] if errors else lines[-1] if lines else "")[:300]


def status_label(result: CellResult) -> str:
    """``PASS (6✓ 1s)``: the status and every outcome counted, so nothing is green by omission
    (``PASS (5✓ 1x 1X)``: one expected failure still fails, one now passes)."""
    label = _STATUS_LABEL[result.status]
    counts = result.counts()
    notes = [f"{counts[o.value]}{SYMBOLS[o.value]}" for o in _COUNTED if counts.get(o.value)]
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


def torch_build(result: CellResult) -> str:
    """What the column really had: ``2.8.0+cu128``, ``2.13.0+cpu``, or the requested version."""
    fp = result.fingerprint
    version = str(fp.get("torch") or result.cell.torch)
    if "+" not in version and fp.get("torch"):
        cuda = fp.get("torch_cuda")
        version += f"+cu{str(cuda).replace('.', '')}" if cuda else "+cpu"
    return version


GRID_TEXT = 120  # characters in one cell of a grid; what is longer is cut (redacted first)
LINE_TEXT = 1000  # characters in one line of a list under a grid


def fit(text: object, limit: int = GRID_TEXT) -> str:
    """``text`` redacted, then cut to ``limit`` characters: a megabyte in a result file makes
    a long line in a list, never a table that takes minutes to lay out."""
    flat = redact(str(text))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def column_header(result: CellResult, sep: str = "\n") -> str:
    cell = result.cell
    stack = "torch.ao" if cell.stack == "torch.ao" else f"ao {fit(cell.torchao, 40)}"
    channel = "" if cell.channel == "release" else f"{fit(cell.channel, 40)}{sep}"
    gating = "" if result.gating else f"{sep}(non-gating)"
    return f"{channel}{fit(cell.torch, 40)}{sep}{stack}{sep}py{fit(cell.python, 40)}{gating}"


def short_test_name(nodeid: str, all_ids: Sequence[str]) -> str:
    """The test function's name when it is unique in the grid, else the full node id."""
    return _short_names(all_ids)[nodeid]


def _short_names(all_ids: Sequence[str]) -> dict[str, str]:
    names = {nodeid: _test_name(nodeid) for nodeid in all_ids}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {nodeid: fit(name if counts[name] == 1 else nodeid)
            for nodeid, name in names.items()}


@dataclass
class Grid:
    headers: list[str]
    test_rows: list[tuple[str, list[str]]]
    info_rows: list[tuple[str, list[str]]]
    results: list[CellResult]
    route_legend: list[str] = field(default_factory=list)

    def rows(self) -> list[list[str]]:
        return [[name, *values] for name, values in [*self.test_rows, *self.info_rows]]


def _test_ids(results: Sequence[CellResult]) -> list[str]:
    return list(dict.fromkeys(t.nodeid for r in results for t in r.tests))


def _empty_symbol(result: CellResult) -> str:
    if result.status is CellStatus.NOT_APPLICABLE:
        return "n/a"
    if result.status is CellStatus.SKIPPED:
        return "-"
    return SYMBOLS[Outcome.NOT_RUN.value]


def _route_codes(values: Sequence[str], width: int) -> tuple[list[str], list[str]]:
    """Long route values become letters in the grid, spelled out once in a legend."""
    if all(len(v) <= width for v in values):
        return list(values), []
    distinct = [v for i, v in enumerate(values) if v and v not in values[:i]]
    codes = {v: chr(ord("A") + i) if i < 26 else str(i) for i, v in enumerate(distinct)}
    return [codes.get(v, "") for v in values], [f"{codes[v]} = {v}" for v in distinct]


def _env_disk(result: CellResult) -> str:
    """Apparent size, and what is the env's own (not hardlinked from the uv cache)."""
    disk = result.install.disk
    if disk is None or disk.apparent_bytes is None:
        return ""
    return f"{disk.apparent_bytes / 2**30:.1f}G/{(disk.own_bytes or 0) / 2**20:.0f}M own"


def _deps_as_of(result: CellResult) -> str:
    """The day the cell's other packages were resolved as of (``deps-as-of``), if any."""
    cutoff = result.install.plan.deps_cutoff if result.install.plan else None
    return redact(str(cutoff))[:10] if cutoff else ""


def _env_health(result: CellResult) -> str:
    if not result.fingerprint:
        return ""
    problems = env_problems(result)
    return "⚠ " + ", ".join(p.split(":", 1)[0] for p in problems) if problems else "ok"


def build_grid(
    results: Sequence[CellResult], *, sep: str = "\n", route_width: int | None = None
) -> Grid:
    """The grid; with ``route_width``, route values longer than that become lettered codes."""
    ids = _test_ids(results)
    short = _short_names(ids)
    by_cell = [{t.nodeid: t for t in r.tests} for r in results]
    test_rows = []
    for nodeid in ids:
        values = []
        for result, tests in zip(results, by_cell, strict=False):
            test = tests.get(nodeid)
            values.append(SYMBOLS[test.outcome.value] if test else _empty_symbol(result))
        test_rows.append((short[nodeid], values))

    def seconds(result: CellResult, key: str) -> str:
        value = result.timings.get(key)
        if value is None:
            return ""
        reused = key == "install" and result.install.reused
        return f"{value:.1f}s" + (" (reused)" if reused else "")

    info_rows = [
        ("status", [status_label(r) for r in results]),
        ("torch build", [torch_build(r) if r.fingerprint else "" for r in results]),
        ("install", [seconds(r, "install") for r in results]),
        ("tests", [seconds(r, "tests") for r in results]),
        ("env disk", [_env_disk(r) for r in results]),
        ("env health", [_env_health(r) for r in results]),
        ("deps as of", [_deps_as_of(r) for r in results]),
    ]
    route_keys: list[str] = []
    for result in results:
        route_keys += [k for k in result.routes if k not in route_keys]
    legend: list[str] = []
    for key in route_keys:
        values = [r.routes.get(key, "") for r in results]
        if route_width is not None:
            values, spelled = _route_codes(values, route_width)
            legend += [f"{key}: {line}" for line in spelled]
        values = [f"{v} adapted" if key in r.adaptations else v
                  for v, r in zip(values, results, strict=True)]
        info_rows.append((f"route: {key}", values))
    headers = [column_header(r, sep) for r in results]
    info_rows = [(fit(name), [fit(v) for v in values]) for name, values in info_rows]
    return Grid(headers, test_rows, info_rows, list(results), [fit(ln, LINE_TEXT) for ln in legend])


def _problems(results: Sequence[CellResult]) -> list[str]:
    """Each cell that did not pass, and the first unexpected failure's telling line."""
    lines = []
    for result in results:
        if result.status in (CellStatus.PASSED, CellStatus.NOT_APPLICABLE):
            continue
        line = f"{result.cell_id}: {result.status.value}: {result.reason or ''}".rstrip()
        first = next((t for t in result.tests if t.outcome.unexpected and t.message), None)
        if first is not None:
            line += f" (first: {_test_name(first.nodeid)}: {short_message(first.message)})"
        lines.append(line)
    return lines


def not_applicable_lines(cells: Iterable[tuple[str, str]]) -> list[str]:
    """(cell id, reason) pairs grouped by reason: what a grid lists instead of n/a columns."""
    by_reason: dict[str, list[str]] = {}
    for cell_id, reason in cells:
        by_reason.setdefault(reason, []).append(cell_id)
    return [f"  {', '.join(ids)}: {reason}" for reason, ids in by_reason.items()]


def _test_name(nodeid: str) -> str:
    """The test's own name: redacted before the cut (``user::token@host`` holds a ``::``)."""
    return redact(nodeid).rsplit("::", 1)[-1]


def fixed_lines(results: Sequence[CellResult]) -> list[str]:
    """Expected failures that pass: each names the expectation to retire."""
    return [f"{r.cell_id}: {_test_name(t.nodeid)} passes; retire the expectation "
            f"({t.expected_failure}): {t.expected_reason}"
            for r in results for t in r.tests if t.outcome is Outcome.XPASSED]


def differently_lines(results: Sequence[CellResult]) -> list[str]:
    """Expected failures that failed some other way: expected and actual, side by side."""
    lines = []
    for r in results:
        for t in r.tests:
            if t.outcome is Outcome.FAILED_DIFFERENTLY:
                got = short_message(t.message)
                if t.exc_types and not got.startswith(t.exc_types[0]):
                    got = f"{t.exc_types[0]}: {got}"
                lines.append(f"{r.cell_id}: {_test_name(t.nodeid)}: expected "
                             f"{t.expected_failure}; got {got}")
    return lines


def env_problem_lines(results: Sequence[CellResult]) -> list[str]:
    return [f"{r.cell_id}: {p}" for r in results for p in env_problems(r)]


def adaptation_lines(results: Sequence[CellResult]) -> list[str]:
    """Each way a shim departs from upstream's own call, with the cells that rest on it."""
    where: dict[tuple[str, str], list[str]] = {}
    for r in results:
        for key, how in r.adaptations.items():
            where.setdefault((key, how), []).append(r.cell_id)
    return [f"{key} ({len(ids)} cell(s): {', '.join(ids)}): {how}"
            for (key, how), ids in where.items()]


def not_applicable_evidence(result: CellResult) -> str:
    """``claim [source] (confirmed: ...)``: what an n/a rule rests on and how it was checked."""
    ev = result.applicability
    if ev is None:
        return ""
    verdict = ev.check_verdict if ev.check_verdict is not None else "unchecked"
    return f"{ev.claim or ''} [{ev.source or ''}] ({verdict}: {ev.check_detail or ''})"


def findings(results: Sequence[CellResult]) -> list[tuple[str, list[str]]]:
    """The lists under every grid, in reading order: (title, lines); empty ones omitted."""
    sections = [
        ("Failed differently than expected (a new failure behind a known one)",
         differently_lines(results)),
        ("Fixed (an expected failure passes: retire its expectation)", fixed_lines(results)),
        ("Environment broken for some tests (warning at import torch)",
         env_problem_lines(results)),
        ("Adaptations (where the shims depart from upstream's own call)",
         adaptation_lines(results)),
        ("Porting drift (the porting snapshot changed between neighbouring versions; not a "
         "failure)", [d.headline() for d in drifts(results)]),
        ("Flaky (failed, then passed on a rerun)", _flaky(results)),
        ("Cells not passing", _problems(results)),
    ]
    return [(title, [fit(line, LINE_TEXT) for line in lines]) for title, lines in sections
            if lines]


def drift_markdown(results: Sequence[CellResult]) -> list[str]:
    """Every drift in full (node by node), then each test's snapshot classes."""
    found = drifts(results)
    if not found:
        return []
    lines = ["", "### Porting drift, node by node", ""]
    for drift in found:
        lines.append(f"**{_md_escape(drift.test)}** [{drift.line}] {_md_escape(drift.before)} "
                     f"-> {_md_escape(drift.after)}:")
        lines += [f"- {_md_escape(change)}" for change in drift.changes] + [""]
    lines += ["### Snapshot classes (cells in which a test's porting is identical)", ""]
    for test, classes in snapshot_classes(results).items():
        groups = "; ".join("[" + ", ".join(c.cells) + "]" for c in classes)
        lines.append(f"- {_md_escape(test.rsplit('::', 1)[-1])}: {len(classes)} class(es): "
                     f"{_md_escape(groups)}")
    return lines


def _flaky(results: Sequence[CellResult]) -> list[str]:
    """Tests that failed and then passed: not a gate failure, never silent."""
    return [f"{r.cell_id}: {_test_name(t.nodeid)} passed after {t.reruns} failed "
            f"attempt(s)" for r in results for t in r.tests if t.outcome is Outcome.FLAKY]


def render_console(results: Sequence[CellResult], *, width: int | None = None) -> str:
    """The grid for a terminal or a CI log: bands of cells at most ``width`` wide.

    Cells that cannot exist get no column here (they would be a column of "n/a"); they
    are listed under the grid with their reason. summary.md and matrix.html keep them.
    """
    folded = [r for r in results if r.status is CellStatus.NOT_APPLICABLE]
    shown = [r for r in results if r.status is not CellStatus.NOT_APPLICABLE]
    if not shown:  # nothing applicable at all: the n/a columns are the news
        shown, folded = list(results), []
    grid = build_grid(shown, route_width=14)
    lines = [render_banded(["test", *grid.headers], grid.rows(), width=width), "", LEGEND]
    if grid.route_legend:
        lines += ["", "Routes:", *(f"  {line}" for line in grid.route_legend)]
    if folded:
        lines += ["", "Not applicable (not installed, not run):",
                  *not_applicable_lines((r.cell_id, _with_check(r)) for r in folded)]
    for title, items in findings(results):
        lines += ["", f"{title}:", *(f"  {item}" for item in items)]
    return "\n".join(lines)


def _with_check(result: CellResult) -> str:
    verdict = result.applicability.check_verdict if result.applicability else None
    return f"{result.reason or ''}" + (f" [rule {verdict}]" if verdict else "")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def render_markdown(results: Sequence[CellResult], *, title: str, exit_code: int) -> str:
    grid = build_grid(results, sep="<br>")
    rows = [[_md_escape(c) for c in row] for row in grid.rows()]
    table = tabulate(rows, headers=["test", *grid.headers], tablefmt="github",
                     disable_numparse=True)
    verdict = "all cells as expected" if exit_code == 0 else f"exit code {exit_code}"
    lines = [f"## torch-compat-matrix: {title}", "", f"**{verdict}**", "", table, "",
             f"_{LEGEND}_"]
    for heading, items in findings(results):
        lines += ["", f"### {heading}", "", *(f"- {_md_escape(i)}" for i in items)]
    lines += drift_markdown(results)
    na = [r for r in results if r.status is CellStatus.NOT_APPLICABLE]
    if na:
        lines += ["", "### Not applicable, and the evidence", "",
                  *(f"- {_md_escape(r.cell_id)}: {_md_escape(r.reason or '')}; "
                    f"{_md_escape(not_applicable_evidence(r))}" for r in na)]
    return "\n".join(lines) + "\n"
