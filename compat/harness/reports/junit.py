"""One merged JUnit file for the run: each cell's suite, renamed after the cell.

Cells that never ran tests (install failed, crashed before collection, not applicable)
still get a suite with one test case that carries their status, so a CI test view shows
every column of the grid.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from compat.harness.files import atomic_write_text
from compat.harness.redact import redact
from compat.harness.reports.context import ReportContext
from compat.harness.results.model import CellResult, CellStatus
from compat.harness.results.run_folder import cell_dir

__all__ = ["merge_junit", "write"]


def _status_suite(result: CellResult) -> ET.Element:
    suite = ET.Element(
        "testsuite", name=result.cell_id, tests="1", failures="0", errors="0", skipped="0"
    )
    case = ET.SubElement(suite, "testcase", classname=result.cell_id, name="cell status")
    message = redact(f"{result.status.value}: {result.reason or ''}")
    if result.status in (CellStatus.NOT_APPLICABLE, CellStatus.SKIPPED, CellStatus.PASSED):
        ET.SubElement(case, "skipped", message=message)
        suite.set("skipped", "1")
    else:
        error = ET.SubElement(case, "error", message=message)
        error.text = redact(result.log_excerpt or "")
        suite.set("errors", "1")
    return suite


MAX_DEPTH = 64  # pytest's files are 4 deep; a deeper one is not a cell's JUnit


def _depth(root: ET.Element) -> int:
    """How deep the tree goes (without recursion: the file may be hostile)."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack += [(child, depth + 1) for child in element]
    return deepest


def merge_junit(run_dir: Path, results: Sequence[CellResult]) -> Path:
    root = ET.Element("testsuites", name=run_dir.name)
    for result in results:
        path = cell_dir(run_dir, result.cell_id) / "junit.xml"
        suites: list[ET.Element] = []
        if path.is_file():
            try:
                tree = ET.parse(path).getroot()
            except (ET.ParseError, OSError, RecursionError, ValueError):
                tree = None
            if tree is not None and _depth(tree) <= MAX_DEPTH:
                suites = (
                    [tree]
                    if tree.tag == "testsuite"
                    else [s for s in tree.iter("testsuite") if s.find(".//testsuite") is None]
                )
        for suite in suites:
            suite.set("name", result.cell_id)
            for case in suite.iter("testcase"):
                case.set("classname", f"{result.cell_id}.{case.get('classname', '')}")
            root.append(suite)
        if not suites or result.status not in (CellStatus.PASSED, CellStatus.FAILED):
            root.append(_status_suite(result))
    out = run_dir / "junit.xml"
    # Written as text, so it passes the same redaction as every other document: the cells'
    # own JUnit files are pytest's, and carry whatever the tests printed.
    text = ET.tostring(root, encoding="unicode", xml_declaration=False)
    atomic_write_text(out, "<?xml version='1.0' encoding='utf-8'?>\n" + text)
    return out


def write(run_dir: Path, report: ReportContext) -> Path:
    return merge_junit(run_dir, report.results)
