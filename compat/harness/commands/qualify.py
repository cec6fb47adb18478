"""``nox -s qualify``: is a torch release candidate (or nightly) fit to ship for pt2e users?

Both columns, the candidate and the reference, run for every stack and Python the
matrix declares for them (envs are reused like any cell's), with strict expectations.
The comparison (:mod:`compat.harness.results.qualification`) gives one verdict; it is
printed, written as ``qualification.md`` for the release tracker and ``qualification.json``,
and shown on top of the run's ``matrix.html`` and ``summary.md``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from compat.harness.commands.matrix import console_width
from compat.harness.config.applicability import not_applicable_reason
from compat.harness.config.matrix import NIGHTLY_TORCHAO, RELEASE, Cell, Matrix
from compat.harness.errors import UsageError
from compat.harness.execute.cell_runner import RunInterrupted, default_jobs, run_cells
from compat.harness.execute.progress import make_progress
from compat.harness.files import atomic_write_text
from compat.harness.install.pipconfig import read_pip_config
from compat.harness.locations import envs_root
from compat.harness.reports.console import render_console
from compat.harness.reports.documents import write_reports
from compat.harness.reports.grid import build_grid
from compat.harness.reports.qualification import (
    render_qualification_html,
    render_qualification_markdown,
    render_qualification_text,
)
from compat.harness.results.classify import flag_missing_tests
from compat.harness.results.gate import EXIT_INTERRUPTED
from compat.harness.results.qualification import Column, qualify
from compat.harness.results.run_folder import RunManifest

__all__ = ["QualifyRequest", "qualification_columns", "run_qualification"]


@dataclass(frozen=True)
class QualifyRequest:
    candidate: str
    reference: str
    channel: str = RELEASE
    out: str | None = None
    jobs: int | None = None


def _with(cell: Cell, **changes: object) -> Cell:
    cell = dataclasses.replace(cell, **changes, not_applicable=None)
    reason = not_applicable_reason(
        python=cell.python,
        torch=cell.torch,
        stack=cell.stack,
        torchao=cell.torchao,
        declared=cell.declared,
    )
    return dataclasses.replace(cell, not_applicable=reason)


def qualification_columns(matrix: Matrix, request: QualifyRequest) -> list[tuple[str, Cell, Cell]]:
    """(label, reference cell, candidate cell) for each stack and Python of either version.

    A column takes the matrix's own cell where it declares one (its torchao pairing
    included), else the other version's cell with the torch swapped; a column that is
    not applicable on either side (torch.ao on 2.11+) is left out.
    """
    if request.channel not in matrix.channels:
        raise UsageError(
            f"--channel {request.channel!r} is not a channel of {matrix.path} "
            f"(known: {', '.join(matrix.channels)})"
        )
    nightly = matrix.channels[request.channel].is_nightly
    mine = [c for c in matrix.cells if c.torch in (request.reference, request.candidate)]
    sides = sorted({(c.stack, c.python) for c in (mine or matrix.cells)})
    columns = []
    for stack, python in sides:

        def declared(
            torch: str, channel: str, stack: str = stack, python: str = python
        ) -> Cell | None:
            return next(
                (
                    c
                    for c in matrix.cells
                    if (c.torch, c.channel, c.stack, c.python) == (torch, channel, stack, python)
                ),
                None,
            )

        ref = declared(request.reference, RELEASE)
        cand = declared(request.candidate, request.channel)
        if ref is None and cand is None:
            template = next(c for c in matrix.cells if (c.stack, c.python) == (stack, python))
            ref = _with(template, torch=request.reference, channel=RELEASE, url=None)
        if ref is None:
            assert cand is not None
            ref = _with(cand, torch=request.reference, channel=RELEASE, url=None)
        if cand is None:
            torchao = ref.torchao
            if stack == "torchao" and nightly:
                torchao = NIGHTLY_TORCHAO
            cand = _with(
                ref,
                torch=request.candidate,
                channel=request.channel,
                torchao=torchao,
                gating=True,
                url=None,
            )
        if ref.applicable and cand.applicable:
            columns.append((f"{stack} py{python}", ref, cand))
    if not columns:
        raise UsageError(
            f"no stack and Python of {matrix.path} applies to both torch "
            f"{request.reference} and {request.candidate}"
        )
    return columns


def run_qualification(matrix: Matrix, request: QualifyRequest) -> int:
    """Run both columns, compare them, write and print the verdict; its exit code."""
    matrix = dataclasses.replace(matrix, strict=True)  # qualification is strict
    columns = qualification_columns(matrix, request)
    cells = list(dict.fromkeys(c for _, ref, cand in columns for c in (ref, cand)))
    run_dir = Path(
        request.out or f"reports/qualify-{request.candidate}-vs-{request.reference}"
    ).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_dir.name
    RunManifest.for_matrix(run_id, matrix, cells, None).write(run_dir)
    jobs = request.jobs if request.jobs and request.jobs > 0 else default_jobs()
    print(
        f"compat: qualifying torch {request.candidate} ({request.channel}) against "
        f"{request.reference}: {len(columns)} column(s), {len(cells)} cells -> {run_dir}",
        flush=True,
    )
    interrupted = False
    progress = make_progress([c.id for c in cells])
    try:
        results = run_cells(
            cells,
            matrix,
            run_dir=run_dir,
            envs_root=envs_root(),
            pip_config=read_pip_config(),
            jobs=jobs,
            progress=progress,
        )
    except RunInterrupted as stop:
        results, interrupted = stop.results, True
    finally:
        progress.close()
    for result in flag_missing_tests(results):
        result.write(run_dir / "cells" / result.cell_id / "result.json")
    by_id = {r.cell_id: r for r in results}
    verdict = qualify(
        [Column(label, by_id[ref.id], by_id[cand.id]) for label, ref, cand in columns],
        candidate=request.candidate,
        reference=request.reference,
    )
    code = EXIT_INTERRUPTED if interrupted else verdict.exit_code
    markdown = render_qualification_markdown(verdict)
    grid = build_grid(results)
    write_reports(
        run_dir,
        grid,
        run_id=run_id,
        matrix={"name": f"qualify {run_id}"},
        exit_code=code,
        appendix=(markdown, render_qualification_html(verdict)),
    )
    atomic_write_text(run_dir / "qualification.md", markdown)
    atomic_write_text(
        run_dir / "qualification.json", json.dumps(verdict.to_dict(), indent=2) + "\n"
    )
    print()
    print(render_console(grid, width=console_width()))
    print()
    print(render_qualification_text(verdict))
    print(f"release tracker text: {run_dir / 'qualification.md'}")
    if interrupted:
        print("compat: interrupted; the verdict covers the finished cells only", file=sys.stderr)
    return code
