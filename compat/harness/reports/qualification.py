"""A qualification verdict as console text, as Markdown for a release tracker, as HTML,
and the run's documents of its own (``qualification.md``, ``qualification.json``), as
writers beside ``documents.WRITERS``."""

from __future__ import annotations

import html
import json
from pathlib import Path

from compat.harness.files import atomic_write_text
from compat.harness.redact import redact
from compat.harness.reports.context import ReportContext, Writer
from compat.harness.results.qualification import Qualification

__all__ = [
    "MARKDOWN",
    "qualification_writers",
    "render_qualification_html",
    "render_qualification_markdown",
    "render_qualification_text",
]

MARKDOWN = "qualification.md"  # what the release tracker gets
JSON = "qualification.json"


def qualification_writers(q: Qualification) -> dict[str, Writer]:
    """The verdict's own documents, for ``write_reports(..., writers=...)``."""

    def markdown(run_dir: Path, report: ReportContext) -> Path:
        atomic_write_text(run_dir / MARKDOWN, render_qualification_markdown(q))
        return run_dir / MARKDOWN

    def as_json(run_dir: Path, report: ReportContext) -> Path:
        atomic_write_text(run_dir / JSON, json.dumps(q.to_dict(), indent=2) + "\n")
        return run_dir / JSON

    return {"qualification markdown": markdown, "qualification json": as_json}


def _sections(q: Qualification) -> list[tuple[str, list[str]]]:
    return [
        ("Regressions (pass on the reference, fail on the candidate)", q.regressions),
        ("Candidate cells not passing (strict expectations)", q.candidate_problems),
        ("Quantization tags lost", q.lost_tags),
        ("Fixes (fail on the reference, pass on the candidate)", q.fixes),
        ("Porting drift (findings: what changed in metadata; not a failure)", q.drift),
        ("No verdict for (infrastructure)", q.infrastructure),
    ]


def _headline(q: Qualification) -> str:
    return (
        f"torch {q.candidate} against {q.reference}: {q.verdict} "
        f"({len(q.regressions)} regression(s), {len(q.fixes)} fix(es), "
        f"{len(q.drift)} drift finding(s); columns: {', '.join(q.columns) or 'none'})"
    )


def render_qualification_text(q: Qualification) -> str:
    lines = [_headline(q)]
    for title, items in _sections(q):
        if items:
            lines += ["", f"{title}:", *(f"  {item}" for item in items)]
    return redact("\n".join(lines))  # the run's last line gives the exit code


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_qualification_markdown(q: Qualification) -> str:
    """What a release manager pastes into the release tracker."""
    mark = {"QUALIFIED": "✅", "NOT QUALIFIED": "❌"}.get(q.verdict, "⚠️")
    lines = [
        f"## {mark} torch {q.candidate}: {q.verdict}",
        "",
        f"Qualified against torch {q.reference} by torch-compat-matrix, strict "
        f"expectations, columns: {', '.join(q.columns) or 'none'}.",
        "",
        "| | count |",
        "|---|---|",
        f"| regressions | {len(q.regressions)} |",
        f"| fixes | {len(q.fixes)} |",
        f"| quantization tags lost | {len(q.lost_tags)} |",
        f"| porting drift findings | {len(q.drift)} |",
        f"| columns without a verdict | {len(q.infrastructure)} |",
    ]
    for title, items in _sections(q):
        if items:
            lines += ["", f"### {title}", "", *(f"- `{_md(i)}`" for i in items)]
    return redact("\n".join(lines) + "\n")


def render_qualification_html(q: Qualification) -> str:
    def e(text: str) -> str:
        return html.escape(redact(text), quote=True)

    klass = {"QUALIFIED": "ok", "NOT QUALIFIED": "bad"}.get(q.verdict, "infra")
    parts = [
        f'<h2>Release qualification</h2><p><span class="verdict {klass}">'
        f"{e(q.verdict)}</span> {e(_headline(q))}</p>"
    ]
    for title, items in _sections(q):
        if items:
            parts.append(
                f"<h3>{e(title)}</h3><ul>"
                + "".join(f"<li><code>{e(i)}</code></li>" for i in items)
                + "</ul>"
            )
    return "".join(parts)
