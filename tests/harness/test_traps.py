"""Silent traps, each said in one line with the right exit code, before anything installs."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat.harness.commands import cli


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "tests").mkdir(exist_ok=True)
    (tmp_path / "tests" / "test_x.py").write_text("def test_x(): pass\n", encoding="utf-8")
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(f'[matrix]\ntests = ["tests"]\n{body}', encoding="utf-8")
    return matrix


@pytest.mark.parametrize("shadow", ["compat.py", "compat"])
def test_a_compat_module_beside_the_matrix_is_refused_before_any_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shadow: str
) -> None:
    matrix = write(tmp_path, '[[torch]]\nversion = "2.8.0"\n')
    if shadow == "compat":
        (tmp_path / "compat").mkdir()
    else:
        (tmp_path / "compat.py").write_text("X = 1\n", encoding="utf-8")
    code = cli.main(["matrix", "--matrix", str(matrix), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert f"{tmp_path / shadow} shadows torch-compat-matrix's package 'compat'" in err[0]
    assert not (tmp_path / "run").exists()


def test_an_entry_that_yields_no_cell_is_refused_under_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (
        'strict = true\n[[torch]]\nversion = "2.8.0"\n'
        '[[torch]]\nversion = "2.9.0"\nstacks = ["torchao"]\n'
    )
    matrix = write(tmp_path, body)
    code = cli.main(["matrix", "--matrix", str(matrix), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert f"{matrix}: torch[1].stacks: ['torchao'] yields no cell" in err[0]


def test_an_entry_that_yields_no_cell_is_a_warning_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = '[[torch]]\nversion = "2.8.0"\n[[torch]]\nversion = "2.9.0"\nstacks = ["torchao"]\n'
    matrix = write(tmp_path, body)
    cli.main(["matrix", "--matrix", str(matrix), "--out", str(tmp_path / "run"), "-j", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"compat: warning: {matrix}: torch[1].stacks: ['torchao'] yields")
    assert err[1].startswith("compat: error: -j 0")  # the run goes on to its own checks


def test_the_matrix_file_is_found_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, '[[torch]]\nversion = "2.8.0"\n')
    (tmp_path / ".git").mkdir()  # the search stops at the top of the work tree
    deep = tmp_path / "tests" / "deeper"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert cli.main(["plan", "--ids"]) == 0
    assert capsys.readouterr().out.split() == ["torch2.8.0-torch.ao-py3.11"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli._parser().parse_args(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("torch-compat-matrix ")


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        ("torch2.8.0", "did you mean the glob 'torch2.8.0-*'? it names 2 cell(s): "),
        ("torch2.8.1-torch.ao-py3.11", "did you mean 'torch2.8.0-torch.ao-py3.11'?"),
    ],
)
def test_cells_naming_no_cell_suggests_the_glob_or_the_nearest_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], given: str, hint: str
) -> None:
    matrix = write(tmp_path, '[[torch]]\nversion = "2.8.0"\ntorchao = "0.13.0"\n')
    out = tmp_path / "run"
    code = cli.main(["matrix", "--matrix", str(matrix), "--out", str(out), "--cells", given])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert f"no cell {given!r} in this matrix ({hint}" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("cells", [[], ["--cells", "torch2.11.0-torch.ao*"]])
def test_a_run_in_which_no_cell_is_applicable_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cells: list[str]
) -> None:
    """Not a green run of nothing: every chosen cell is ruled out, so nothing would run."""
    body = '[[torch]]\nversion = "2.11.0"\nstacks = ["torch.ao"]\n'
    if cells:
        body += '[[torch]]\nversion = "2.8.0"\nstacks = ["torch.ao"]\n'
    matrix = write(tmp_path, body)
    out = tmp_path / "run"
    code = cli.main(["matrix", "--matrix", str(matrix), "--out", str(out), *cells])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert "none of the 1 cell(s) chosen is applicable, nothing would run: " in err[0]
    assert "torch.ao pt2e was removed in torch 2.11" in err[0]
    assert not out.exists()
