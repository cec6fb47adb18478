"""The digest of an env's installed sources: by content, memoised by stat."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from compat.harness.cache.installed import installed_sources
from compat.harness.install.env_folder import Env


def _env(root: Path) -> Path:
    env = root / "torch2.8.0-torch.ao-py3.11"
    site = env / "lib" / "python3.11" / "site-packages"
    for rel, text in {
        "torch/__init__.py": "import torch.ao\n",
        "torch/ao/port.py": "PORTED = ['tag']\n",
        "torch/ao/__pycache__/port.cpython-311.pyc": "bytecode",
        "torch/lib/libtorch.so": "ELF",
        "distutils-precedence.pth": "import os\n",
    }.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text, encoding="utf-8")
    return env


def test_sources_are_the_py_and_pth_files_not_bytecode_or_binaries(tmp_path: Path) -> None:
    assert sorted(installed_sources(_env(tmp_path))) == [
        "distutils-precedence.pth",
        "torch/__init__.py",
        "torch/ao/port.py",
    ]


def test_a_copy_of_the_env_has_the_same_digests(tmp_path: Path) -> None:
    """New inodes and mtimes (a rebuild, another machine, a CI job) are not new contents."""
    env = _env(tmp_path / "a")
    copy = tmp_path / "b" / env.name
    shutil.copytree(env, copy)
    os.utime(copy / "lib/python3.11/site-packages/torch/ao/port.py", ns=(1, 1))
    assert installed_sources(copy) == installed_sources(env)


def test_the_memo_spares_rehashing_until_a_stat_moves(tmp_path: Path) -> None:
    env = _env(tmp_path)
    real = installed_sources(env)["torch/ao/port.py"]
    memo_path = Env.at(env).sources_memo_path
    memo = json.loads(memo_path.read_text("utf-8"))
    memo["files"]["torch/ao/port.py"][3] = "m" * 64  # what only the memo can answer
    memo_path.write_text(json.dumps(memo), encoding="utf-8")
    assert installed_sources(env)["torch/ao/port.py"] == "m" * 64
    port = env / "lib/python3.11/site-packages/torch/ao/port.py"
    os.utime(port, ns=(1, port.stat().st_mtime_ns + 1))
    assert installed_sources(env)["torch/ao/port.py"] == real


def test_a_corrupt_memo_is_recomputed_and_rewritten(tmp_path: Path) -> None:
    env = _env(tmp_path)
    expected = installed_sources(env)
    Env.at(env).sources_memo_path.write_text("{not json", encoding="utf-8")
    assert installed_sources(env) == expected
    assert json.loads(Env.at(env).sources_memo_path.read_text("utf-8"))["version"] == 1


def test_an_env_without_site_packages_has_no_sources(tmp_path: Path) -> None:
    assert installed_sources(tmp_path / "missing") == {}


def test_an_env_of_links_sees_through_them_and_a_cycle_ends(tmp_path: Path) -> None:
    real = _env(tmp_path / "real")
    links = tmp_path / "links" / real.name
    site = links / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    for entry in (real / "lib" / "python3.11" / "site-packages").iterdir():
        (site / entry.name).symlink_to(entry)
    (site / "loop").symlink_to(site)  # a cycle
    (site / "torch" / "again").symlink_to(site / "torch")  # a cycle below a link
    (real / "lib" / "python3.11" / "site-packages" / "alias").symlink_to(
        real / "lib" / "python3.11" / "site-packages" / "torch" / "ao"
    )  # inside site-packages: walked once, by its real path
    assert sorted(installed_sources(real)) == [
        "distutils-precedence.pth",
        "torch/__init__.py",
        "torch/ao/port.py",
    ]
    assert installed_sources(links) == installed_sources(real)
