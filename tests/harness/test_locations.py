"""Every state file of the envs root is named once, in ``locations``."""

from __future__ import annotations

from pathlib import Path

from compat.harness import locations


def test_each_state_file_has_a_path_function(tmp_path: Path) -> None:
    assert locations.timings_file(tmp_path) == tmp_path / ".timings.json"
    assert locations.uv_cache_size_file(tmp_path) == tmp_path / ".uv-cache-size.json"
    assert locations.pip_config_file(tmp_path) == tmp_path / ".pip-config.json"
    assert locations.resolved_file(tmp_path) == tmp_path / ".resolved.json"
