"""A cell sees its own packages and the cell side of this project, never the host's."""

from __future__ import annotations

from pathlib import Path

from compat.harness.install import envs


def test_the_cell_side_is_copied_and_the_host_link_removed(tmp_path: Path) -> None:
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / envs.PTH).write_text("/host/lib/python3.11/site-packages\n", encoding="utf-8")
    stale = site / "compat" / "shims" / "gone.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("old = True\n", encoding="utf-8")
    envs._link_project(tmp_path / "env")
    assert not (site / envs.PTH).exists()
    copied = sorted(str(p.relative_to(site / "compat")) for p in (site / "compat").rglob("*.py"))
    assert copied == sorted(envs.cell_side_files())
    assert "pytest_plugin.py" in copied
    assert "shims/snapshot.py" in copied
    assert not any(name.startswith("harness") for name in copied)  # the host side stays out
    assert (site / "compat" / "events.py").read_bytes() == (envs.PACKAGE / "events.py").read_bytes()
