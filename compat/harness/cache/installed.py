"""What an env's Python actually imports: the digest of its installed source files.

The lock says which wheels an env was built from; it cannot say that a file of theirs
was edited afterwards: a debugging session, a patched pass (``scripts/plant_regression.py``
replaces one), a package that rewrites itself. A verdict cache keyed by the lock alone
would then answer for code that is no longer installed: a false green. So the key also
holds the content digest of every ``.py`` and ``.pth`` file under the env's
site-packages. Compiled files are left to the lock's wheel sha256: nobody edits a ``.so``
by hand, and hashing gigabytes of CUDA libraries per run would cost more than the tests.

Hashing ~5,000 sources per env on every run would eat the cache's gain, so digests are
memoised by ``(inode, size, mtime_ns)`` in a file inside the env (git's index does the
same): a rerun only stats. A file replaced (a new inode) or edited in place (a new mtime
or size) is hashed again. The digest is of contents, not stats, so an env rebuilt from the
same lock, on another machine or in a CI job, has the same digest and hits the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from compat.harness.files import atomic_writer
from compat.harness.install.env_folder import Env

__all__ = ["SOURCE_SUFFIXES", "installed_sources"]

SOURCE_SUFFIXES = (".py", ".pth")
_MEMO_VERSION = 1


def _sources(site: Path) -> list[os.DirEntry[str]]:
    """Every source file under ``site`` (bytecode caches left out: a run writes them).

    Symlinked folders elsewhere are followed (an env of links to another, as benchmarks
    make), each once; a link into ``site`` or to a folder holding it only repeats what the
    walk sees anyway, or never ends, so it is not. Only links can make a cycle, so only they
    are resolved: a stat of every folder cost a third of an all-cached rerun's key."""
    found: list[os.DirEntry[str]] = []
    root = os.path.realpath(site)
    seen: set[str] = set()
    stack = [str(site)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.is_dir():
                    if entry.name == "__pycache__":
                        continue
                    if entry.is_symlink():
                        real = os.path.realpath(entry.path)
                        inside = os.path.commonpath([real, root]) in (real, root)
                        if inside or real in seen:
                            continue
                        seen.add(real)
                    stack.append(entry.path)
                elif entry.name.endswith(SOURCE_SUFFIXES):
                    found.append(entry)
    return found


def _read_memo(path: Path) -> dict[str, list[object]]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _MEMO_VERSION:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def installed_sources(env_dir: Path) -> dict[str, str]:
    """``{path under site-packages: sha256}`` of the env's source files, memoised.

    An env without site-packages (not built, or not a venv) gives ``{}``; a file that
    vanishes or cannot be read while it is listed is marked, never skipped.
    """
    env = Env.at(env_dir)
    site = env.site_packages()
    if site is None:
        return {}
    memo_path = env.sources_memo_path
    memo = _read_memo(memo_path)
    fresh: dict[str, list[object]] = {}
    digests: dict[str, str] = {}
    prefix = len(str(site)) + 1  # entries are below site: a slice is relpath, 5x cheaper
    for entry in _sources(site):
        rel = entry.path[prefix:]
        try:
            st = entry.stat(follow_symlinks=True)
        except OSError as exc:
            digests[rel] = f"unreadable:{type(exc).__name__}"
            continue
        stat = [st.st_ino, st.st_size, st.st_mtime_ns]
        known = memo.get(rel)
        if isinstance(known, list) and known[:3] == stat and isinstance(known[3], str):
            sha = known[3]
        else:
            try:
                sha = hashlib.sha256(Path(entry.path).read_bytes()).hexdigest()
            except OSError as exc:
                digests[rel] = f"unreadable:{type(exc).__name__}"
                continue
        fresh[rel] = [*stat, sha]
        digests[rel] = sha
    if fresh != memo:
        try:
            with atomic_writer(memo_path) as handle:
                handle.write(json.dumps({"version": _MEMO_VERSION, "files": fresh}).encode())
        except OSError:
            pass  # a read-only env still gets its digest, only not the memo
    return digests
