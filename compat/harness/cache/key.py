"""The key of a (cell, test file): every input its verdicts depend on, hashed part by part.

Parts, each a sha256 (``parts``), so a rerun can say which one changed:

- ``env``: every package the env's lock holds, with the sha256 of the wheel installed
  (a nightly that resolves to the same build is the same key; a new build is a new one),
  and the env's ``pip freeze``;
- ``installed``: the content of every source file installed in the env
  (:mod:`compat.harness.cache.installed`): an env edited after its build (a patched
  pass, a debugging print) is not the lock's env, and its files rerun;
- ``interpreter``: the env's Python, its implementation and exact version, and the
  machine (architecture, OS);
- ``cell_code``: what runs inside the cell besides the tests (the shims, the pytest plugin,
  the file runner, the events contract, the cell's pytest ini);
- ``harness``: this harness's version and the key's own recipe;
- ``options``: every matrix setting that changes what runs or how it is judged (env
  variables, deps, timeouts, memory limit, reruns, isolation, pytest args, preload,
  ``-k``, strict, the cell itself), and the host's variables a cell inherits that are
  known to steer torch or Python (``HOST_ENV_PREFIXES``; not all: a CI run's ids would
  make every key new);
- ``expectations``: the ``[[expect]]`` entries that apply to the cell;
- ``project``: the installed user project's sources (roots given by the caller);
- ``test_file``: the file's content and how it is selected;
- ``imports``: what the file's tests can import from the repository, conservatively: every
  file beside it and below its folder that is not another test file, the conftest chain up
  to the rootdir, and the modules and packages at the rootdir and beside the matrix file;
- ``cell_files`` (``isolation = "cell"`` only): every test file of the cell, since there
  files share one process and one file's import can change another's verdict.

Only the verdicts are keyed; how they are classified is not (the stored events are
classified again on reuse, by this harness).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import platform
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

import compat
from compat.harness.cache.installed import installed_digest
from compat.harness.config.matrix import Cell, Matrix
from compat.harness.config.suites import NORECURSE_DIRS, TestFile, is_test_file
from compat.harness.files import read_json_object
from compat.harness.install.env_folder import Env
from compat.harness.install.install_plan import PROJECT_FILES
from compat.harness.install.lockfile import LOCK, installed_tags, read_packages, wheel_for

__all__ = [
    "KEY_SCHEMA",
    "FileKey",
    "Hasher",
    "cell_parts",
    "changed_parts",
    "file_parts",
    "project_sources",
]

KEY_SCHEMA = 2  # the recipe below: bump it and every stored key is a different one
PACKAGE = Path(compat.__file__).resolve().parent
CELL_CODE = ("__init__.py", "events.py", "pytest_plugin.py", "file_runner.py", "shims")
CELL_INI = PACKAGE / "cell_pytest.ini"
_SKIP_DIRS = ("__pycache__", *NORECURSE_DIRS)
# Host variables a cell inherits that steer torch, its libraries or Python: in the key.
HOST_ENV_PREFIXES = (
    "TORCH", "PYTORCH", "CUDA", "NVIDIA", "TRITON", "OMP_", "MKL", "KMP_", "OPENBLAS",
    "LD_", "PYTHON", "COMPAT_", "XLA", "ROCM", "HIP_", "NCCL",
)  # fmt: skip
HOST_ENV_IGNORED = frozenset(
    {"COMPAT_ENVS_DIR", "COMPAT_VERDICTS_DIR", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"}
)


def digest(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def digest_json(value: Any) -> str:
    return digest(json.dumps(value, sort_keys=True, default=str, separators=(",", ":")))


@dataclass(frozen=True)
class FileKey:
    """A (cell, file)'s key: its parts, and the digest of them all (the store's address)."""

    parts: Mapping[str, str]

    @property
    def digest(self) -> str:
        return digest_json(dict(self.parts))


def changed_parts(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """The parts that differ (one only one side has included): why a file reran."""
    return sorted(k for k in {*old, *new} if old.get(k) != new.get(k))


class Hasher:
    """Content digests of files and trees, each file read once per run (cells share it)."""

    def __init__(self) -> None:
        self._files: dict[Path, str] = {}
        self._trees: dict[tuple[object, ...], str] = {}
        self._lock = threading.Lock()

    def tree(self, key: tuple[object, ...], compute: Callable[[], str]) -> str:
        """``compute()`` once per run for ``key``: the digest of a listing every cell shares
        (the shims, a test folder's helpers). Walking the tree again for each of 22 cells
        cost an all-cached rerun ~10% of its time."""
        with self._lock:
            known = self._trees.get(key)
        if known is None:
            known = compute()
            with self._lock:
                self._trees[key] = known
        return known

    def file(self, path: Path) -> str:
        with self._lock:
            known = self._files.get(path)
        if known is not None:
            return known
        try:
            found = digest(path.read_bytes())
        except OSError as exc:  # unreadable: its own mark, never equal to a content's digest
            found = f"unreadable:{type(exc).__name__}"
        with self._lock:
            self._files[path] = found
        return found

    def files(self, paths: Iterable[Path], base: Path) -> str:
        """One digest of ``paths`` by their place under ``base`` and their contents."""
        listing = sorted((os.path.relpath(p, base), self.file(p)) for p in set(paths))
        return digest_json(listing)


def _walk(folder: Path, *, tests_too: bool = False) -> list[Path]:
    """Every file under ``folder`` (pytest's skipped folders and caches aside), test files
    only when ``tests_too``: a helper module, a data file, a conftest, a fixture."""
    found: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if not any(fnmatch.fnmatch(entry.name, p) for p in _SKIP_DIRS):
                found += _walk(Path(entry.path), tests_too=tests_too)
        elif (
            entry.is_file()
            and not entry.name.endswith((".pyc", ".pyo"))
            and (tests_too or not is_test_file(entry.name))
        ):
            found.append(Path(entry.path))
    return found


def _top_level(folder: Path) -> list[Path]:
    """The modules a folder on ``sys.path`` gives: its ``.py`` files and its packages."""
    found: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        path = Path(entry.path)
        if entry.is_file() and entry.name.endswith(".py") and not is_test_file(entry.name):
            found.append(path)
        elif entry.is_dir() and (path / "__init__.py").is_file() and path.name != "__pycache__":
            found += _walk(path)
    return found


def _conftests(folder: Path, rootdir: Path) -> list[Path]:
    found = []
    for parent in (folder, *folder.parents):
        if (parent / "conftest.py").is_file():
            found.append(parent / "conftest.py")
        if parent == rootdir or rootdir not in parent.parents:
            break
    return found


def _env_part(env_dir: Path) -> str:
    """The env's exact contents: each locked package, version and installed wheel's sha256,
    and what the env's stamp says it holds (``pip freeze``)."""
    packages = []
    for package in read_packages(env_dir / LOCK):
        name = canonicalize_name(package.name)
        wheel = wheel_for(package, installed_tags(env_dir, name))
        packages.append([name, str(package.version or ""), wheel.sha256 if wheel else ""])
    stamp = read_json_object(Env.at(env_dir).stamp_path)
    return digest_json({"lock": sorted(packages), "freeze": stamp.get("freeze", [])})


def _host_env() -> dict[str, str]:
    return {
        k: v
        for k, v in sorted(os.environ.items())
        if k.startswith(HOST_ENV_PREFIXES) and k not in HOST_ENV_IGNORED
    }


def _interpreter_part(env_dir: Path) -> str:
    """``implementation`` and ``version_info`` of the env's ``pyvenv.cfg``; the interpreter
    it was made from (the stamp) when there is none (an env this harness did not make)."""
    values: dict[str, str] = {}
    try:
        for line in (env_dir / "pyvenv.cfg").read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition("=")
            if name.strip() in ("implementation", "version_info", "version"):
                values[name.strip()] = value.strip()
    except OSError:
        values["interpreter"] = str(read_json_object(Env.at(env_dir).stamp_path).get("python"))
    values["machine"] = f"{sys.platform} {platform.machine()}"
    return digest_json(values)


def _options(matrix: Matrix, cell: Cell) -> dict[str, Any]:
    """The settings that change what a cell runs or how its verdicts come out."""
    return {
        "cell": {k: v for k, v in cell.to_dict().items() if k != "gating"},
        "deps": list(matrix.cell_deps),
        "deps_as_of": matrix.deps_as_of,
        "env": dict(matrix.env),
        "timeout": matrix.timeout,
        "file_timeout": matrix.file_timeout,
        "memory_limit_mb": matrix.memory_limit_mb,
        "reruns": matrix.reruns,
        "select": matrix.select,
        "strict": matrix.strict,
        "isolation": matrix.isolation,
        "pytest_args": list(matrix.pytest_args),
        "preload": list(matrix.preload),
        "install_project": matrix.install_project,
        "torch_backend": matrix.torch_backend,
        "host_env": _host_env(),
    }


def _expectations(matrix: Matrix, cell: Cell) -> list[dict[str, Any]]:
    return [
        {
            "test": e.test,
            "reason": e.reason,
            "raises": e.raises,
            "match": e.match,
            "link": e.link,
            "issue": e.issue,
        }
        for e in matrix.expectations
        if e.where.matches(cell)
    ]


def cell_parts(
    matrix: Matrix,
    cell: Cell,
    env_dir: Path,
    hasher: Hasher,
    *,
    project_roots: Sequence[Path] = (),
) -> dict[str, str]:
    """The parts every file of the cell shares. ``project_roots``: the source folders of a
    user project installed into the env (their every file is hashed); the matrix's own
    ``install-project`` adds its sources (:func:`project_sources`)."""
    if matrix.project_root is not None:
        project_roots = [*project_roots, *project_sources(matrix.project_root)]
    project = [p for root in project_roots for p in _walk_or_file(root)]
    return {
        "env": _env_part(env_dir),
        "installed": installed_digest(env_dir),
        "interpreter": _interpreter_part(env_dir),
        "cell_code": hasher.tree(("cell_code",), _cell_code_digest(hasher)),
        "harness": digest(f"compat {compat.__version__}; key {KEY_SCHEMA}"),
        "options": digest_json(_options(matrix, cell)),
        "expectations": digest_json(_expectations(matrix, cell)),
        "project": digest_json([hasher.files(_walk_or_file(r), r.parent) for r in project_roots])
        if project
        else digest_json([]),
    }


def _cell_code_digest(hasher: Hasher) -> Callable[[], str]:
    def compute() -> str:
        code = [p for name in CELL_CODE for p in _walk_or_file(PACKAGE / name)]
        return hasher.files([*code, CELL_INI], PACKAGE)

    return compute


def project_sources(root: Path) -> list[Path]:
    """What an editable ``install-project`` lets a cell import from the repository: its
    build files, a ``src/`` layout's tree, and the flat layout's top-level modules and
    packages. Not the whole folder: its ``reports/`` change at every run."""
    found = [root / name for name in PROJECT_FILES if (root / name).is_file()]
    if (root / "src").is_dir():
        found.append(root / "src")
    return [*found, *_top_level(root)]


def _walk_or_file(path: Path) -> list[Path]:
    return _walk(path, tests_too=True) if path.is_dir() else [path] if path.is_file() else []


def file_parts(
    test: TestFile,
    *,
    base: Path,
    rootdir: Path,
    hasher: Hasher,
    isolation: str,
    cell_files: Sequence[TestFile] = (),
) -> dict[str, str]:
    """The parts of one test file: itself, what it can import, and (one process for the
    whole cell) every other file of the cell."""
    path = rootdir / test.nodeid
    folder = path.parent

    def imports() -> str:
        helpers = [
            *_walk(folder),
            *_conftests(folder, rootdir),
            *_top_level(rootdir),
            *_top_level(base),
        ]
        return hasher.files(helpers, rootdir)

    parts = {
        "test_file": digest_json([hasher.file(path), list(test.args)]),
        "imports": hasher.tree(("imports", folder, rootdir, base), imports),
    }
    if isolation == "cell":
        parts["cell_files"] = hasher.files([rootdir / f.nodeid for f in cell_files], rootdir)
    return parts
