"""One table of exit codes (results/gate.py), the README's word for word, and every kind of
error a command can end with mapped through it by ``cli.main``: one line, no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compat.harness.commands import cli
from compat.harness.errors import ConfigError, InfraError, UsageError
from compat.harness.processes import Stopped
from compat.harness.results.gate import (
    ERROR_KINDS,
    EXIT_CODES,
    describe_exit_code,
    exit_code_for,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_exit_codes() -> dict[int, str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, re.MULTILINE)
    return {int(code): meaning for code, meaning in rows}


def test_the_readme_table_is_the_gates_table() -> None:
    assert readme_exit_codes() == {c.code: c.meaning for c in EXIT_CODES}


def test_every_error_kind_has_a_code_of_the_table() -> None:
    codes = {c.code for c in EXIT_CODES}
    assert {code for _, code in ERROR_KINDS} <= codes
    assert ERROR_KINDS[-1][0] is Exception  # nothing falls through
    assert describe_exit_code(2) == "usage or configuration error"


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (UsageError("-j 0: expected 1 or more"), 2, "compat: error: -j 0: expected 1 or more"),
        (ConfigError("m.toml", "matrix.name", "bad"), 2, "compat: error: m.toml: matrix.name: bad"),
        (InfraError("disk full"), 3, "compat: error: disk full"),
        (
            OSError(28, "No space left on device"),
            3,
            "compat: error: [Errno 28] No space left on device",
        ),
        (KeyboardInterrupt(), 130, "compat: interrupted"),
        (Stopped(), 130, "compat: interrupted"),
        (
            RuntimeError("boom\nsecond line https://user:s3cr3t@host/x"),
            1,
            "compat: internal error: RuntimeError: boom\\nsecond line https://***@host/x (a bug; "
            "COMPAT_DEBUG=1 prints the traceback)",
        ),
        (RecursionError("deep"), 1, None),
    ],
)
def test_cli_maps_every_error_kind_through_the_table(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: BaseException,
    code: int,
    line: str | None,
) -> None:
    def fail(args: object) -> int:
        raise error

    monkeypatch.setattr(cli, "_list", fail)
    monkeypatch.delenv("COMPAT_DEBUG", raising=False)
    assert cli.main(["list"]) == code == exit_code_for(error)
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert err.count("\n") == 1
    if line is not None:
        assert err == line + "\n"


def test_debug_shows_the_traceback_of_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_list", fail)
    monkeypatch.setenv("COMPAT_DEBUG", "1")
    assert cli.main(["list"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_argparse_misuse_is_2_and_help_is_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["matrix", "--no-such-option"]) == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    assert cli.main(["probe", "--baseline", "x.json"]) == 2  # probe has no baseline
