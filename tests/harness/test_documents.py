"""results.json against its JSON Schema, matrix.html in a real browser, the merged JUnit."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from compat.harness.files import atomic_write_text
from compat.harness.reports.console import render_console
from compat.harness.reports.context import ReportContext
from compat.harness.reports.documents import WRITERS, write_reports
from compat.harness.reports.grid import build_grid
from compat.harness.reports.html import render_html
from compat.harness.reports.results_json import run_document
from compat.harness.results.baseline import BaselineDiff, diff_runs
from compat.harness.results.model import CellStatus, InstallRecord, Outcome, WheelRecord

from .factories import cell_result

SCHEMA = Path(__file__).parents[2] / "compat" / "harness" / "results" / "results.schema.json"
HOSTILE = '<script>alert("x")</script> & </pre><img src=x onerror=alert(1)>'


def sample() -> list:
    failed = cell_result(
        "2.8.0",
        outcomes={"test_a": Outcome.PASSED, "test_b": Outcome.FAILED},
        status=CellStatus.FAILED,
        reason="1 test(s) failed unexpectedly",
        routes={"pt2e": "torch.ao", "capture": HOSTILE},
    )
    failed.tests[1].message = HOSTILE
    failed.install = InstallRecord(
        reused=False,
        wheels={
            "torch": WheelRecord(
                file="torch-2.8.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                sha256="ab" * 32,
                url="https://user:secret@mirror.invalid/t.whl",
                index="https://mirror.invalid",
            )
        },
    )
    return [
        failed,
        cell_result(
            "2.13.0",
            "torchao",
            torchao="0.18.0",
            outcomes={"test_a": Outcome.PASSED, "test_b": Outcome.XFAILED},
        ),
        cell_result("2.13.0", status=CellStatus.NOT_APPLICABLE, reason="removed in 2.11"),
        cell_result(
            "2.9.0",
            status=CellStatus.INSTALL_FAILED,
            reason="index-unreachable: https://***@x.invalid",
        ),
    ]


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_results_json_matches_its_schema(tmp_path: Path) -> None:
    results = sample()
    diff = diff_runs({}, results)
    write_reports(
        tmp_path, build_grid(results), run_id="r1", matrix={"name": "m"}, exit_code=1, diff=diff
    )
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    validator().validate(doc)
    assert "secret" not in (tmp_path / "results.json").read_text(encoding="utf-8")


def test_schema_rejects_what_it_should() -> None:
    doc = run_document(sample(), run_id="r", matrix={"name": "m"}, exit_code=1)
    doc["cells"][0]["status"] = "exploded"
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(doc)


def test_html_escapes_everything_that_came_from_outside() -> None:
    page = render_html(build_grid(sample()), title=HOSTILE, exit_code=1)
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;script&gt;" in page
    assert "secret" not in page
    # every failing symbol links to its message
    assert 'href="#torch2.8.0-torch.ao-py3.11--tests_core_test_metadata_porting.py' in page
    # a long route is a letter in the grid and spelled out, escaped, in its title
    assert f'title="{html.escape(HOSTILE)}">A</td>' in page


def test_merged_junit_has_a_suite_per_cell(tmp_path: Path) -> None:
    results = sample()
    cell_dir = tmp_path / "cells" / results[0].cell_id
    cell_dir.mkdir(parents=True)
    (cell_dir / "junit.xml").write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="2" failures="1">'
        '<testcase classname="t" name="test_a"/><testcase classname="t" name="test_b">'
        '<failure message="boom"/></testcase></testsuite></testsuites>',
        encoding="utf-8",
    )
    write_reports(tmp_path, build_grid(results), run_id="r1", matrix={"name": "m"}, exit_code=1)
    root = ET.parse(tmp_path / "junit.xml").getroot()
    names = [s.get("name") for s in root.iter("testsuite")]
    assert names == [r.cell_id for r in results]
    errors = [s for s in root.iter("testsuite") if s.get("errors") == "1"]
    assert [s.get("name") for s in errors] == ["torch2.9.0-torch.ao-py3.11"]


def test_a_writer_in_the_table_is_all_a_new_format_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seam: one more entry in WRITERS, and write_reports writes its file beside the rest,
    drawn from the same grid, through the same atomic, redacted write."""
    seen: list[ReportContext] = []

    def write_text(run_dir: Path, report: ReportContext) -> Path:
        seen.append(report)
        path = run_dir / "summary.txt"
        atomic_write_text(path, render_console(report.grid, width=100))
        return path

    monkeypatch.setitem(WRITERS, "text", write_text)
    grid = build_grid(sample())
    paths = write_reports(tmp_path, grid, run_id="r1", matrix={"name": "m"}, exit_code=1)
    assert list(paths) == ["json", "markdown", "html", "junit", "drift", "text"]
    assert paths["text"] == tmp_path / "summary.txt"
    assert "torch2.9.0-torch.ao-py3.11: install-failed" in paths["text"].read_text(encoding="utf-8")
    (report,) = seen
    assert report.grid is grid
    assert (report.title, report.exit_code) == ("m", 1)
    assert all(
        (tmp_path / name).is_file()
        for name in ("results.json", "summary.md", "matrix.html", "junit.xml", "drift.svg")
    )


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (.ci/run installs it)")
def test_html_renders_in_a_headless_browser(tmp_path: Path) -> None:
    diff = BaselineDiff(
        "20261120-030000-m/results.json",
        regressions=["torch2.8.0-torch.ao-py3.11: t.py::test_b: passed -> failed"],
        fixes=["torch2.13.0-torchao0.18.0-py3.11: t.py::test_c: failed -> passed"],
        appeared=["torch2.13.0-torch.ao-py3.11"],
        vanished=["torch2.5.1-torch.ao-py3.11"],
    )
    write_reports(
        tmp_path, build_grid(sample()), run_id="r1", matrix={"name": "m"}, exit_code=1, diff=diff
    )
    shot = tmp_path / "matrix.png"
    subprocess.run(
        [*_chromium(tmp_path), f"--screenshot={shot}", (tmp_path / "matrix.html").as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 900)
    assert len(data) > 20_000  # a rendered grid, not a blank page
    # The baseline diff as the browser built it (its DOM after parsing), every section.
    dom = subprocess.run(
        [*_chromium(tmp_path), "--dump-dom", (tmp_path / "matrix.html").as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    section = dom.split('<section id="baseline-diff">', 1)[1].split("</section>", 1)[0]
    assert "Against 20261120-030000-m/results.json" in section
    for said in (
        "regressions: 1",
        "t.py::test_b: passed -&gt; failed",
        "fixed: 1",
        "cells that appeared: 1",
        "torch2.13.0-torch.ao-py3.11",
        "cells that vanished: 1",
        "torch2.5.1-torch.ao-py3.11",
    ):
        assert said in section, said
    assert "<details open=" in section  # the regressions are open


def _chromium(tmp_path: Path) -> list[str]:
    return [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,900",
    ]
