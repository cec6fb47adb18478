"""The user's package and pins in every cell (``install-project``, ``[[torch]] deps``), and
the CPU-wheel recipe (``torch-backend``, a CPU index on the ``release`` channel).

The plans and keys are checked without uv; the CPU recipe runs real uv against a loopback
index shaped like PyTorch's CPU index (the real one is out of reach here).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from compat.harness.config.matrix import Cell, Matrix, load_matrix
from compat.harness.install import envs, uv_cli
from compat.harness.install.envs import ensure_env
from compat.harness.install.install_plan import InstallPlan, plan_for
from compat.harness.install.interpreters import find_interpreter
from compat.harness.install.lockfile import locked_pins
from compat.harness.install.pipconfig import PipIndexConfig

from .fake_index import Listing, build_wheel, serve, write_listing

WriteMatrix = Callable[..., Path]
CELL = "torch2.8.0-torch.ao-py3.11"
PYPROJECT = '[project]\nname = "mypkg"\nversion = "0.1.0"\ndependencies = []\n'


def matrix_of(write_matrix: WriteMatrix, settings: str = "", entry: str = "") -> Matrix:
    return load_matrix(
        write_matrix(
            f'[matrix]\npython = ["3.11"]\nstacks = ["torch.ao"]\n{settings}\n'
            f'[[torch]]\nversion = "2.8.0"\n{entry}\n'
            '[[torch]]\nversion = "2.10.0"\n'
            '[[include]]\ntorch = "2.9.0"\nstack = "torch.ao"\ndeps = ["extra-pin==1"]\n'
        )
    )


def plan_of(matrix: Matrix, cell_id: str, tmp_path: Path) -> InstallPlan:
    return plan_for(
        matrix.cell(cell_id), matrix, envs_root=tmp_path / "envs", pip_config=PipIndexConfig()
    )[1]


def test_per_torch_deps_reach_only_their_cells_and_their_keys(
    write_matrix: WriteMatrix, tmp_path: Path
) -> None:
    plain = matrix_of(write_matrix)
    pinned = matrix_of(write_matrix, entry='deps = ["executorch==0.7.0"]')
    assert pinned.cell(CELL).deps == ("executorch==0.7.0",)
    assert pinned.cell("torch2.10.0-torch.ao-py3.11").deps == ()
    assert pinned.cell("torch2.9.0-torch.ao-py3.11").deps == ("extra-pin==1",)
    before, after = plan_of(plain, CELL, tmp_path), plan_of(pinned, CELL, tmp_path)
    assert after.requirements == ("torch==2.8.0", "executorch==0.7.0", "pytest", "numpy")
    assert before.key != after.key  # a new pin rebuilds the env
    other = "torch2.10.0-torch.ao-py3.11"
    assert plan_of(plain, other, tmp_path).key == plan_of(pinned, other, tmp_path).key
    assert "extra-pin==1" in plan_of(pinned, "torch2.9.0-torch.ao-py3.11", tmp_path).requirements


def test_a_cell_with_deps_round_trips_through_its_record() -> None:
    cell = Cell("3.11", "2.8.0", "torch.ao", deps=("executorch==0.7.0",))
    written = json.loads(json.dumps(cell.to_dict()))
    assert written["deps"] == ["executorch==0.7.0"]
    assert Cell.from_dict(written) == cell
    assert hash(Cell.from_dict(written)) == hash(cell)


def test_install_project_adds_the_repository_editable_and_keys_on_its_build_files(
    write_matrix: WriteMatrix, tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    without = plan_of(matrix_of(write_matrix), CELL, tmp_path)
    matrix = matrix_of(write_matrix, "install-project = true")
    assert matrix.project_root == tmp_path.resolve()
    with_project = plan_of(matrix, CELL, tmp_path)
    assert with_project.requirements[-1] == f"-e {tmp_path.resolve()}"
    assert with_project.project_digest
    assert without.project_digest is None
    assert with_project.key != without.key
    assert with_project.key == plan_of(matrix, CELL, tmp_path).key  # stable while unchanged
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "code.py").write_text("X = 2\n", encoding="utf-8")
    assert plan_of(matrix, CELL, tmp_path).key == with_project.key  # an edit: no rebuild
    (tmp_path / "pyproject.toml").write_text(
        PYPROJECT.replace("[]", '["packaging"]'), encoding="utf-8"
    )
    assert plan_of(matrix, CELL, tmp_path).key != with_project.key  # a new dependency: rebuild


def test_the_env_build_resolves_and_installs_the_project_with_the_cell(
    write_matrix: WriteMatrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uv stubbed: the project goes into the resolve with torch, and its locked entry
    (a ``directory``) comes back as an editable line of the pinned install."""
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    plan = plan_of(matrix_of(write_matrix, "install-project = true"), CELL, tmp_path)
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], log: Path, timeout: float, env: object) -> str:
        calls.append(cmd)
        if "venv" in cmd:
            (Path(cmd[-1]) / "bin").mkdir(parents=True)
            (Path(cmd[-1]) / "bin" / "python").touch()
            (Path(cmd[-1]) / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
        if "compile" in cmd:
            Path(cmd[cmd.index("-o") + 1]).write_text(
                'lock-version = "1.0"\ncreated-by = "uv"\n\n[[packages]]\nname = "torch"\n'
                'version = "2.8.0"\nwheels = [{ url = "http://files.invalid/'
                'torch-2.8.0-py3-none-any.whl", hashes = { sha256 = "00" } }]\n\n'
                '[[packages]]\nname = "mypkg"\n'
                f'directory = {{ path = "{tmp_path}", editable = true }}\n',
                encoding="utf-8",
            )
        return ""

    monkeypatch.setattr(uv_cli, "run", fake_run)
    monkeypatch.setattr(envs, "find_interpreter", lambda python: "/usr/bin/python3")
    ensure_env(plan, log=tmp_path / "install.log", timeout=60)
    requirements_in = (plan.env_dir / "requirements.in").read_text(encoding="utf-8")
    assert f"-e {tmp_path.resolve()}" in requirements_in.splitlines()
    pinned = (plan.env_dir / "requirements.lock.txt").read_text(encoding="utf-8").splitlines()
    assert pinned == ["torch==2.8.0", f"-e {tmp_path}"]
    assert locked_pins(plan.env_dir / "pylock.toml") == pinned
    stamp = json.loads((plan.env_dir / ".compat-env.json").read_text(encoding="utf-8"))
    assert stamp["plan"]["project_digest"] == plan.project_digest


def test_torch_backend_is_an_index_flag_of_every_uv_call_and_of_the_key(
    write_matrix: WriteMatrix, tmp_path: Path
) -> None:
    default = plan_of(matrix_of(write_matrix), CELL, tmp_path)
    cpu = plan_of(matrix_of(write_matrix, 'torch-backend = "cpu"'), CELL, tmp_path)
    assert cpu.index_args[-2:] == ("--torch-backend", "cpu")
    assert "--torch-backend" in cpu.uv_source_args  # given to the resolve and the install
    assert cpu.key != default.key


# --- the CPU index recipe, with real uv against a loopback index ---------------------------

TAG = "py3-none-any"


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A default index with torch 2.8.0 (the CUDA build PyPI has), and one shaped like
    PyTorch's CPU index with 2.8.0+cpu (its ``+`` as ``%2B``, as PyTorch's pages write it)."""
    root = tmp_path_factory.mktemp("cpu-indexes")
    pypi, cpu = root / "pypi", root / "cpu"
    write_listing(pypi, Listing("torch", [build_wheel(pypi, "torch", "2.8.0", TAG)]))
    write_listing(cpu, Listing("torch", [build_wheel(cpu, "torch", "2.8.0+cpu", TAG)]))
    with serve(root) as url:
        yield f"{url}/pypi", f"{url}/cpu"


def installed_torch(plan: InstallPlan) -> str:
    site = next(plan.env_dir.glob("lib/python*/site-packages"))
    (dist,) = site.glob("torch-*.dist-info")
    return dist.name.removesuffix(".dist-info").split("-", 1)[1]


@pytest.mark.parametrize(("channel", "build"), [("", "2.8.0"), ("cpu", "2.8.0+cpu")])
def test_a_cpu_index_on_the_release_channel_gives_cpu_builds(
    write_matrix: WriteMatrix,
    tmp_path: Path,
    indexes: tuple[str, str],
    channel: str,
    build: str,
) -> None:
    if find_interpreter("3.11") is None:
        pytest.skip("no CPython 3.11 here")
    pypi, cpu = indexes
    table = f'[channels.release]\nindex-url = "{cpu}"\n' if channel else ""
    matrix = matrix_of(write_matrix, f"deps = []\n{table}")
    _, plan = plan_for(
        matrix.cell(CELL),
        matrix,
        envs_root=tmp_path / "envs",
        pip_config=PipIndexConfig(index_url=pypi),
    )
    ensure_env(plan, log=tmp_path / "install.log", timeout=120)
    assert installed_torch(plan) == build, (tmp_path / "install.log").read_text()
    assert matrix.cell(CELL).id == CELL  # the recipe keeps every cell id
