"""Which wheel an env got, read from a real-shaped pylock.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat.harness.install.lockfile import (
    LockInvalid,
    installed_wheels,
    locked_pins,
    read_packages,
)

F = "https://files.example"
LOCK = "\n".join(
    [
        'lock-version = "1.0"',
        'created-by = "uv"',
        "[[packages]]",
        'name = "torch"',
        'version = "2.8.0"',
        "wheels = [",
        f'  {{ url = "{F}/torch-2.8.0-cp311-cp311-manylinux_2_28_aarch64.whl", '
        'hashes = { sha256 = "aa" } },',
        f'  {{ url = "{F}/torch-2.8.0-cp311-cp311-manylinux_2_28_x86_64.whl", size = 9, '
        'hashes = { sha256 = "bb" } },',
        "]",
        "[[packages]]",
        'name = "torchao"',
        'version = "0.20.0.dev20261124+cpu"',
        'archive = { url = "http://u:p@127.0.0.1:1/torchao-0.20.0.dev20261124%2Bcpu-cp310-abi3-'
        'manylinux_2_28_x86_64.whl", hashes = { sha256 = "cc" } }',
        "[[packages]]",
        'name = "pytest"',
        'version = "9.0.3"',
        f'wheels = [{{ url = "{F}/pytest-9.0.3-py3-none-any.whl", hashes = {{ sha256 = "dd" }} }}]',
    ]
)


def test_pins_keep_direct_urls(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(LOCK, encoding="utf-8")
    assert locked_pins(lock) == [
        "torch==2.8.0",
        "torchao @ http://u:p@127.0.0.1:1/torchao-0.20.0.dev20261124%2Bcpu-cp310-abi3-"
        "manylinux_2_28_x86_64.whl",
        "pytest==9.0.3",
    ]


def test_the_installed_variant_is_picked_by_its_tags(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(LOCK, encoding="utf-8")
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    for dist, tag in (
        ("torch-2.8.0", "cp311-cp311-manylinux_2_28_x86_64"),
        ("torchao-0.20.0.dev20261124+cpu", "cp310-abi3-manylinux_2_28_x86_64"),
    ):
        (site / f"{dist}.dist-info").mkdir(parents=True)
        (site / f"{dist}.dist-info" / "WHEEL").write_text(
            f"Wheel-Version: 1.0\nTag: {tag}\n", encoding="utf-8"
        )
    found = installed_wheels(tmp_path / "env", lock, ("torch", "torchao"))
    assert found["torch"].file == "torch-2.8.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert found["torch"].sha256 == "bb"
    assert found["torch"].index == "https://files.example"
    assert found["torchao"].file == (
        "torchao-0.20.0.dev20261124+cpu-cp310-abi3-manylinux_2_28_x86_64.whl"
    )
    assert found["torchao"].url.startswith("http://u:p@127.0.0.1:1/")  # redacted on write


def test_a_lock_pep_751_refuses_is_no_pin_list(tmp_path: Path) -> None:
    """No ``created-by``: read as empty for sizing, refused for installing."""
    lock = tmp_path / "pylock.toml"
    lock.write_text(LOCK.replace('created-by = "uv"\n', ""), encoding="utf-8")
    assert read_packages(lock) == []
    with pytest.raises(LockInvalid, match="created-by"):
        locked_pins(lock)
