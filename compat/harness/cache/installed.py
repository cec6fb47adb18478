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

Even the stats cost: walking 22 envs of ~6,800 sources in Python was half of an
all-cached rerun of the default matrix. So :func:`installed_digest` first asks GNU
``find`` for the stat listing (one process per env, off the GIL, in C) and, when it is
byte for byte the listing of the last digest, answers that digest without reading a
memo. Anything else (another listing, a link cycle or a broken link, no GNU find:
macOS's ``find`` has no ``-printf``) takes the Python walk above, which then records the
new listing for next time. ``find -L`` sees through every link, so its listing covers all
the walk reads (and links the walk skips as repeats): whatever changes for the walk
changes the listing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from compat.harness.files import atomic_writer, read_json_object
from compat.harness.install.env_folder import Env

__all__ = ["SOURCE_SUFFIXES", "installed_digest", "installed_sources"]

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


# -L: through links (an env of links, as benchmarks make), stats of their targets, as the
# walk's. %P: the path under site-packages; %i, %s, %T@: the memo's inode, size and mtime.
# A link still seen as one is broken: "L", and the walk marks it unreadable.
_FIND_EXPR = (
    "(", "-name", "__pycache__", "-prune", ")",
    "-o", "(", "-type", "l", "-printf", "L\\n", ")",
    "-o", "(", "-type", "f", "(", "-name", "*.py", "-o", "-name", "*.pth", ")",
    "-printf", "%P\\t%i\\t%s\\t%T@\\n", ")",
)  # fmt: skip


def _stat_listing(site: Path) -> str | None:
    """The sources' stat listing by GNU find, sorted; None where the walk must answer."""
    find = shutil.which("find")
    if find is None:
        return None
    try:
        done = subprocess.run(
            [find, "-L", str(site), *_FIND_EXPR], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0 or done.stderr:
        return None  # BSD find (no -printf), a link cycle, an unreadable folder: walk
    lines = done.stdout.decode("utf-8", "surrogateescape").splitlines()
    if any(line == "L" for line in lines):
        return None
    return "\n".join(sorted(lines))


def installed_digest(env_dir: Path) -> str:
    """One digest of :func:`installed_sources` (what the verdict key holds); from the last
    digest when the env's stat listing has not changed since."""
    env = Env.at(env_dir)
    site = env.site_packages()
    listing = _stat_listing(site) if site is not None else None
    stamp = (
        hashlib.sha256(listing.encode("utf-8", "surrogateescape")).hexdigest() if listing else None
    )
    path = env.sources_digest_path
    if stamp is not None:
        known = read_json_object(path)
        if known.get("listing") == stamp and isinstance(known.get("digest"), str):
            return str(known["digest"])
    sources = installed_sources(env_dir)
    digest = hashlib.sha256(json.dumps(sorted(sources.items())).encode()).hexdigest()
    if stamp is not None:
        try:
            with atomic_writer(path) as handle:
                handle.write(json.dumps({"listing": stamp, "digest": digest}).encode())
        except OSError:
            pass  # a read-only env: the walk answers every time
    return digest
