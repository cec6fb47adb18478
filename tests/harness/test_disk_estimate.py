"""The disk estimate: sized from the lock, cached wheels free, shared wheels counted once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from compat.harness.install import disk_estimate, uv_cli
from compat.harness.install.env_folder import Env
from compat.harness.install.install_plan import InstallPlan

LINUX = "manylinux_2_28_x86_64"


def lock_text(*wheels: tuple[str, str, str, int]) -> str:
    parts = ['lock-version = "1.0"\ncreated-by = "test"\n']
    for name, version, filename, size in wheels:
        parts.append(
            f'[[packages]]\nname = "{name}"\nversion = "{version}"\n'
            f'wheels = [{{ url = "https://x.invalid/{filename}", size = {size}, '
            f'hashes = {{ sha256 = "{"0" * 64}" }} }}]\n'
        )
    return "\n".join(parts)


def plan(tmp_path: Path, cell_id: str) -> InstallPlan:
    return InstallPlan(cell_id, "3.11", ("torch==2.8.0",), (), tmp_path / "envs" / cell_id)


def test_estimate_counts_uncached_wheels_once_and_skips_reusable_envs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = ("torch", "2.8.0", f"torch-2.8.0-cp311-cp311-{LINUX}.whl", 900 * 2**20)
    nvidia = (
        "nvidia-cublas-cu12",
        "12.8.4.1",
        f"nvidia_cublas_cu12-12.8.4.1-py3-none-{LINUX}.whl",
        500 * 2**20,
    )
    numpy = ("numpy", "2.3.2", f"numpy-2.3.2-cp311-cp311-{LINUX}.whl", 16 * 2**20)
    locks = {"a": lock_text(torch, nvidia, numpy), "b": lock_text(torch, nvidia)}

    def fake_compile(requirements: Any, *, folder: Path, **_: Any) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pylock.toml").write_text(locks[current.pop(0)], encoding="utf-8")
        return folder / "pylock.toml"

    current = ["a", "b"]
    monkeypatch.setattr(uv_cli, "compile_lock", fake_compile)
    monkeypatch.setattr(disk_estimate, "find_interpreter", lambda python: "/usr/bin/python3")
    held = tmp_path / "envs" / "old" / "lib" / "python3.11" / "site-packages"
    (held / "numpy-2.3.2.dist-info").mkdir(parents=True)  # some env has numpy: cached
    reused = plan(tmp_path, "reused")
    reused.env_dir.mkdir(parents=True)
    Env.of(reused).stamp_path.write_text(f'{{"key": "{reused.key}"}}', encoding="utf-8")
    estimate = disk_estimate.estimate_growth(
        [plan(tmp_path, "a"), plan(tmp_path, "b"), reused], tmp_path / "envs"
    )
    assert estimate.cells == ["a", "b"]
    assert estimate.download_bytes == 1400 * 2**20  # torch and nvidia once, numpy cached
    assert estimate.cache_bytes == int(1400 * 2**20 * disk_estimate.UNPACK_RATIO)


def test_a_wheel_uv_holds_unpacked_is_free(tmp_path: Path) -> None:
    (tmp_path / "wheels-v8" / "pypi" / "torch" / f"2.8.0-cp311-cp311-{LINUX}").mkdir(parents=True)
    assert disk_estimate.in_uv_cache(tmp_path, f"torch-2.8.0-cp311-cp311-{LINUX}.whl")
    assert not disk_estimate.in_uv_cache(tmp_path, f"torch-2.9.0-cp311-cp311-{LINUX}.whl")
    assert not disk_estimate.in_uv_cache(None, f"torch-2.8.0-cp311-cp311-{LINUX}.whl")


def test_a_run_that_would_not_fit_stops_before_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from compat.harness.commands import cli
    from compat.harness.install import disk_check

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(tmp_path / "envs"))
    (tmp_path / "tests").mkdir()
    (tmp_path / "matrix.toml").write_text(
        '[matrix]\ntests = ["tests"]\n[[torch]]\nversion = "2.8.0"\nstacks = ["torch.ao"]\n',
        encoding="utf-8",
    )
    big = disk_estimate.DiskEstimate(["torch2.8.0-torch.ao-py3.11"], 40 * 2**30)
    monkeypatch.setattr(disk_check, "estimate_growth", lambda *a, **k: big)
    monkeypatch.setattr(disk_check, "free_bytes", lambda path: 10 * 2**30)
    code = cli.main(["matrix", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert err[-1].endswith(
        "disk: the 1 env(s) to build need about 76.0 GiB of uv cache and "
        f"{err[-1].split(' and ')[1].split(' has ')[0]} has 10.0 GiB free; "
        "free space (nox -s gc), set --disk-budget, or run fewer cells "
        "(--cells)"
    )
    assert not (tmp_path / "run" / "cells").exists()  # nothing was installed or run
