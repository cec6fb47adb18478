from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.config.matrix import load_matrix
from compat.harness.errors import ConfigError

WriteMatrix = Callable[..., Path]

BASIC = """
[matrix]
python = ["3.11"]

[[torch]]
version = "2.8.0"
torchao = "0.13.0"

[[torch]]
version = "2.13.0"
torchao = "0.18.0"
"""


def test_product_of_axes_with_pairing(write_matrix: WriteMatrix) -> None:
    matrix = load_matrix(write_matrix(BASIC))
    assert [c.id for c in matrix.cells] == [
        "torch2.8.0-torch.ao-py3.11",
        "torch2.8.0-torchao0.13.0-py3.11",
        "torch2.13.0-torch.ao-py3.11",
        "torch2.13.0-torchao0.18.0-py3.11",
    ]
    by_id = {c.id: c for c in matrix.cells}
    assert by_id["torch2.8.0-torch.ao-py3.11"].torchao is None
    assert by_id["torch2.13.0-torch.ao-py3.11"].not_applicable == (
        "torch.ao pt2e was removed in torch 2.11 (no torch/ao/quantization/quantize_pt2e.py)"
    )
    assert by_id["torch2.8.0-torchao0.13.0-py3.11"].applicable


def test_cells_by_id_or_glob_in_matrix_order(write_matrix: WriteMatrix) -> None:
    matrix = load_matrix(write_matrix(BASIC))
    picked = matrix.cells_matching(["*torchao*", "torch2.8.0-torch.ao-py3.11"])
    assert [c.id for c in picked] == [
        "torch2.8.0-torch.ao-py3.11",
        "torch2.8.0-torchao0.13.0-py3.11",
        "torch2.13.0-torchao0.18.0-py3.11",
    ]
    with pytest.raises(
        ConfigError,
        match=r"no cell 'torch2.8.0-torch.ao-py3.1' in this "
        r"matrix \(did you mean 'torch2.8.0-torch.ao-py3.11'",
    ):
        matrix.cells_matching(["torch2.8.0-torch.ao-py3.1"])


def test_reruns_bring_their_plugin_into_every_cell(write_matrix: WriteMatrix) -> None:
    plain = load_matrix(write_matrix(BASIC))
    assert (plain.reruns, "pytest-rerunfailures" in plain.cell_deps) == (0, False)
    rerun = load_matrix(
        write_matrix(BASIC.replace('python = ["3.11"]', 'python = ["3.11"]\nreruns = 2'))
    )
    assert rerun.reruns == 2
    assert rerun.cell_deps == (*rerun.deps, "pytest-rerunfailures")


def test_entry_without_torchao_makes_no_torchao_cell(write_matrix: WriteMatrix) -> None:
    matrix = load_matrix(write_matrix('[[torch]]\nversion = "2.5.1"\n'))
    assert [c.id for c in matrix.cells] == ["torch2.5.1-torch.ao-py3.11"]


def test_exclude_and_include(write_matrix: WriteMatrix) -> None:
    text = (
        BASIC
        + """
[[exclude]]
torch = ">=2.9"
stack = "torch.ao"

[[include]]
python = "3.12"
torch = "2.13.0"
stack = "torchao"
torchao = "0.18.0"
"""
    )
    ids = [c.id for c in load_matrix(write_matrix(text)).cells]
    assert "torch2.13.0-torch.ao-py3.11" not in ids
    assert ids[-1] == "torch2.13.0-torchao0.18.0-py3.12"
    assert "torch2.8.0-torch.ao-py3.11" in ids


def test_bare_version_in_selector_means_series(write_matrix: WriteMatrix) -> None:
    text = BASIC + '\n[[exclude]]\ntorch = "2.8"\n'
    ids = [c.id for c in load_matrix(write_matrix(text)).cells]
    assert not any(i.startswith("torch2.8.0") for i in ids)


def test_expectations_match_test_and_range(write_matrix: WriteMatrix) -> None:
    text = (
        BASIC
        + """
[[expect]]
test = "test_metadata_porting_for_dq"
torch = "<2.10"
stack = "torch.ao"
reason = "known"
raises = "AssertionError"
link = "https://example.invalid/1"
"""
    )
    matrix = load_matrix(write_matrix(text))
    cells = {c.id: c for c in matrix.cells}
    node = "tests/core/test_metadata_porting.py::TestMetaDataPorting::test_metadata_porting_for_dq"
    assert matrix.expectation_for(cells["torch2.8.0-torch.ao-py3.11"], node) is not None
    assert matrix.expectation_for(cells["torch2.8.0-torchao0.13.0-py3.11"], node) is None
    assert matrix.expectation_for(cells["torch2.13.0-torch.ao-py3.11"], node) is None
    other = node.replace("for_dq", "for_two_dq")
    assert matrix.expectation_for(cells["torch2.8.0-torch.ao-py3.11"], other) is None


def test_python_without_wheels_is_not_applicable(write_matrix: WriteMatrix) -> None:
    text = '[matrix]\npython = ["3.13"]\n[[torch]]\nversion = "2.2.2"\n'
    (cell,) = load_matrix(write_matrix(text)).cells
    assert cell.not_applicable == "torch 2.2.2 has no wheel for CPython 3.13"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[matrix\n", "not valid TOML"),
        ('[matrix]\npyhton = ["3.11"]\n', "matrix.pyhton: unknown key (did you mean 'python'?)"),
        ('[[torch]]\nversion = "2.x"\n', "torch[0].version: '2.x' is not a valid version"),
        ('[[torch]]\nversoin = "2.8.0"\n', "torch[0].version: is required"),
        ("[[torch]]\nversion = 2.8\n", "torch[0].version: expected a non-empty string, got 2.8"),
        (
            '[[torch]]\nversion = "2.8.0"\nchannel = "nighty"\n',
            "torch[0].channel: unknown channel 'nighty'",
        ),
        (
            '[[torch]]\nversion = "2.8.0"\n[[exclude]]\ntorch = ">>2"\n',
            "exclude[0].torch: '>>2' is neither a version nor a version specifier",
        ),
        (
            '[matrix]\nstacks = ["tensorflow"]\n[[torch]]\nversion = "2.8.0"\n',
            "matrix.stacks: 'tensorflow' is not one of torch.ao, torchao",
        ),
        (
            '[matrix]\ntests = ["no/such/dir"]\n[[torch]]\nversion = "2.8.0"\n',
            "matrix.tests: 'no/such/dir' does not exist next to the matrix file",
        ),
        (
            '[matrix]\ntimeout = -1\n[[torch]]\nversion = "2.8.0"\n',
            "matrix.timeout: expected a positive number of seconds, got -1",
        ),
        (
            '[matrix]\nreruns = -2\n[[torch]]\nversion = "2.8.0"\n',
            "matrix.reruns: expected a whole number >= 0, got -2",
        ),
        (
            '[matrix]\nreruns = true\n[[torch]]\nversion = "2.8.0"\n',
            "matrix.reruns: expected a whole number >= 0, got True",
        ),
        ("[matrix]\n", "torch: the matrix has no cells"),
        (
            '[[torch]]\nversion = "2.8.0"\n[[torch]]\nversion = "2.8.0"\n',
            "duplicate cell 'torch2.8.0-torch.ao-py3.11'",
        ),
        ('[[torch]]\nversion = "2.8.0"\n[[expect]]\ntest = "t"\n', "expect[0].reason: is required"),
        (
            '[[torch]]\nversion = "2.8.0"\n[[expect]]\ntest = "*"\nreason = "r"\n',
            "expect[0].raises: an expectation needs `raises` (exception type) and/or `match` "
            "(regex in the failure message) (test = '*' with neither would hide any failure)",
        ),
        (
            '[[torch]]\nversion = "2.8.0"\n[[expect]]\ntest = "t"\nreason = "r"\nmatch = "("\n',
            "expect[0].match: '(' is not a valid regex",
        ),
        (
            '[[torch]]\nversion = "2.8.0"\n[[expect]]\ntest = "t"\nreason = "r"\n'
            'raises = "not a type"\n',
            "expect[0].raises: 'not a type' is not an exception type",
        ),
        (
            '[matrix]\ndeps-as-of = "yesterday"\n[[torch]]\nversion = "2.8.0"\n',
            'matrix.deps-as-of: expected "torch-release", "none" or a date, got \'yesterday\'',
        ),
        (
            '[matrix]\nstrict = "yes"\n[[torch]]\nversion = "2.8.0"\n',
            "matrix.strict: expected true or false, got 'yes'",
        ),
        ('torch = "2.8.0"\n', "torch: expected an array of tables"),
    ],
)
def test_bad_input_is_one_line_naming_file_key_value(
    write_matrix: WriteMatrix, text: str, message: str
) -> None:
    path = write_matrix(text)
    with pytest.raises(ConfigError) as info:
        load_matrix(path)
    rendered = str(info.value)
    assert "\n" not in rendered
    assert rendered.startswith(str(path))
    assert message in rendered


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_matrix(tmp_path / "nope.toml")


def test_default_matrix_is_valid_and_spans_the_eras() -> None:
    matrix = load_matrix(Path(__file__).parents[2] / "matrix.toml")
    applicable = {(c.torch, c.stack) for c in matrix.cells if c.applicable}
    for torch in ("2.5.1", "2.8.0", "2.10.0"):
        assert (torch, "torch.ao") in applicable
    for torch in ("2.8.0", "2.10.0", "2.13.0", "2.15.0"):
        assert (torch, "torchao") in applicable


def test_expectation_with_torchao_selector(write_matrix: WriteMatrix) -> None:
    text = (
        BASIC
        + """
[[expect]]
test = "*"
torch = "2.8"
torchao = "0.13.0"
raises = "AttributeError"
reason = "pairing broken"

[[expect]]
test = "test_x"
torchao = "none"
match = "boom"
reason = "only without torchao"
"""
    )
    matrix = load_matrix(write_matrix(text))
    cells = {c.id: c for c in matrix.cells}
    paired, plain = cells["torch2.8.0-torchao0.13.0-py3.11"], cells["torch2.8.0-torch.ao-py3.11"]
    assert matrix.expectation_for(paired, "t.py::test_any").reason == "pairing broken"
    assert matrix.expectation_for(plain, "t.py::test_any") is None
    assert matrix.expectation_for(plain, "t.py::test_x").reason == "only without torchao"
    assert matrix.expectation_for(paired, "t.py::test_x").reason == "pairing broken"


def test_a_rerun_cell_spares_only_its_own_expected_failures(
    write_matrix: WriteMatrix, tmp_path: Path
) -> None:
    from compat.harness.execute.cell_runner import _common_args

    matrix = load_matrix(
        write_matrix("""
        [matrix]
        reruns = 2

        [[torch]]
        version = "2.8.0"

        [[expect]]
        test = "test_old_*"
        torch = "2.8"
        raises = "ValueError"
        reason = "fails on 2.8"

        [[expect]]
        test = "test_new"
        torch = ">=2.9"
        raises = "ValueError"
        reason = "fails from 2.9"
        """)
    )
    cmd = _common_args(matrix, matrix.cells[0])
    assert cmd[cmd.index("--reruns") + 1] == "2"
    assert [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--compat-no-rerun"] == ["test_old_*"]
