"""What an ``install-project`` build needs: the static ``[build-system] requires`` and
what the backend's editable hook adds, asked of a real (in-tree, dependency-free) backend
in a throwaway env; no index is touched."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from compat.harness.errors import InstallError
from compat.harness.install.project_build import (
    DEFAULT_BUILD,
    dynamic_requires,
    static_requires,
)

BACKEND = """
def get_requires_for_build_editable(config_settings=None):
    return ["editables>=0.3", "wheel"]
def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    raise NotImplementedError
"""


def project(tmp_path: Path, backend: str = BACKEND, requires: str = "[]") -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        f'[build-system]\nrequires = {requires}\nbuild-backend = "inhouse"\n'
        'backend-path = ["."]\n[project]\nname = "proj"\nversion = "1"\n',
        encoding="utf-8",
    )
    (root / "inhouse.py").write_text(backend, encoding="utf-8")
    return root


def test_static_requires_read_the_table_or_pep_518s_default(tmp_path: Path) -> None:
    root = project(tmp_path, requires='["hatchling>=1.24", "hatch-vcs"]')
    assert static_requires(root) == ["hatchling>=1.24", "hatch-vcs"]
    bare = tmp_path / "bare"
    bare.mkdir()
    assert static_requires(bare) == DEFAULT_BUILD["requires"]  # setup.py only
    (bare / "pyproject.toml").write_text("[tool.ruff]\n", encoding="utf-8")
    assert static_requires(bare) == DEFAULT_BUILD["requires"]  # no [build-system]
    (bare / "pyproject.toml").write_text("[build-system\n", encoding="utf-8")
    with pytest.raises(InstallError, match=r"pyproject\.toml: cannot be read"):
        static_requires(bare)


def test_the_backend_is_asked_what_its_editable_build_adds(tmp_path: Path) -> None:
    root = project(tmp_path)
    found = dynamic_requires(
        root,
        python=sys.executable,
        find_links=tmp_path / "wheelhouse",
        log=tmp_path / "hooks.log",
        timeout=120,
    )
    assert found == ["editables>=0.3", "wheel"]


def test_a_failing_hook_is_one_error_with_its_output_in_the_log(tmp_path: Path) -> None:
    broken = "def get_requires_for_build_editable(config_settings=None):\n    raise SystemExit(3)\n"
    root = project(tmp_path, backend=broken)
    log = tmp_path / "hooks.log"
    with pytest.raises(InstallError, match="build backend inhouse: the backend's hook failed"):
        dynamic_requires(root, python=sys.executable, find_links=tmp_path, log=log, timeout=120)
    assert log.is_file()
