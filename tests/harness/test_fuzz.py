"""Property tests of the readers through ``cli.main`` (see ``fuzzing``): the matrix
loader, the report reader (run folders, merged in both orders with a twin, resumed from)
and the baseline reader; and a bisection's saved state. A few hundred cases here;
``python benchmarks/fuzz.py --matrices 10000 --runs 2000`` runs the same properties at
scale and prints its figures."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from .fuzzing import (
    RunFolder,
    bisect_states,
    check_bisect_state,
    check_matrix_file,
    check_run_folder,
    matrix_files,
    run_folders,
)

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


# A failing case can be megabytes: hypothesis warns about its size while reporting it.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


@settings(FUZZ, max_examples=150)
@given(matrix_files())
def test_any_matrix_file_is_loaded_or_refused_in_one_line(data: bytes) -> None:
    check_matrix_file(data)


@settings(FUZZ, max_examples=50)
@given(run_folders())
def test_any_run_folder_and_baseline_is_reported_or_refused(spec: RunFolder) -> None:
    check_run_folder(spec)


@settings(FUZZ, max_examples=200)
@given(bisect_states())
def test_any_bisection_state_is_resumed_or_refused(data: bytes) -> None:
    check_bisect_state(data)
