"""The verdict cache's key: each input changed in turn changes the file's key (it reruns),
and says which part changed; what a file cannot see leaves its key alone."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import compat
from compat.harness.cache import key as key_module
from compat.harness.cache.key import FileKey, changed_parts
from compat.harness.cache.reuse import CachePolicy, plan_cell
from compat.harness.cache.store import Store
from compat.harness.config.matrix import Matrix, load_matrix
from compat.harness.execute.cell_runner import rootdir_of, scope_of
from compat.harness.install.lockfile import read_lock

WHEEL_SHA = "a" * 64
LOCK = f"""\
lock-version = "1.0"
created-by = "test"

[[packages]]
name = "torch"
version = "2.8.0"
wheels = [{{ url = "https://example.invalid/torch-2.8.0-py3-none-any.whl", size = 10, \
hashes = {{ sha256 = "{WHEEL_SHA}" }} }}]
"""


class World:
    """A repository (matrix, tests, helpers, a project), a cell's env and the cell code."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root / "repo"  # the cell code lives outside it, as an installed package
        root = self.root
        self.monkeypatch = monkeypatch
        self.settings: dict[str, str] = {}
        self.tables = ""
        core = root / "tests" / "core"
        core.mkdir(parents=True)
        for name, text in {
            "tests/conftest.py": "X = 1\n",
            "tests/core/conftest.py": "Y = 1\n",
            "tests/core/helper.py": "def help(): return 1\n",
            "tests/core/data/table.json": "{}\n",
            "tests/core/test_a.py": "from helper import help\ndef test_a(): assert help()\n",
            "tests/core/test_b.py": "def test_b(): pass\n",
            "project/src/mine/__init__.py": "VALUE = 1\n",
        }.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text, encoding="utf-8")
        self.env = root / "envs" / "torch2.8.0-torch.ao-py3.11"
        site = self.env / "lib" / "python3.11" / "site-packages"
        (site / "torch-2.8.0.dist-info").mkdir(parents=True)
        (site / "torch-2.8.0.dist-info" / "WHEEL").write_text(
            "Wheel-Version: 1.0\nTag: py3-none-any\n", encoding="utf-8"
        )
        (site / "torch" / "ao").mkdir(parents=True)
        (site / "torch" / "ao" / "port.py").write_text("PORTED = ['tag']\n", "utf-8")
        (self.env / "pylock.toml").write_text(LOCK, encoding="utf-8")
        (self.env / "pyvenv.cfg").write_text(
            "implementation = CPython\nversion_info = 3.11.7\n", encoding="utf-8"
        )
        (self.env / ".compat-env.json").write_text('{"freeze": ["torch==2.8.0"]}', "utf-8")
        # The cell code, a copy the key reads instead of the installed package's.
        self.package = root.parent / "package"
        for name in key_module.CELL_CODE:
            source = key_module.PACKAGE / name
            if source.is_dir():
                shutil.copytree(source, self.package / name, ignore=shutil.ignore_patterns("*.pyc"))
            else:
                self.package.mkdir(exist_ok=True)
                shutil.copy2(source, self.package / name)
        shutil.copy2(key_module.CELL_INI, self.package / "cell_pytest.ini")
        monkeypatch.setattr(key_module, "PACKAGE", self.package)
        monkeypatch.setattr(key_module, "CELL_INI", self.package / "cell_pytest.ini")

    def matrix(self) -> Matrix:
        lines = "".join(f"{k} = {v}\n" for k, v in self.settings.items())
        (self.root / "matrix.toml").write_text(
            f'[matrix]\ntests = ["tests/core"]\nstacks = ["torch.ao"]\n{lines}'
            f'[[torch]]\nversion = "2.8.0"\n{self.tables}',
            encoding="utf-8",
        )
        return load_matrix(self.root / "matrix.toml")

    def keys(self) -> dict[str, FileKey]:
        matrix = self.matrix()
        cell = matrix.cells[0]
        policy = CachePolicy(
            Store(self.root / "verdicts"),
            "r",
            project_roots=(self.root / "project" / "src",),
        )
        plans = plan_cell(
            policy,
            matrix,
            cell,
            scope_of(matrix, cell).files,
            self.env,
            base=self.root,
            rootdir=rootdir_of(matrix),
        )
        return {p.test.nodeid.rsplit("/", 1)[-1]: p.key for p in plans}

    def append(self, relative: str, text: str = "# changed\n") -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def _set(name: str, value: str) -> Callable[[World], None]:
    def change(world: World) -> None:
        world.settings[name] = value

    return change


def _lock_hash(world: World) -> None:
    lock = world.env / "pylock.toml"
    lock.write_text(lock.read_text("utf-8").replace(WHEEL_SHA, "b" * 64), encoding="utf-8")


def _freeze(world: World) -> None:
    (world.env / ".compat-env.json").write_text('{"freeze": ["torch==2.8.0", "x==1"]}', "utf-8")


def _installed(world: World) -> Path:
    return world.env / "lib" / "python3.11" / "site-packages" / "torch" / "ao" / "port.py"


def _replace_installed(world: World) -> None:  # as scripts/plant_regression.py does
    path = _installed(world)
    (path.parent / "port.tmp").write_text("PORTED = []\n", encoding="utf-8")
    os.replace(path.parent / "port.tmp", path)


def _edit_installed(world: World) -> None:  # same size, in place: only the mtime moves
    path = _installed(world)
    stat = path.stat()
    path.write_text(path.read_text("utf-8").replace("tag", "tog"), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def _interpreter(world: World) -> None:
    cfg = world.env / "pyvenv.cfg"
    cfg.write_text(cfg.read_text("utf-8").replace("3.11.7", "3.11.8"), encoding="utf-8")


def _expectation(world: World) -> None:
    world.tables += '[[expect]]\ntest = "test_a"\nraises = "ValueError"\nreason = "known"\n'


def _torch_deps(world: World) -> None:
    world.tables = 'deps = ["executorch==1.0.0"]\n' + world.tables  # inside [[torch]]


def _harness_version(world: World) -> None:
    compat.__version__ = "99.0"  # restored by the monkeypatch in the test


CHANGES: list[tuple[str, Callable[[World], None], str]] = [
    ("a wheel's sha256 (another build)", _lock_hash, "env"),
    ("the env's freeze", _freeze, "env"),
    ("an installed source replaced", _replace_installed, "installed"),
    ("an installed source edited in place", _edit_installed, "installed"),
    ("a .pth file added", lambda w: w.append(f"{_installed(w).parents[2]}/x.pth"), "installed"),
    ("the interpreter's version", _interpreter, "interpreter"),
    ("the test file", lambda w: w.append("tests/core/test_a.py"), "test_file"),
    ("the conftest beside it", lambda w: w.append("tests/core/conftest.py"), "imports"),
    ("a conftest above it", lambda w: w.append("tests/conftest.py"), "imports"),
    ("a helper module beside it", lambda w: w.append("tests/core/helper.py"), "imports"),
    ("a new helper module", lambda w: w.append("tests/core/new_helper.py"), "imports"),
    ("a data file below it", lambda w: w.append("tests/core/data/table.json", "[]"), "imports"),
    ("a module at the rootdir", lambda w: w.append("util.py"), "imports"),
    ("the shims", lambda w: w.append("../package/shims/__init__.py"), "cell_code"),
    ("the pytest plugin", lambda w: w.append("../package/pytest_plugin.py"), "cell_code"),
    ("the file runner", lambda w: w.append("../package/file_runner.py"), "cell_code"),
    ("the events contract", lambda w: w.append("../package/events.py"), "cell_code"),
    ("the cell's pytest ini", lambda w: w.append("../package/cell_pytest.ini"), "cell_code"),
    ("the harness version", _harness_version, "harness"),
    ("the installed project", lambda w: w.append("project/src/mine/__init__.py"), "project"),
    ("an env variable", _set("env", '{ MODE = "fast" }'), "options"),
    ("deps", _set("deps", '["pytest", "numpy", "scipy"]'), "options"),
    ("the timeout", _set("timeout", "901"), "options"),
    ("the file timeout", _set("file-timeout", "60"), "options"),
    ("the memory limit", _set("memory-limit-mb", "4096"), "options"),
    ("reruns", _set("reruns", "2"), "options"),
    ("pytest args", _set("pytest-args", '["-x"]'), "options"),
    ("preload", _set("preload", '["json"]'), "options"),
    ("strict", _set("strict", "true"), "options"),
    ("install-project", _set("install-project", "true"), "options"),
    ("the torch backend", _set("torch-backend", '"cpu"'), "options"),
    ("a per-torch pin", _torch_deps, "options"),
    ("an expectation", _expectation, "expectations"),
    ("a host variable torch reads", lambda w: w.monkeypatch.setenv("TORCH_LOGS", "+x"), "options"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "change", "part"), CHANGES, ids=[c[0] for c in CHANGES])
def test_each_input_changes_the_key(
    what: str,
    change: Callable[[World], None],
    part: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compat, "__version__", compat.__version__)
    world = World(tmp_path, monkeypatch)
    before = world.keys()
    assert before == world.keys(), "the key is not stable on its own"
    change(world)
    after = world.keys()
    assert after["test_a.py"].digest != before["test_a.py"].digest, (
        f"{what}: test_a would not rerun"
    )
    assert changed_parts(before["test_a.py"].parts, after["test_a.py"].parts) == [part]


def test_isolation_cell_keys_every_file_of_the_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path, monkeypatch)
    world.settings["isolation"] = '"cell"'
    before = world.keys()
    world.append("tests/core/test_b.py")  # one process: b's import can change a's verdict
    after = world.keys()
    assert changed_parts(before["test_a.py"].parts, after["test_a.py"].parts) == ["cell_files"]


def test_another_test_file_leaves_the_key_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process per file: editing test_b reruns test_b only; a host variable no cell
    library reads (a CI run's id) does not rerun anything."""
    world = World(tmp_path, monkeypatch)
    before = world.keys()
    monkeypatch.setenv("GITHUB_RUN_ID", "12345")
    world.append("tests/core/test_b.py")
    cache = world.root / "tests" / "core" / "__pycache__"  # bytecode is not an input
    cache.mkdir()
    (cache / "helper.cpython-311.pyc").write_bytes(b"x")
    after = world.keys()
    assert after["test_a.py"] == before["test_a.py"]
    assert after["test_b.py"] != before["test_b.py"]


def test_a_sdist_digest_is_not_the_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the wheel installed counts: the same build listed with another sdist is a hit."""
    world = World(tmp_path, monkeypatch)
    before = world.keys()
    lock = world.env / "pylock.toml"
    text = lock.read_text("utf-8").replace(
        "wheels = [",
        'sdist = { url = "https://example.invalid/torch-2.8.0.tar.gz", hashes = { sha256 = "'
        + "c" * 64
        + '" } }\nwheels = [',
    )
    lock.write_text(text, encoding="utf-8")
    assert read_lock(lock)[0].sdist is not None  # a valid lock, with an sdist now
    assert world.keys() == before


def test_an_installed_project_is_keyed_by_its_sources_not_its_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``install-project``: the editable project's src tree, top-level packages and build
    files are keyed; a run's own reports beside them are not (or no rerun would ever hit)."""
    world = World(tmp_path, monkeypatch)
    world.settings["install-project"] = "true"
    world.append("src/mypkg/__init__.py", "A = 1\n")
    world.append("pyproject.toml", "[project]\nname = 'mypkg'\n")
    before = world.keys()
    world.append("reports/run-1/summary.md", "# a run\n")
    assert world.keys() == before
    for edit in ("src/mypkg/__init__.py", "pyproject.toml"):
        world.append(edit)
        after = world.keys()
        assert changed_parts(before["test_a.py"].parts, after["test_a.py"].parts) == ["project"]
        before = after
