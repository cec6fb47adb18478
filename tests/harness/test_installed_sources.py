"""The digest of an env's installed sources: by content, memoised by stat."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from compat.harness.cache import installed
from compat.harness.cache.installed import installed_digest, installed_sources
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


def _links_to(real: Path, root: Path) -> tuple[Path, Path]:
    """An env of links to ``real``'s site-packages entries (as bench_cache makes), and its
    site-packages."""
    links = root / real.name
    site = links / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    for entry in (real / "lib" / "python3.11" / "site-packages").iterdir():
        (site / entry.name).symlink_to(entry)
    return links, site


def test_an_env_of_links_sees_through_them_and_a_cycle_ends(tmp_path: Path) -> None:
    real = _env(tmp_path / "real")
    links, site = _links_to(real, tmp_path / "links")
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


def _walked_digest(env: Path) -> str:
    return hashlib.sha256(json.dumps(sorted(installed_sources(env).items())).encode()).hexdigest()


@pytest.mark.parametrize("find", ["gnu", "none"])
def test_the_digest_follows_an_edit_with_or_without_gnu_find(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, find: str
) -> None:
    """The stat listing only decides whether to walk; the digest is always the walk's."""
    if find == "none":
        monkeypatch.setattr(installed.shutil, "which", lambda name: None)
    elif installed._stat_listing(tmp_path) is None:
        pytest.skip("no GNU find here")
    env = _env(tmp_path)
    first = installed_digest(env)
    assert first == _walked_digest(env)
    assert installed_digest(env) == first  # the listing's answer, same value
    port = env / "lib/python3.11/site-packages/torch/ao/port.py"
    port.write_text("PORTED = []\n", encoding="utf-8")  # in place, a new mtime and size
    os.utime(port, ns=(1, port.stat().st_mtime_ns + 1))
    assert installed_digest(env) != first
    assert installed_digest(env) == _walked_digest(env)
    assert (Env.at(env).sources_digest_path.exists()) is (find == "gnu")


def test_the_listing_answers_only_its_own_digest(tmp_path: Path) -> None:
    env = _env(tmp_path)
    if installed._stat_listing(Env.at(env).site_packages() or tmp_path) is None:
        pytest.skip("no GNU find here")
    real = installed_digest(env)
    record = Env.at(env).sources_digest_path
    data = json.loads(record.read_text("utf-8"))
    record.write_text(json.dumps({**data, "digest": "d" * 64}), encoding="utf-8")
    assert installed_digest(env) == "d" * 64  # an unchanged listing: its digest, unread
    record.write_text("{torn", encoding="utf-8")
    assert installed_digest(env) == real  # a corrupt record: walked again, rewritten
    assert json.loads(record.read_text("utf-8"))["digest"] == real
    new = env / "lib/python3.11/site-packages/torch/ao/new.py"
    record.write_text(json.dumps({**data, "digest": "d" * 64}), encoding="utf-8")
    new.write_text("X = 1\n", encoding="utf-8")  # another listing: never the old digest
    assert installed_digest(env) == _walked_digest(env) != real


def test_the_listing_sees_through_links_and_leaves_broken_ones_to_the_walk(
    tmp_path: Path,
) -> None:
    real = _env(tmp_path / "real")
    links, site = _links_to(real, tmp_path / "links")
    if installed._stat_listing(site) is None:
        pytest.skip("no GNU find here")
    first = installed_digest(links)
    assert first == _walked_digest(links) == _walked_digest(real)
    port = real / "lib/python3.11/site-packages/torch/ao/port.py"
    port.write_text("PORTED = []\n", encoding="utf-8")  # edited through the real env
    assert installed_digest(links) == _walked_digest(real) != first
    (site / "gone.py").symlink_to(tmp_path / "missing.py")
    assert installed._stat_listing(site) is None
    assert installed_sources(links)["gone.py"].startswith("unreadable:")
    assert installed_digest(links) == _walked_digest(links)
