"""Bad input through the real command line: one line on stderr naming file, key and value,
exit code 2, no traceback, no credential, and nothing created (no run folder, no link)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.commands import cli
from compat.harness.commands import probe as probe_command
from compat.harness.install.uv_cli import InstallFailed

WriteMatrix = Callable[..., Path]
SECRET = "s3cr3t-T0KEN"
ONE_CELL = '[[torch]]\nversion = "2.8.0"\n'


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert SECRET not in out + err
    return code, out, err


def one_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must fail with exit 2 and one line; that line."""
    code, _, err = run_cli(capsys, *argv)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("compat: error: ")
    return lines[0]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def nothing_created(folder: Path) -> None:
    assert not (folder / "reports").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "x/../../../tmp/elsewhere",
            "matrix.name: 'x/../../../tmp/elsewhere' is not a name for a folder",
        ),
        ("..", "matrix.name: '..' is not a name for a folder"),
        ("a\\u0000b", "matrix.name: expected a string without NUL"),
        ("n" * 300, "matrix.name: expected a string without NUL of at most 4096"),
        ("n" * 101, "matrix.name: 'nnnn"),
        (".hidden", "matrix.name: '.hidden' is not a name for a folder"),
    ],
)
def test_a_matrix_name_is_one_safe_folder_name(
    write_matrix: WriteMatrix,
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    message: str,
) -> None:
    if len(name) == 300:  # within the string limit: the folder-name rule says no
        message = "matrix.name: 'nnnn"
    path = write_matrix(f'[matrix]\nname = "{name}"\n{ONE_CELL}')
    line = one_error(capsys, "matrix", "--matrix", str(path))
    assert f"{path}: {message}" in line
    nothing_created(in_tmp)
    assert not (Path("/tmp") / "elsewhere").exists()


def test_the_default_name_is_the_file_name_made_safe(
    write_matrix: WriteMatrix, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_matrix(ONE_CELL, name="my matrix (v2).toml")
    code, _out, _ = run_cli(capsys, "list", "--json", "--matrix", str(path))
    assert code == 0
    from compat.harness.config.matrix import load_matrix

    assert load_matrix(path).name == "my_matrix__v2_"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "timeout = inf",
            "matrix.timeout: expected a positive number of seconds, got inf (at most "
            "604800, a week)",
        ),
        (
            "install-timeout = nan",
            "matrix.install-timeout: expected a positive number of seconds, got nan",
        ),
        ("timeout = 1e300", "matrix.timeout: expected a positive number of seconds, got 1e+300"),
        (
            "memory-limit-mb = 99999999999999",
            "matrix.memory-limit-mb: expected a positive whole "
            "number, got 99999999999999 (at most 1073741824)",
        ),
        ("reruns = 5000", "matrix.reruns: expected a whole number >= 0, got 5000 (at most 1000)"),
        ("python = []", "matrix.python: expected at least one value, got []"),
        ("stacks = []", "matrix.stacks: expected at least one value, got []"),
        ("tests = []", "matrix.tests: expected at least one value, got []"),
        ('tests = ["/etc"]', "matrix.tests: '/etc' is outside the project"),
        ('tests = ["../elsewhere"]', "matrix.tests: '../elsewhere' is outside the project"),
        ('tests = ["tests/../../x"]', "matrix.tests: 'tests/../../x' is outside"),
        (
            'deps = ["--index-url=https://evil.invalid/simple"]',
            "matrix.deps: '--index-url=https://evil.invalid/simple' is not a requirement (PEP 508)",
        ),
        (
            'deps = ["-e ."]',
            "matrix.deps: '-e .' is not a requirement (PEP 508) (the repository itself: "
            "install-project = true)",
        ),
        ('install-project = "yes"', "matrix.install-project: expected true or false, got 'yes'"),
        (
            'torch-backend = "cuda"',
            "matrix.torch-backend: 'cuda' is not a uv torch backend (cpu, auto, cu128",
        ),
        ('env = { "A-B" = "x" }', 'matrix.env.A-B: expected NAME = "string"'),
        ('env = { A = "x\\u0000y" }', 'matrix.env.A: expected NAME = "string"'),
    ],
)
def test_settings_out_of_range_are_one_line(
    write_matrix: WriteMatrix,
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    setting: str,
    message: str,
) -> None:
    path = write_matrix(f"[matrix]\n{setting}\n{ONE_CELL}")
    for command in (["list"], ["matrix"], ["plan"]):
        line = one_error(capsys, *command, "--matrix", str(path))
        assert f"{path}: {message}" in line, line
    nothing_created(in_tmp)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            '[[torch]]\nversion = "2.8.0"\ndeps = ["executorch>>1"]\n',
            "torch[0].deps: 'executorch>>1' is not a requirement (PEP 508)",
        ),
        ('[[torch]]\nversion = "2.8.0"\ndeps = "executorch"\ndep = []\n', "torch[0].dep: unknown"),
        (
            '[[torch]]\nversion = "2.8.0"\n[[include]]\ntorch = "2.9.0"\nstack = "torch.ao"\n'
            "deps = [1]\n",
            "include[0].deps: expected a list of strings, got [1]",
        ),
    ],
)
def test_per_torch_deps_are_checked_where_written(
    write_matrix: WriteMatrix,
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    entry: str,
    message: str,
) -> None:
    path = write_matrix(entry)
    assert f"{path}: {message}" in one_error(capsys, "list", "--matrix", str(path))
    nothing_created(in_tmp)


def test_python_empty_in_an_entry_names_that_entry(
    write_matrix: WriteMatrix, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_matrix('[[torch]]\nversion = "2.8.0"\npython = []\n')
    assert "torch[0].python: expected at least one value" in one_error(
        capsys, "list", "--matrix", str(path)
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            f'[channels.mirror]\nindex-url = "ftp://user:{SECRET}@host/simple"\n',
            "channels.mirror.index-url: 'ftp://***@host/simple' is not an http(s) or file URL",
        ),
        (
            f'[channels.mirror]\nindex-url = "https://user:{SECRET}@host/simple"\n'
            f'find-links = ["ftp://user:{SECRET}@host/x", 5]\n',
            "channels.mirror.find-links: expected a list of strings, got ['ftp://***@host/x', 5]",
        ),
        (
            f'[channels.mirror]\nindex-url = "https://user:{SECRET}@host/simple"\ngating = "no"\n',
            "channels.mirror.gating: expected true or false, got 'no'",
        ),
        (
            '[channels."a/b"]\nindex-url = "https://host/simple"\n',
            "channels.a/b: a channel's name is letters, digits, _ and -",
        ),
    ],
)
def test_channel_errors_are_redacted(
    write_matrix: WriteMatrix,
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    table: str,
    message: str,
) -> None:
    path = write_matrix(table + ONE_CELL)
    assert message in one_error(capsys, "list", "--matrix", str(path))


@pytest.mark.parametrize(
    "entry",
    [
        f'[[torch]]\nversion = "https://user:{SECRET}@host/torch.whl"\n',
        f'[[torch]]\nversion = "2.8.0"\nurl = "ftp://user:{SECRET}@host/torch.whl"\n',
        f'[[torch]]\nversion = "2.8.0"\nurl = ["https://user:{SECRET}@host/torch.whl"]\n',
        f'[[torch]]\nversion = "2.8.0"\n[[expect]]\ntest = "t"\nreason = "r"\n'
        f'match = "https://user:{SECRET}@host/(("\n',
        f'[[torch]]\nversion = "2.8.0"\n"https://user:{SECRET}@host/" = 1\n',
    ],
)
def test_values_with_credentials_are_shown_redacted(
    write_matrix: WriteMatrix, in_tmp: Path, capsys: pytest.CaptureFixture[str], entry: str
) -> None:
    path = write_matrix(entry)
    line = one_error(capsys, "list", "--matrix", str(path))
    assert "***@host" in line


def test_a_deeply_nested_file_is_one_line(
    tmp_path: Path, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tests" / "core").mkdir(parents=True)
    for text in (
        "a = " + "[" * 3000 + "]" * 3000,
        "a = " + "{b = " * 3000 + "1" + "}" * 3000,
        "[matrix]\nenv = " + "{ a = " * 400 + '"x"' + " }" * 400,
    ):
        path = tmp_path / "matrix.toml"
        path.write_text(text, encoding="utf-8")
        line = one_error(capsys, "list", "--matrix", str(path))
        assert line.startswith(f"compat: error: {path}: ")
        assert len(line) < 400


def test_non_utf8_and_folders_are_one_line(
    tmp_path: Path, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "matrix.toml"
    path.write_bytes(b'[matrix]\nname = "\xff\xfe"\n')
    assert "cannot read: 'utf-8' codec can't decode" in one_error(
        capsys, "list", "--matrix", str(path)
    )
    assert "cannot read" in one_error(capsys, "list", "--matrix", str(tmp_path))


def test_a_file_outside_the_project_names_its_real_fault_first(
    tmp_path: Path, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No tests/core beside it: a typo elsewhere is named, not the default test path."""
    path = tmp_path / "elsewhere.toml"
    path.write_text('[matrix]\npyhton = ["3.11"]\n' + ONE_CELL, encoding="utf-8")
    assert "matrix.pyhton: unknown key (did you mean 'python'?)" in one_error(
        capsys, "list", "--matrix", str(path)
    )
    path.write_text('[[torch]]\nversion = "2.x"\n', encoding="utf-8")
    assert "torch[0].version: '2.x' is not a valid version" in one_error(
        capsys, "list", "--matrix", str(path)
    )
    path.write_text(ONE_CELL, encoding="utf-8")
    assert (
        "matrix.tests: not set, and the default 'tests/core' is not next to the matrix "
        "file (set tests = [...] to your test paths)"
    ) in one_error(capsys, "list", "--matrix", str(path))


@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_jobs_below_one_are_refused(
    write_matrix: WriteMatrix, in_tmp: Path, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    path = write_matrix(ONE_CELL)
    for command in ("matrix", "probe"):
        line = one_error(capsys, command, "--matrix", str(path), "-j", jobs)
        assert (
            line == f"compat: error: -j {jobs}: expected a whole number of cells at once, 1 or more"
        )
    nothing_created(in_tmp)


@pytest.mark.parametrize("size", ["lots", "0"])
def test_a_disk_budget_that_is_not_a_size_is_refused(
    write_matrix: WriteMatrix, in_tmp: Path, capsys: pytest.CaptureFixture[str], size: str
) -> None:
    path = write_matrix(ONE_CELL)
    line = one_error(capsys, "matrix", "--matrix", str(path), "--disk-budget", size)
    assert f"--disk-budget {size!r}" in line or f"--disk-budget {size}:" in line
    nothing_created(in_tmp)


@pytest.mark.parametrize(
    ("size", "problem"),
    [
        ("1K", "is 1 KiB, under the least disk budget (1 MiB)"),
        ("0", "is 0 bytes, under the least disk budget (1 MiB)"),
        ("1048575", "is 1024 KiB, under the least disk budget (1 MiB)"),
        ("lots", 'is not a size such as "30G"'),
    ],
)
def test_a_matrix_disk_budget_too_small_is_the_files_error(
    write_matrix: WriteMatrix,
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    size: str,
    problem: str,
) -> None:
    """Refused by the loader, naming the file, the key and the value: never blamed on a
    --disk-budget that was not given."""
    path = write_matrix(f'[matrix]\ndisk-budget = "{size}"\n{ONE_CELL}')
    for command in (["matrix"], ["list"], ["plan"]):
        line = one_error(capsys, *command, "--matrix", str(path))
        assert f"{path}: matrix.disk-budget: {size!r} {problem}" in line, line
        assert "--disk-budget" not in line
    nothing_created(in_tmp)


def test_a_matrix_disk_budget_of_one_mib_loads(write_matrix: WriteMatrix) -> None:
    from compat.harness.config.matrix import load_matrix

    path = write_matrix(f'[matrix]\ndisk-budget = "1M"\n{ONE_CELL}')
    assert load_matrix(path).disk_budget == 2**20


def test_a_shard_with_no_cell_is_refused(
    write_matrix: WriteMatrix, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_matrix(
        '[[torch]]\nversion = "2.7.0"\n[[torch]]\nversion = "2.8.0"\n[[torch]]\nversion = "2.9.0"\n'
    )
    for command in ("matrix", "plan"):
        line = one_error(capsys, command, "--matrix", str(path), "--shard", "4/4")
        assert line == (
            "compat: error: --shard 4/4: no cell falls in this shard (3 applicable "
            "cell(s), so at most 3 shard(s))"
        )
    assert "between 1 and N" in one_error(capsys, "plan", "--matrix", str(path), "--shard", "1/0")
    nothing_created(in_tmp)


@pytest.mark.parametrize(
    "option", [["--resume", "nowhere"], ["--baseline", "nowhere.json"], ["--offline", "nowhere"]]
)
def test_a_missing_input_creates_nothing(
    write_matrix: WriteMatrix, in_tmp: Path, capsys: pytest.CaptureFixture[str], option: list[str]
) -> None:
    path = write_matrix(ONE_CELL)
    one_error(capsys, "matrix", "--matrix", str(path), *option)
    nothing_created(in_tmp)
    assert one_error(capsys, "history").endswith("reports: no reports folder")


def test_resume_of_a_folder_that_is_no_run(
    write_matrix: WriteMatrix, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_matrix(ONE_CELL)
    (in_tmp / "empty").mkdir()
    assert one_error(capsys, "matrix", "--matrix", str(path), "--resume", "empty") == (
        "compat: error: --resume empty: not a run folder (no run.json)"
    )
    nothing_created(in_tmp)


def test_out_that_is_a_file_or_cannot_be_written(
    write_matrix: WriteMatrix,
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    read_only_folder: Path,
) -> None:
    path = write_matrix(ONE_CELL)
    (in_tmp / "a-file").write_text("x", encoding="utf-8")
    assert one_error(capsys, "matrix", "--matrix", str(path), "--out", "a-file") == (
        "compat: error: --out a-file: is a file, not a folder"
    )
    assert one_error(capsys, "matrix", "--matrix", str(path), "--out", "a-file/run") == (
        "compat: error: --out a-file/run: cannot write there (Not a directory)"
    )
    line = one_error(capsys, "matrix", "--matrix", str(path), "--out", str(read_only_folder))
    assert line.startswith(f"compat: error: --out {read_only_folder}: cannot write there (")
    line = one_error(
        capsys, "matrix", "--matrix", str(path), "--out", str(read_only_folder / "run")
    )
    assert "cannot write there" in line
    assert one_error(capsys, "probe", "--matrix", str(path), "--out", "a-file") == (
        "compat: error: --out a-file: is a file, not a folder"
    )
    assert one_error(capsys, "prefetch", "--matrix", str(path), "--wheelhouse", "a-file") == (
        "compat: error: --wheelhouse a-file: is a file, not a folder"
    )
    nothing_created(in_tmp)


def test_probe_honours_offline(
    write_matrix: WriteMatrix,
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_matrix(ONE_CELL)
    assert "not a prefetched wheelhouse" in one_error(
        capsys, "probe", "--matrix", str(path), "--offline", str(in_tmp / "none")
    )
    wheelhouse = in_tmp / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / "manifest.json").write_text("{}", encoding="utf-8")
    seen: list[tuple[str, ...]] = []

    def no_env(plan: object, *, log: Path, timeout: float) -> object:
        seen.append(plan.uv_source_args)  # type: ignore[attr-defined]
        raise InstallFailed("no-such-version", "not in the wheelhouse")

    monkeypatch.setattr(probe_command, "ensure_env", no_env)
    code, out, _ = run_cli(
        capsys,
        "probe",
        "--matrix",
        str(path),
        "--offline",
        str(wheelhouse),
        "--out",
        str(in_tmp / "probe"),
    )
    assert code == 0
    assert seen == [("--offline", "--no-index", "--find-links", str(wheelhouse))]
    assert "install-failed: no-such-" in out
    assert "not in the" in out


def test_an_expectation_that_matches_no_test_is_exit_2_after_the_run(
    cell_world: Callable[..., object],
    tmp_path: Path,
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expect = textwrap.dedent("""
        [[expect]]
        test = "test_one"
        raises = "AssertionError"
        reason = "real"

        [[expect]]
        test = "test_renamed_long_ago"
        raises = "AssertionError"
        reason = "stale"

        [[expect]]
        test = "test_elsewhere"
        torch = ">=3"
        raises = "AssertionError"
        reason = "selects no cell here: nothing to judge by"
        """)
    matrix = cell_world("plain", versions=("2.8.0",), tables=expect)
    out_dir = tmp_path / "run"
    code, out, err = run_cli(
        capsys,
        "matrix",
        "--matrix",
        str(matrix.path),  # type: ignore[attr-defined]
        "--out",
        str(out_dir),
    )
    assert code == 2
    assert err.splitlines() == [
        f"compat: error: {matrix.path}: expect[1].test: 'test_renamed_long_ago' matches no "  # type: ignore[attr-defined]
        "test of the 1 cell(s) it selects that ran tests (renamed or misspelt?)"
    ]
    assert "exit code 2" in out
    import json

    assert json.loads((out_dir / "results.json").read_text(encoding="utf-8"))["exit_code"] == 2


def test_a_key_with_line_breaks_is_still_one_line(
    write_matrix: WriteMatrix, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the fuzzer: NEL (U+0085) and U+2028 break lines for str.splitlines()."""
    path = write_matrix(ONE_CELL + '"a\\u0085b\\u2028c\\nd" = 1\n')
    assert one_error(capsys, "list", "--matrix", str(path)).endswith(
        "torch[0].a\\x85b\\u2028c\\nd: unknown key"
    )
