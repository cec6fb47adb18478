"""``nox -s qualify``: is a torch release candidate (or nightly) fit to ship for pt2e users?

Both columns, the candidate and the reference, run for every stack and Python the
matrix declares for them (envs are reused like any cell's), with strict expectations.
The comparison (:mod:`compat.harness.results.qualification`) gives one verdict; it is
printed, written as ``qualification.md`` for the release tracker and ``qualification.json``,
and shown on top of the run's ``matrix.html`` and ``summary.md``. Each run gets a new
folder, ``reports/<stamp>-qualify-<candidate>-vs-<reference>`` (or ``--out``, a new
or empty folder).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from compat.harness.commands.options import RunOptions
from compat.harness.commands.pipeline import RUN_STEPS, Run, Step, execute, judge
from compat.harness.config.applicability import not_applicable_reason
from compat.harness.config.matrix import NIGHTLY_TORCHAO, RELEASE, Cell, Matrix
from compat.harness.errors import UsageError
from compat.harness.reports.qualification import MARKDOWN as QUALIFICATION_MARKDOWN
from compat.harness.reports.qualification import (
    qualification_writers,
    render_qualification_html,
    render_qualification_markdown,
    render_qualification_text,
)
from compat.harness.results.qualification import Column, qualify

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


Column3 = tuple[str, Cell, Cell]  # (label, reference cell, candidate cell)


def qualification_columns(matrix: Matrix, request: QualifyRequest) -> list[Column3]:
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


def _check_request(request: QualifyRequest) -> None:
    if request.candidate == request.reference:
        raise UsageError(
            f"--candidate {request.candidate} and --reference {request.reference} are the "
            "same version: a release qualifies against another one"
        )


def _verdict(columns: Sequence[Column3], request: QualifyRequest) -> Step:
    """The step after ``judge``: the columns compared, the verdict's exit code (an
    interruption's 130 stays), its documents and its text."""

    def verdict(run: Run) -> None:
        by_id = {r.cell_id: r for r in run.results}
        found = qualify(
            [Column(label, by_id[ref.id], by_id[cand.id]) for label, ref, cand in columns],
            candidate=request.candidate,
            reference=request.reference,
        )
        if not run.interrupted:
            run.code = found.exit_code
        run.matrix_info = {"name": f"qualify {run.run_id}"}  # as results.json always named it
        run.appendix = (render_qualification_markdown(found), render_qualification_html(found))
        run.writers = qualification_writers(found)
        run.notes = [
            render_qualification_text(found),
            f"release tracker text: {run.folder / QUALIFICATION_MARKDOWN}",
        ]

    return verdict


def run_qualification(matrix: Matrix, request: QualifyRequest) -> int:
    """Run both columns, compare them, write and print the verdict; its exit code.

    The steps are a matrix run's (:data:`RUN_STEPS`: the same checks of ``--out`` and
    ``-j``, the disk estimate, a new folder under ``reports/`` per run), strict, with the
    verdict after ``judge``; ``reports/latest`` stays the matrix's.
    """
    _check_request(request)
    matrix = dataclasses.replace(matrix, strict=True)  # qualification is strict
    columns = qualification_columns(matrix, request)
    cells = list(dict.fromkeys(c for _, ref, cand in columns for c in (ref, cand)))

    def headline(run: Run) -> str:
        return (
            f"compat: qualifying torch {request.candidate} ({request.channel}) against "
            f"{request.reference}: {len(columns)} column(s), {len(cells)} cells -> {run.folder}"
        )

    run = Run(
        matrix,
        cells,
        RunOptions(out=request.out, jobs=request.jobs),
        name=_slug(f"qualify-{request.candidate}-vs-{request.reference}"),
        latest=False,
        headline=headline,
        interrupted_note="compat: interrupted; the verdict covers the finished cells only",
        check_expectations=False,
        resumable=False,
    )
    at = RUN_STEPS.index(judge) + 1
    steps = (*RUN_STEPS[:at], _verdict(columns, request), *RUN_STEPS[at:])
    return execute(steps, run)


def _slug(text: str) -> str:
    """A folder name from versions (a nightly's ``+cpu`` included): ``[A-Za-z0-9._+-]``."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text)[:150]
