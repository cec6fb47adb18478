from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.config.matrix import load_matrix
from compat.harness.errors import UsageError
from compat.harness.install.garbage import collect, parse_size


def make_env(root: Path, name: str, size: int) -> Path:
    env = root / name
    (env / "lib").mkdir(parents=True)
    (env / ".compat-env.json").write_text("{}", encoding="utf-8")
    (env / "lib" / "blob").write_bytes(b"x" * size)
    return env


def test_removes_only_envs_the_matrix_no_longer_has(
    write_matrix: Callable[[str], Path], tmp_path: Path
) -> None:
    matrix = load_matrix(write_matrix('[[torch]]\nversion = "2.8.0"\n'))
    envs = tmp_path / "envs"
    kept = make_env(envs, "torch2.8.0-torch.ao-py3.11", 10)
    gone = make_env(envs, "torch2.5.1-torch.ao-py3.11", 3 * 2**20)
    (envs / "not-an-env").mkdir()  # no stamp: not ours, left alone
    dry = collect(matrix, envs, dry_run=True)
    assert dry.removed == ["torch2.5.1-torch.ao-py3.11"]
    assert gone.exists()
    report = collect(matrix, envs)
    assert report.removed == ["torch2.5.1-torch.ao-py3.11"]
    assert report.freed_bytes >= 3 * 2**20
    assert not gone.exists()
    assert kept.exists()
    assert (envs / "not-an-env").exists()


@pytest.mark.parametrize(
    ("text", "size"),
    [("40G", 40 * 2**30), ("500M", 500 * 2**20), ("1.5GiB", int(1.5 * 2**30)), ("123", 123)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_bad_size() -> None:
    with pytest.raises(UsageError, match="expected a size"):
        parse_size("lots")
