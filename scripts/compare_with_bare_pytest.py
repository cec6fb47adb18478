"""Each test's verdict in a run's grid against its file run alone with bare pytest.

The harness runs every test file of a cell in a process of its own (``compat.file_runner``:
torch imported once, a fork per file, the ``compat.pytest_plugin`` recording events). This
script checks that this changes no verdict: for every cell of a run folder it runs each
file the cell ran, alone, as a user would, in the same env::

    cd <matrix folder> && <env python> -m pytest FILE -c <cell ini> --rootdir <rootdir> \\
        -p no:cacheprovider --junitxml <tmp>

with the cell's environment (``cell_environment``: ``COMPAT_PT2E_STACK``, ``COMPAT_CELL_ID``,
``PYTHONNOUSERSITE``, the matrix's ``env``), no plugin of the harness, no fork. ``-c`` and
``--rootdir`` are the cell's own (from ``command`` in its ``result.json``), so node ids are
the grid's; a ``-k`` of the matrix and its ``pytest-args`` are passed too. Each test's
outcome in the JUnit report (a file that fails to import: one error for the file) is
compared with the grid's: ``xfailed`` and ``failed-differently`` count as failed,
``xpassed`` and ``flaky`` as passed; a test one side has and the other lacks is a
disagreement. Every file-level error row of the grid is listed with its message, and
whether that message names the exception.

    python scripts/compare_with_bare_pytest.py reports/latest
    python scripts/compare_with_bare_pytest.py RUN --cells 'torch2.8*' --json out.json -j 2

Tests that fail on both sides are also held to the exception each side names (the column
``same exception``). Exit code 0: every test agrees; 1: a disagreement, a failure with
another exception than bare pytest's, an import-error row whose message does
not name its exception (or names another one than bare pytest), or a cell whose env was
rebuilt since the run (another matrix with the same cell ids and ``COMPAT_ENVS_DIR``);
2: usage (no such run folder, no cell to compare).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from compat.harness.config.matrix import Cell, load_matrix  # noqa: E402
from compat.harness.execute.cell_runner import cell_environment  # noqa: E402
from compat.harness.install.envs import STAMP  # noqa: E402

# The grid's outcome of a test, as the verdict bare pytest can give (see the module doc).
GRID_VERDICT = {
    "passed": "passed",
    "xpassed": "passed",
    "flaky": "passed",
    "failed": "failed",
    "xfailed": "failed",
    "failed-differently": "failed",
    "error": "error",
    "skipped": "skipped",
    "not-run": "not-run",
}
NO_TESTS = ("not-applicable", "install-failed", "skipped")  # cell statuses without tests
ABSENT = "absent"
DEFAULT_FILE_TIMEOUT = 900.0
_EXCEPTION = re.compile(r"\b([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))\b")


@dataclass
class Verdict:
    outcome: str
    message: str = ""


@dataclass
class Disagreement:
    cell: str
    file: str
    test: str
    grid: str
    bare: str
    grid_message: str
    bare_message: str
    bare_log: str


@dataclass
class ImportErrorRow:
    cell: str
    file: str
    message: str  # the grid's message, first line naming the error
    exc_types: list[str]
    names_exception: bool
    bare: str
    bare_message: str
    same_exception: bool  # bare pytest's report names the same exception type

    @property
    def ok(self) -> bool:
        return self.names_exception and self.same_exception


@dataclass
class CellComparison:
    cell: str
    status: str
    reason: str = ""
    files: int = 0
    compared: int = 0
    agree: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    # tests failing on both sides: how many name the same exception in the grid and bare
    failures: int = 0
    same_exception: int = 0
    other_exception: list[Disagreement] = field(default_factory=list)
    import_errors: list[ImportErrorRow] = field(default_factory=list)
    bare_seconds: float = 0.0
    note: str = ""
    failed_to_compare: bool = False  # a cell with tests whose env is no longer the one it ran in


# --- the run folder -------------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def cell_results(run: Path, patterns: Sequence[str]) -> list[dict[str, Any]]:
    """Every cell's ``result.json`` in the run's order (``run.json``), filtered by glob."""
    order: list[str] = []
    if (run / "run.json").is_file():
        order = [str(c["id"]) for c in read_json(run / "run.json").get("cells", [])]
    found = {p.parent.name: p for p in (run / "cells").glob("*/result.json")}
    ids = [i for i in order if i in found] + sorted(i for i in found if i not in order)
    if patterns:
        ids = [i for i in ids if any(fnmatch.fnmatchcase(i, p) for p in patterns)]
    return [read_json(found[i]) for i in ids]


def matrix_path(run: Path) -> Path:
    for name in ("run.json", "results.json"):
        if (run / name).is_file():
            data = read_json(run / name)
            path = data.get("matrix_path") or (data.get("matrix") or {}).get("path")
            if path:
                return Path(str(path))
    raise ValueError(f"{run}: neither run.json nor results.json names the matrix file")


def option(command: Sequence[str], name: str) -> str | None:
    """The value of ``name`` in an argv (``-c X`` or ``--rootdir=X``), the last one given."""
    value = None
    for i, arg in enumerate(command):
        if arg == name and i + 1 < len(command):
            value = command[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def file_args(
    cell_dir: Path, result: Mapping[str, Any], base: Path, root: Path
) -> dict[str, list[str]]:
    """What pytest was given for each file (``files.json``), else its node id from ``base``."""
    spec = cell_dir / "files.json"
    if spec.is_file():
        entries = read_json(spec).get("files", [])
        return {str(e["nodeid"]): [str(a) for a in e["args"]] for e in entries}
    return {str(f): [os.path.relpath(root / str(f), base)] for f in result.get("files") or []}


def grid_verdicts(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(t["nodeid"]): dict(t) for t in result.get("tests") or []}


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


# --- bare pytest ----------------------------------------------------------------------


def junit_verdicts(path: Path, nodeid: str) -> dict[str, Verdict]:
    """Each test of the file ``nodeid`` in a JUnit report, by node id.

    pytest names a test ``classname`` = the file's path with ``/`` as ``.`` and without
    ``.py``, then its classes; a file that failed to collect is one test named like the
    file with an empty classname.
    """
    prefix = nodeid[: -len(".py")] if nodeid.endswith(".py") else nodeid
    prefix = prefix.replace("/", ".")
    found: dict[str, Verdict] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        if not classname and name == prefix:
            test = nodeid
        elif classname == prefix:
            test = f"{nodeid}::{name}"
        elif classname.startswith(prefix + "."):
            test = "::".join([nodeid, *classname[len(prefix) + 1 :].split("."), name])
        else:
            test = f"{nodeid}::?{classname}::{name}"
        found[test] = case_verdict(case)
    return found


def case_verdict(case: ET.Element) -> Verdict:
    tags = {child.tag: child for child in case}
    for tag, outcome in (("failure", "failed"), ("error", "error")):
        if tag in tags:
            element = tags[tag]  # message: a summary ("collection failure"); text: the report
            parts = (element.get("message"), element.text)
            return Verdict(outcome, "\n".join(p.strip() for p in parts if p))
    if "skipped" in tags:
        element = tags["skipped"]
        if element.get("type") == "pytest.xfail":
            return Verdict("failed", f"xfail: {element.get('message') or ''}")
        return Verdict("skipped", element.get("message") or "")
    return Verdict("passed")


def run_bare(
    python: str,
    args: Sequence[str],
    common: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    junit: Path,
    log: Path,
    timeout: float,
) -> tuple[int | None, float]:
    """One file alone: pytest's exit code (None: timed out) and the seconds it took."""
    argv = [python, "-m", "pytest", *args, *common, "-p", "no:cacheprovider"]
    argv += ["--junitxml", str(junit)]
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        try:
            proc = subprocess.run(
                argv,
                cwd=cwd,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
    return code, time.monotonic() - started


# --- one cell -------------------------------------------------------------------------


def first_error_line(message: str) -> str:
    """The line of a pytest report that names the error (``E   ImportError: ...``)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E ") and _EXCEPTION.search(line):
            return line[1:].strip()
    return next((line for line in lines if _EXCEPTION.search(line)), lines[0] if lines else "")


def exception_of(line: str) -> str | None:
    """The exception type a report line names (``ImportError: ...`` -> ``ImportError``)."""
    found = _EXCEPTION.search(line)
    return found.group(1).rsplit(".", 1)[-1] if found else None


def names_exception(message: str, exc_types: Sequence[str]) -> bool:
    """The message shows the exception's type (``ImportError: cannot import ...``)."""
    line = first_error_line(message)
    if exc_types:
        return any(t.rsplit(".", 1)[-1] + ":" in line for t in exc_types)
    return bool(_EXCEPTION.search(line))


def compare_cell(
    run: Path,
    result: Mapping[str, Any],
    *,
    base: Path,
    matrix_env: Mapping[str, str],
    work: Path,
    file_timeout: float,
) -> CellComparison:
    cell_id = str(result["cell_id"])
    status = str(result.get("status"))
    compared = CellComparison(cell_id, status, str(result.get("reason") or ""))
    files = [str(f) for f in result.get("files") or []]
    python = (result.get("install") or {}).get("python")
    command = [str(c) for c in result.get("command") or []]
    if status in NO_TESTS or not files or not python or not command:
        compared.note = f"not compared: {status}, {len(files)} file(s)"
        return compared
    ini, rootdir = option(command, "-c"), option(command, "--rootdir")
    if ini is None or rootdir is None:
        compared.note = "not compared: the cell's command has no -c or --rootdir"
        return compared
    common = ["-c", ini, "--rootdir", rootdir]
    select = option(command, "-k")
    if select is not None:
        common += ["-k", select]
    common += [str(a) for a in result.get("pytest_args") or []]
    env_dir = Path(str(python)).parents[1]
    key = (result.get("install") or {}).get("key")
    stamp = env_dir / STAMP
    now = read_json(stamp).get("key") if stamp.is_file() else None
    if key and now != key:  # another matrix rebuilt the env under the same cell id
        compared.note = f"not compared: {env_dir} is no longer the env the cell ran in"
        compared.failed_to_compare = True
        return compared
    cell = Cell.from_dict(result["cell"])
    env = cell_environment(cell, matrix_env, env_dir=env_dir)
    arguments = file_args(run / "cells" / cell_id, result, base, Path(rootdir))
    grid = grid_verdicts(result)
    folder = work / cell_id
    folder.mkdir(parents=True, exist_ok=True)
    compared.files = len(files)
    for index, nodeid in enumerate(files):
        junit, log = folder / f"{index:04d}.xml", folder / f"{index:04d}.log"
        junit.unlink(missing_ok=True)
        code, seconds = run_bare(
            str(python),
            arguments.get(nodeid, [nodeid]),
            common,
            cwd=base,
            env=env,
            junit=junit,
            log=log,
            timeout=file_timeout,
        )
        compared.bare_seconds += seconds
        if junit.is_file():
            bare = junit_verdicts(junit, nodeid)
        else:  # died or timed out before writing its report: the file as one error
            why = "timed out" if code is None else f"exit code {code}, no JUnit report"
            bare = {nodeid: Verdict("error", why)}
        mine = {k: v for k, v in grid.items() if file_of(k) == nodeid}
        for test in sorted(set(mine) | set(bare), key=lambda t: (t != nodeid, t)):
            row = mine.get(test)
            grid_outcome = GRID_VERDICT.get(str(row["outcome"]), "?") if row else ABSENT
            bare_verdict = bare.get(test, Verdict(ABSENT))
            compared.compared += 1
            if grid_outcome == bare_verdict.outcome:
                compared.agree += 1
                if grid_outcome in ("failed", "error") and row is not None:
                    compared.failures += 1
                    grid_line = first_error_line(str(row.get("message") or ""))
                    bare_line = first_error_line(bare_verdict.message)
                    if exception_of(grid_line) == exception_of(bare_line):
                        compared.same_exception += 1
                    else:
                        compared.other_exception.append(
                            Disagreement(
                                cell_id,
                                nodeid,
                                test,
                                str(row["outcome"]),
                                bare_verdict.outcome,
                                grid_line,
                                bare_line,
                                str(log),
                            )
                        )
            else:
                compared.disagreements.append(
                    Disagreement(
                        cell_id,
                        nodeid,
                        test,
                        str(row["outcome"]) if row else ABSENT,
                        bare_verdict.outcome,
                        first_error_line(str((row or {}).get("message") or "")),
                        first_error_line(bare_verdict.message),
                        str(log),
                    )
                )
            if test == nodeid and row and row["outcome"] == "error":
                message = str(row.get("message") or "")
                types = [str(t) for t in row.get("exc_types") or []]
                line, bare_line = first_error_line(message), first_error_line(bare_verdict.message)
                compared.import_errors.append(
                    ImportErrorRow(
                        cell_id,
                        nodeid,
                        line,
                        types,
                        names_exception(message, types),
                        bare_verdict.outcome,
                        bare_line,
                        exception_of(line) is not None
                        and exception_of(line) == exception_of(bare_line),
                    )
                )
    return compared


# --- the whole run --------------------------------------------------------------------


def report(comparisons: Sequence[CellComparison]) -> str:
    rows = [
        [
            c.cell,
            c.status,
            c.files,
            c.compared,
            c.agree,
            len(c.disagreements),
            f"{c.same_exception}/{c.failures}",
            f"{c.bare_seconds:.1f}s",
            c.note,
        ]
        for c in comparisons
    ]
    total = [
        "total",
        "",
        sum(c.files for c in comparisons),
        sum(c.compared for c in comparisons),
        sum(c.agree for c in comparisons),
        sum(len(c.disagreements) for c in comparisons),
        f"{sum(c.same_exception for c in comparisons)}/{sum(c.failures for c in comparisons)}",
        f"{sum(c.bare_seconds for c in comparisons):.1f}s",
        "",
    ]
    headers = ["cell", "grid status", "files", "tests", "agree", "disagree"]
    headers += ["same exception", "bare time", "note"]
    lines = [tabulate([*rows, total], headers=headers), ""]
    disagreements = [d for c in comparisons for d in c.disagreements]
    if disagreements:
        lines.append(f"Disagreements ({len(disagreements)}):")
        for d in disagreements:
            lines.append(f"  {d.cell}: {d.test}: grid {d.grid}, bare {d.bare}")
            if d.grid_message:
                lines.append(f"    grid: {d.grid_message[:300]}")
            if d.bare_message:
                lines.append(f"    bare: {d.bare_message[:300]}")
            lines.append(f"    bare log: {d.bare_log}")
    else:
        lines.append("Disagreements: none")
    other = [d for c in comparisons for d in c.other_exception]
    if other:
        lines.append(f"Failing on both sides, with another exception ({len(other)}):")
        for d in other:
            lines.append(f"  {d.cell}: {d.test}")
            lines.append(f"    grid: {d.grid_message[:300]}")
            lines.append(f"    bare: {d.bare_message[:300]}")
    errors = [e for c in comparisons for e in c.import_errors]
    lines.append("")
    if errors:
        lines.append(f"File-level error rows (E) in the grid ({len(errors)}):")
        for e in errors:
            named = "names the exception" if e.names_exception else "DOES NOT NAME THE EXCEPTION"
            same = "the same" if e.same_exception else f"NOT THE SAME: {e.bare_message[:200]}"
            lines.append(f"  {e.cell}: {e.file}: {e.message[:300]}")
            lines.append(f"    [{named}; bare pytest: {e.bare}, {same}]")
    else:
        lines.append("File-level error rows (E) in the grid: none")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("run", type=Path, help="a run folder (results.json, cells/)")
    parser.add_argument("--cells", nargs="+", default=[], help="only these cells (ids or globs)")
    parser.add_argument("--work", type=Path, help="where bare JUnit reports and logs go")
    parser.add_argument("--json", type=Path, help="write the comparison as JSON here")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="cells compared at once")
    parser.add_argument("--file-timeout", type=float, help="seconds for one bare file")
    args = parser.parse_args(argv)

    run: Path = args.run.resolve()
    if not (run / "cells").is_dir():
        print(f"{run}: not a run folder (no cells/)", file=sys.stderr)
        return 2
    results = cell_results(run, args.cells)
    if not results:
        print(f"{run}: no cell to compare", file=sys.stderr)
        return 2
    path = matrix_path(run)
    matrix = load_matrix(path)
    timeout = args.file_timeout or matrix.file_timeout or matrix.timeout or DEFAULT_FILE_TIMEOUT
    work = (args.work or Path(tempfile.mkdtemp(prefix="bare-pytest-"))).resolve()

    def one(result: Mapping[str, Any]) -> CellComparison:
        return compare_cell(
            run,
            result,
            base=path.parent,
            matrix_env=dict(matrix.env),
            work=work,
            file_timeout=timeout,
        )

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        comparisons = list(pool.map(one, results))
    print(f"run {run} (matrix {path}); bare pytest reports and logs in {work}")
    print(report(comparisons))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"run": str(run), "work": str(work), "cells": [asdict(c) for c in comparisons]},
                indent=1,
            ),
            encoding="utf-8",
        )
    bad = any(c.disagreements or c.other_exception or c.failed_to_compare for c in comparisons)
    bad = bad or any(not e.ok for c in comparisons for e in c.import_errors)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
