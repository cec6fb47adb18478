"""Shared helpers for the host-side tests: no torch, no network."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def write_matrix(tmp_path: Path) -> Callable[[str], Path]:
    """Write a matrix file (with a ``tests/core`` folder beside it) and return its path."""
    (tmp_path / "tests" / "core").mkdir(parents=True, exist_ok=True)

    def write(text: str, name: str = "matrix.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


pytest_plugins = ["pytester"]

from .fake_cells import cell_world  # noqa: E402, F401 - a fixture for the fault and merge tests


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write into (root ignores modes: then a sysfs folder)."""
    import os
    import tempfile

    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    folder = Path("/sys/kernel")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        yield folder
        return
    pytest.skip("no folder this root process cannot write")


@pytest.fixture(autouse=True)
def _own_verdict_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test its own verdict cache: a run never answers another test's from it (the
    same test file in two tests has the same key), nor writes one into the checkout."""
    monkeypatch.setenv("COMPAT_VERDICTS_DIR", str(tmp_path_factory.mktemp("verdicts")))
