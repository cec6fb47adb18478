"""`torch-compat-matrix init`: a matrix for today's landscape, read from the index."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from packaging.version import Version

from compat.harness.commands import cli, init
from compat.harness.config.matrix import load_matrix
from compat.harness.install.index import IndexFile


def wheel(project: str, version: str, day: str) -> IndexFile:
    return IndexFile(
        f"{project}-{version}-py3-none-any.whl",
        f"https://x.invalid/{version}",
        Version(version),
        None,
        None,
        datetime.fromisoformat(day).replace(tzinfo=timezone.utc),
    )


TORCH = [
    wheel("torch", v, d)
    for v, d in [
        ("2.1.2", "2023-12-14"),
        ("2.2.0", "2024-01-30"),
        ("2.2.2", "2024-03-27"),
        ("2.8.0", "2025-08-06"),
        ("2.9.0", "2025-10-15"),
        ("2.13.0", "2026-07-08"),
        ("2.14.0.dev20260801", "2026-08-01"),
    ]
]
TORCHAO = [
    wheel("torchao", v, d)
    for v, d in [
        ("0.12.0", "2025-07-17"),
        ("0.13.0", "2025-09-01"),
        ("0.14.0", "2025-10-20"),
        ("0.18.0", "2026-07-20"),
    ]
]


def test_the_landscape_pairs_each_torch_with_the_torchao_of_its_era() -> None:
    rows = {r.torch: r for r in init.landscape(TORCH, TORCHAO)}
    assert list(rows) == ["2.2.2", "2.8.0", "2.9.0", "2.13.0"]  # from 2.2, finals only
    assert rows["2.2.2"].stacks == ("torch.ao",)  # no torchao pt2e on 2.2
    assert (rows["2.8.0"].torchao, rows["2.8.0"].stacks) == ("0.13.0", ("torch.ao", "torchao"))
    assert rows["2.9.0"].torchao == "0.14.0"  # not 0.18.0: that came with a later torch
    assert (rows["2.13.0"].torchao, rows["2.13.0"].stacks) == ("0.18.0", ("torchao",))


def test_init_writes_a_loadable_matrix_and_a_starter_test_and_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        init, "list_wheels", lambda index, project: TORCH if project == "torch" else TORCHAO
    )
    assert cli.main(["init", "--dir", str(tmp_path), "--noxfile"]) == 0
    matrix = load_matrix(tmp_path / "matrix.toml")
    assert matrix.deps_as_of == "torch-release"
    assert matrix.strict
    assert {c.id for c in matrix.cells if c.applicable} == {
        "torch2.2.2-torch.ao-py3.11",
        "torch2.8.0-torch.ao-py3.11",
        "torch2.8.0-torchao0.13.0-py3.11",
        "torch2.9.0-torch.ao-py3.11",
        "torch2.9.0-torchao0.14.0-py3.11",
        "torch2.13.0-torchao0.18.0-py3.11",
    }
    assert "from compat.shims.pt2e import api" in (
        tmp_path / "tests" / "test_pt2e_on_shims.py"
    ).read_text(encoding="utf-8")
    assert "torch-compat-matrix" in (tmp_path / "noxfile.py").read_text(encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["init", "--dir", str(tmp_path)]) == 2
    assert "already exists (init never overwrites)" in capsys.readouterr().err


def test_library_loggers_stay_quiet_unless_verbose() -> None:
    cli._quiet_libraries(False)
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.WARNING
    cli._quiet_libraries(True)
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.DEBUG
    cli._quiet_libraries(False)


def test_init_writes_every_users_session_and_ignores_the_run_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        init, "list_wheels", lambda index, project: TORCH if project == "torch" else TORCHAO
    )
    (tmp_path / ".gitignore").write_text("build/\n.envs\n", encoding="utf-8")
    assert cli.main(["init", "--dir", str(tmp_path), "--noxfile"]) == 0
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "-f", str(tmp_path / "noxfile.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    for session in ("matrix", "report", "bisect", "qualify", "history", "probe"):
        assert f"* {session}" in listed or f"- {session}" in listed, listed
    assert "cell(torch2.8.0-torch.ao-py3.11)" in listed
    # appended, never rewritten: the user's lines stay, .envs was already there
    assert (tmp_path / ".gitignore").read_text(encoding="utf-8") == (
        "build/\n.envs\n# torch-compat-matrix: cell envs and run reports\nreports/\n"
    )
