"""The test files a suite path holds, found as pytest would find them, without importing any.

One process runs each test file (``isolation = "file"``), so the harness needs the file list
before pytest starts: it walks the suite's folders with pytest's own defaults, which the
cell's ``cell_pytest.ini`` keeps (``python_files = test_*.py *_test.py``, ``norecursedirs``).
Walking is exact for those defaults and imports nothing: collecting with pytest on the host
would import the user's conftest files next to the host's packages, and collecting in the
cell before forking would leave one suite's conftest state in every other suite's process.

>>> is_test_file("test_dq.py"), is_test_file("dq_test.py"), is_test_file("helpers.py")
(True, True, False)
>>> split_selector("tests/core/test_a.py::TestA::test_b")
('tests/core/test_a.py', 'TestA::test_b')
>>> split_selector("tests/core")
('tests/core', None)
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = [
    "NORECURSE_DIRS",
    "PYTHON_FILES",
    "TestFile",
    "file_of",
    "files_under",
    "is_test_file",
    "split_selector",
    "test_files",
]

# pytest's defaults (``python_files``, ``norecursedirs``); the cell's ini does not change them.
PYTHON_FILES = ("test_*.py", "*_test.py")
NORECURSE_DIRS = ("*.egg", ".*", "_darcs", "build", "CVS", "dist", "node_modules", "venv", "{arch}")


def is_test_file(name: str) -> bool:
    """Whether pytest collects a file of this name when it walks a folder."""
    return any(fnmatch.fnmatch(name, pattern) for pattern in PYTHON_FILES)


def split_selector(test: str) -> tuple[str, str | None]:
    """A test path as written in the matrix: the path, and the ``::`` selector after it."""
    path, sep, selector = test.partition("::")
    return path, (selector if sep else None)


def file_of(nodeid: str) -> str:
    """The file part of a pytest node id (``a/test_x.py::T::t`` -> ``a/test_x.py``).

    >>> file_of("tests/core/test_a.py::TestA::test_b")
    'tests/core/test_a.py'
    """
    return nodeid.split("::", 1)[0]


def files_under(folder: Path) -> list[Path]:
    """The test files pytest would collect under ``folder``, in its order (by name, depth
    first), skipping the folders it does not recurse into and ``__pycache__``."""
    found: list[Path] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=True):
            if entry.name == "__pycache__" or any(
                fnmatch.fnmatch(entry.name, p) for p in NORECURSE_DIRS
            ):
                continue
            found += files_under(Path(entry.path))
        elif entry.is_file() and is_test_file(entry.name):
            found.append(Path(entry.path))
    return found


@dataclass(frozen=True)
class TestFile:
    """One test file of a cell: what its own pytest process is given, and its node id.

    ``args`` are relative to the folder pytest runs in (the matrix file's); ``nodeid`` is
    the file's node id (relative to the rootdir), the prefix of every test it holds.
    """

    __test__ = False  # not a pytest test class, despite its name

    nodeid: str
    args: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"nodeid": self.nodeid, "args": list(self.args)}


def _relative(path: Path, start: Path) -> str:
    return PurePosixPath(Path(os.path.relpath(path, start))).as_posix()


def test_files(tests: Sequence[str], *, base: Path, rootdir: Path) -> list[TestFile]:
    """The files of ``tests`` (paths relative to ``base``, each maybe with a ``::`` selector),
    one entry per file in collection order; selectors of one file share its process."""
    ordered: dict[str, list[str]] = {}
    for test in tests:
        part, selector = split_selector(test)
        target = base / part
        paths = files_under(target) if target.is_dir() else [target]
        for path in paths:
            arg = _relative(path, base) if target.is_dir() else part
            args = ordered.setdefault(_relative(path.resolve(), rootdir.resolve()), [])
            full = f"{arg}::{selector}" if selector else arg
            if selector is None:
                args[:] = [arg]  # the whole file: any selector of it is included
            elif full not in args and not (len(args) == 1 and "::" not in args[0]):
                args.append(full)
    return [TestFile(nodeid, tuple(args)) for nodeid, args in ordered.items()]


def unique(items: Iterable[str]) -> list[str]:
    """``items`` without repeats, in order."""
    return list(dict.fromkeys(items))
