from __future__ import annotations

from compat.harness.results.gate import EXIT_INFRA, EXIT_OK, EXIT_UNEXPECTED, exit_code
from compat.harness.results.model import CellStatus

from .factories import cell_result


def test_all_expected_is_zero() -> None:
    assert (
        exit_code([cell_result("2.8.0"), cell_result("2.13.0", status=CellStatus.NOT_APPLICABLE)])
        == EXIT_OK
    )


def test_unexpected_wins_over_infra() -> None:
    assert (
        exit_code(
            [
                cell_result("2.8.0", status=CellStatus.INSTALL_FAILED),
                cell_result("2.9.0", status=CellStatus.CRASHED),
            ]
        )
        == EXIT_UNEXPECTED
    )


def test_infra_only_is_three() -> None:
    assert (
        exit_code([cell_result("2.8.0"), cell_result("2.9.0", status=CellStatus.INSTALL_FAILED)])
        == EXIT_INFRA
    )


def test_non_gating_cells_never_change_the_code() -> None:
    assert (
        exit_code(
            [cell_result("2.8.0"), cell_result("2.16.0", status=CellStatus.FAILED, gating=False)]
        )
        == EXIT_OK
    )


def test_regressions_fail_the_gate() -> None:
    assert exit_code([cell_result("2.8.0")], regressions=1) == EXIT_UNEXPECTED
