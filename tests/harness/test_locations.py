"""Every state file of the envs root is named once, in ``locations``."""

from __future__ import annotations

from pathlib import Path

from compat.harness import locations
from compat.harness.commands import matrix as matrix_command


def test_each_state_file_has_a_path_function(tmp_path: Path) -> None:
    assert locations.timings_file(tmp_path) == tmp_path / ".timings.json"
    assert locations.uv_cache_size_file(tmp_path) == tmp_path / ".uv-cache-size.json"
    assert locations.pip_config_file(tmp_path) == tmp_path / ".pip-config.json"
    assert locations.resolved_file(tmp_path) == tmp_path / ".resolved.json"


def test_modules_that_still_spell_a_name_spell_it_the_same() -> None:
    """Until they use ``locations``, the modules that name a state file themselves agree
    with it (a rename in one place alone would lose the file between runs)."""
    assert matrix_command.CACHE_SIZE == locations.UV_CACHE_SIZE
    assert matrix_command.PIP_CONFIG == locations.PIP_CONFIG
