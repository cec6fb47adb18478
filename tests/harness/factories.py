"""Small builders of cell results for the report and gate tests."""

from __future__ import annotations

from compat.harness.config.matrix import Cell
from compat.harness.results.model import CellResult, CellStatus, Outcome, TestResult

NODE = "tests/core/test_metadata_porting.py::TestMetaDataPorting::"


def cell_result(
    torch: str,
    stack: str = "torch.ao",
    status: CellStatus = CellStatus.PASSED,
    outcomes: dict[str, Outcome] | None = None,
    *,
    torchao: str | None = None,
    python: str = "3.11",
    gating: bool = True,
    reason: str | None = None,
    routes: dict[str, str] | None = None,
) -> CellResult:
    ao = f"torchao{torchao}" if stack == "torchao" else "torch.ao"
    cell = Cell(python, torch, stack, torchao, gating=gating)
    tests = [TestResult(NODE + name, outcome) for name, outcome in (outcomes or {}).items()]
    fingerprint = {"torch": f"{torch}+cpu"} if tests else {}
    return CellResult(
        f"torch{torch}-{ao}-py{python}",
        cell,
        status,
        reason,
        gating,
        tests=tests,
        fingerprint=fingerprint,
        routes=routes or {},
        timings={"install": 1.5, "tests": 4.25} if tests else {},
    )
