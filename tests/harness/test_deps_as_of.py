"""``deps-as-of``: a cell's other packages resolved as the index had them at a cutoff.

Upload times come from stub listings (unit tests) or from a PEP 691 JSON page on
loopback (the uv tests): nothing leaves the machine, no torch is installed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from packaging.version import Version

from compat.harness.config.matrix import Matrix, load_matrix
from compat.harness.install import envs, prefetch, uv_cli
from compat.harness.install.envs import ensure_env
from compat.harness.install.index import IndexFile, IndexUnreachable, Listings, list_wheels
from compat.harness.install.install_plan import plan_for
from compat.harness.install.interpreters import find_interpreter
from compat.harness.install.lockfile import LOCK, read_packages
from compat.harness.install.pipconfig import PipIndexConfig
from compat.harness.install.resolve import resolve_cell

from .fake_index import Listing, build_wheel, serve, write_json_listing, write_listing

WriteMatrix = Callable[..., Path]
UTC = timezone.utc
TORCH_222 = datetime(2024, 3, 27, 21, 7, 12, 500000, tzinfo=UTC)  # its last wheel
TORCHAO_02 = datetime(2024, 4, 1, 9, 0, tzinfo=UTC)
NIGHTLY = "http://nightly.invalid/whl/nightly/cpu"

MATRIX = """
[matrix]
python = ["3.11"]
stacks = ["torch.ao", "torchao"]
deps = ["fakedep"]
{setting}

[channels.nightly]
index-url = "{nightly}"

[[torch]]
version = "2.2.2"
torchao = "0.2.0"

[[torch]]
version = "2024-03-27"
channel = "nightly"
stacks = ["torch.ao"]
"""


def wheel(
    project: str, version: str, uploaded: datetime | None, tag: str = "py3-none-any"
) -> IndexFile:
    name = f"{project}-{version}-{tag}.whl"
    return IndexFile(name, f"http://files.invalid/{name}", Version(version), None, None, uploaded)


PAGES: dict[tuple[str | None, str], list[IndexFile]] = {
    (None, "torch"): [
        wheel("torch", "2.2.2", datetime(2024, 3, 27, 19, 0, tzinfo=UTC), "cp311-cp311-any"),
        wheel("torch", "2.2.2", TORCH_222),
        wheel("torch", "2.13.0", None),  # a mirror without PEP 700 times
    ],
    (None, "torchao"): [wheel("torchao", "0.2.0", TORCHAO_02)],
    (NIGHTLY, "torch"): [wheel("torch", "2.3.0.dev20240327+cpu", None)],
}


class StubIndex:
    """A lister over ``PAGES`` that counts its calls; ``down`` makes every index fail."""

    def __init__(self, down: bool = False) -> None:
        self.calls: list[tuple[str | None, str]] = []
        self.down = down

    def __call__(self, url: str | None, project: str) -> list[IndexFile]:
        self.calls.append((url, project))
        if self.down:
            raise IndexUnreachable(f"{url}: ConnectionError")
        return list(PAGES.get((url, project), []))


def matrix_with(write_matrix: WriteMatrix, setting: str, nightly: str = NIGHTLY) -> Matrix:
    return load_matrix(write_matrix(MATRIX.format(setting=setting, nightly=nightly)))


def cutoff(
    matrix: Matrix, cell_id: str, envs_root: Path, lister: StubIndex
) -> tuple[str | None, list[str]]:
    channel = matrix.channels[matrix.cell(cell_id).channel]
    resolved = resolve_cell(
        matrix.cell(cell_id),
        channel,
        envs_root=envs_root,
        listings=Listings(lister),
        deps_as_of=matrix.deps_as_of,
    )
    return resolved.deps_cutoff, resolved.notes


def test_torch_ao_cell_is_resolved_as_of_its_torch_release(
    write_matrix: WriteMatrix, tmp_path: Path
) -> None:
    matrix = matrix_with(write_matrix, 'deps-as-of = "torch-release"')
    lister = StubIndex()
    # the last file's time, rounded up to the second so that the release is included
    assert cutoff(matrix, "torch2.2.2-torch.ao-py3.11", tmp_path, lister) == (
        "2024-03-27T21:07:13Z",
        [],
    )
    assert lister.calls == [(None, "torch")]  # the default index, torch only


def test_torchao_cell_takes_the_later_of_torch_and_torchao(
    write_matrix: WriteMatrix, tmp_path: Path
) -> None:
    matrix = matrix_with(write_matrix, 'deps-as-of = "torch-release"')
    assert cutoff(matrix, "torch2.2.2-torchao0.2.0-py3.11", tmp_path, StubIndex()) == (
        "2024-04-01T09:00:00Z",
        [],
    )


def test_nightly_cutoff_is_the_end_of_its_date(write_matrix: WriteMatrix, tmp_path: Path) -> None:
    """PyTorch's HTML pages give no upload time: the date in the version stands in."""
    matrix = matrix_with(write_matrix, 'deps-as-of = "torch-release"')
    lister = StubIndex()
    found = cutoff(matrix, "nightly-torch2024-03-27-torch.ao-py3.11", tmp_path, lister)
    assert found == ("2024-03-27T23:59:59Z", [])
    assert lister.calls == [(NIGHTLY, "torch")]  # the listing resolve read anyway


@pytest.mark.parametrize("down", [False, True], ids=["no-upload-time", "index-unreachable"])
def test_no_upload_time_means_no_cutoff_and_a_note(
    write_matrix: WriteMatrix, tmp_path: Path, down: bool
) -> None:
    text = MATRIX.replace('version = "2.2.2"', 'version = "2.13.0"')
    matrix = load_matrix(
        write_matrix(text.format(setting='deps-as-of = "torch-release"', nightly=NIGHTLY))
    )
    found, notes = cutoff(matrix, "torch2.13.0-torch.ao-py3.11", tmp_path, StubIndex(down=down))
    assert found is None
    assert notes == [
        "deps-as-of: no upload time for torch 2.13.0 on the index"
        + (" (None: ConnectionError)" if down else "")
        + "; deps resolved as of today"
    ]


def test_a_found_upload_time_is_remembered(write_matrix: WriteMatrix, tmp_path: Path) -> None:
    """A release's upload time never changes: a warm rerun asks no index."""
    matrix = matrix_with(write_matrix, 'deps-as-of = "torch-release"')
    cell = "torch2.2.2-torchao0.2.0-py3.11"
    first = cutoff(matrix, cell, tmp_path, StubIndex())
    offline = StubIndex(down=True)
    assert cutoff(matrix, cell, tmp_path, offline) == first
    assert offline.calls == []


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ('deps-as-of = "2024-03-28"', "2024-03-28T23:59:59Z"),  # a date: its end, UTC
        ("deps-as-of = 2024-03-28T12:00:00+02:00", "2024-03-28T10:00:00Z"),
        ('deps-as-of = "2024-03-28T12:00:00"', "2024-03-28T12:00:00Z"),  # no offset: UTC
        ('deps-as-of = "2024-03-28T12:00:00.25Z"', "2024-03-28T12:00:01Z"),
    ],
)
def test_a_fixed_cutoff_needs_no_index(
    write_matrix: WriteMatrix, tmp_path: Path, setting: str, expected: str
) -> None:
    matrix = matrix_with(write_matrix, setting)
    lister = StubIndex(down=True)
    for cell in ("torch2.2.2-torchao0.2.0-py3.11", "torch2.2.2-torch.ao-py3.11"):
        assert cutoff(matrix, cell, tmp_path, lister) == (expected, [])
    assert lister.calls == []


def plan(matrix: Matrix, cell_id: str, envs_root: Path, lister: StubIndex | None = None):
    return plan_for(
        matrix.cell(cell_id),
        matrix,
        envs_root=envs_root,
        pip_config=PipIndexConfig(),
        listings=Listings(lister or StubIndex()),
    )[1]


def test_the_cutoff_is_part_of_the_plan_and_its_key(
    write_matrix: WriteMatrix, tmp_path: Path
) -> None:
    cell = "torch2.2.2-torch.ao-py3.11"
    none = plan(matrix_with(write_matrix, ""), cell, tmp_path)
    release = plan(matrix_with(write_matrix, 'deps-as-of = "torch-release"'), cell, tmp_path)
    dated = plan(matrix_with(write_matrix, 'deps-as-of = "2024-03-28"'), cell, tmp_path)
    again = plan(matrix_with(write_matrix, 'deps-as-of = "2024-03-28"'), cell, tmp_path)
    assert (none.deps_cutoff, none.cutoff_args) == (None, ())
    assert len({none.key, release.key, dated.key}) == 3
    assert again.key == dated.key
    assert release.to_dict()["deps_cutoff"] == "2024-03-27T21:07:13Z"
    assert release.cutoff_args == (
        "--exclude-newer",
        "2024-03-27T21:07:13Z",
        "--exclude-newer-package",
        "torch=false",
        "--exclude-newer-package",
        "torchao=false",
        "--exclude-newer-package",
        "pytorch-triton=false",
    )
    # a cell without a cutoff keeps the key it had before deps-as-of existed
    assert none.key == plan(matrix_with(write_matrix, 'deps-as-of = "none"'), cell, tmp_path).key
    nightly = plan(
        matrix_with(write_matrix, 'deps-as-of = "torch-release"'),
        "nightly-torch2024-03-27-torch.ao-py3.11",
        tmp_path,
    )
    assert nightly.cutoff_args[-2:] == ("--index-strategy", "unsafe-best-match")


def test_every_uv_resolve_and_install_gets_the_cutoff(
    write_matrix: WriteMatrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ensure_env (compile, install) and prefetch (compile), with uv stubbed out."""
    matrix = matrix_with(write_matrix, 'deps-as-of = "torch-release"')
    cell = matrix.cell("torch2.2.2-torch.ao-py3.11")
    the_plan = plan(matrix, cell.id, tmp_path / "envs")
    commands: list[list[str]] = []

    def fake_run(cmd: list[str], log: Path, timeout: float, env: dict[str, str]) -> str:
        commands.append(cmd)
        if cmd[1] == "venv":
            (Path(cmd[-1]) / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
            (Path(cmd[-1]) / "bin").mkdir()
            (Path(cmd[-1]) / "bin" / "python").touch()
        if "-o" in cmd:
            Path(cmd[cmd.index("-o") + 1]).write_text(
                'lock-version = "1.0"\ncreated-by = "test"\npackages = []\n', encoding="utf-8"
            )
        return ""

    monkeypatch.setattr(uv_cli, "run", fake_run)
    monkeypatch.setattr(envs, "find_interpreter", lambda python: "/usr/bin/python3")
    ensure_env(the_plan, log=tmp_path / "install.log", timeout=60)
    uv_calls = {tuple(c[1:3]): c for c in commands}
    for step in [("pip", "compile"), ("pip", "install")]:
        args = uv_calls[step]
        assert args[args.index("--exclude-newer") + 1] == "2024-03-27T21:07:13Z", step

    commands.clear()  # prefetch resolves through the same compile, so the same stub
    monkeypatch.setattr(prefetch, "find_interpreter", lambda python: "/usr/bin/python3")
    monkeypatch.setattr(prefetch, "Listings", lambda: Listings(StubIndex()))
    manifest = prefetch.prefetch(
        matrix, wheelhouse=tmp_path / "wh", envs_root=tmp_path / "envs", pip_config=PipIndexConfig()
    )
    cutoffs = {
        Path(c[4]).parent.name: c[c.index("--exclude-newer") + 1]  # c[4]: .locks/<id>/
        for c in commands
        if c[1:3] == ["pip", "compile"]
    }
    assert cutoffs[cell.id] == "2024-03-27T21:07:13Z", manifest
    assert cutoffs["nightly-torch2024-03-27-torch.ao-py3.11"] == "2024-03-27T23:59:59Z"


# --- real uv against loopback indexes ------------------------------------------------------


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A JSON index with upload times (torch 2.2.2, fakedep 1.0 then 2.0), and a nightly
    HTML index without, which mirrors fakedep 2.0 as PyTorch's mirrors numpy."""
    root = tmp_path_factory.mktemp("indexes")
    pypi, nightly = root / "pypi", root / "nightly"
    torch = build_wheel(pypi, "torch", "2.2.2", "py3-none-any", requires=["fakedep"])
    write_json_listing(pypi, "torch", {torch: TORCH_222})
    old = build_wheel(pypi, "fakedep", "1.0", "py3-none-any")
    new = build_wheel(pypi, "fakedep", "2.0", "py3-none-any")
    write_json_listing(
        pypi,
        "fakedep",
        {old: datetime(2024, 1, 10, tzinfo=UTC), new: datetime(2024, 6, 16, tzinfo=UTC)},
    )
    night = build_wheel(
        nightly, "torch", "2.3.0.dev20240327+cpu", "py3-none-any", requires=["fakedep"]
    )
    write_listing(nightly, Listing("torch", [night], requires_python=None))
    write_listing(
        nightly, Listing("fakedep", [build_wheel(nightly, "fakedep", "2.0", "py3-none-any")])
    )
    with serve(root) as url:
        yield f"{url}/pypi", f"{url}/nightly"


def test_json_pages_give_upload_times(indexes: tuple[str, str]) -> None:
    pypi, nightly = indexes
    assert [f.upload_time for f in list_wheels(pypi, "torch")] == [TORCH_222]
    assert [f.upload_time for f in list_wheels(nightly, "torch")] == [None]


@pytest.mark.parametrize(
    ("setting", "cell_id", "fakedep"),
    [
        ("", "torch2.2.2-torch.ao-py3.11", "2.0"),
        ('deps-as-of = "torch-release"', "torch2.2.2-torch.ao-py3.11", "1.0"),
        # torch has no upload time on its own index, and that index serves fakedep 2.0 too
        ('deps-as-of = "torch-release"', "nightly-torch2024-03-27-torch.ao-py3.11", "1.0"),
    ],
)
def test_uv_resolves_deps_of_the_day(
    write_matrix: WriteMatrix,
    tmp_path: Path,
    indexes: tuple[str, str],
    setting: str,
    cell_id: str,
    fakedep: str,
) -> None:
    if find_interpreter("3.11") is None:
        pytest.skip("no CPython 3.11 here")
    pypi, nightly = indexes
    matrix = matrix_with(write_matrix, setting, nightly=nightly)
    listings = Listings(lambda url, project: list_wheels(url or pypi, project))
    _, the_plan = plan_for(
        matrix.cell(cell_id),
        matrix,
        envs_root=tmp_path / "envs",
        pip_config=PipIndexConfig(index_url=pypi),
        listings=listings,
    )
    ensure_env(the_plan, log=tmp_path / "install.log", timeout=120)
    versions = {p.name: str(p.version) for p in read_packages(the_plan.env_dir / LOCK)}
    assert versions["fakedep"] == fakedep, (tmp_path / "install.log").read_text()


def test_prefetch_locks_and_fails_as_an_env_build_does(
    write_matrix: WriteMatrix, tmp_path: Path, indexes: tuple[str, str]
) -> None:
    """prefetch resolves through the env build's ``uv pip compile``: the locked wheels are
    downloaded and checked against their sha256, and a failure is uv's, classified and
    logged as an install failure is."""
    if find_interpreter("3.11") is None:
        pytest.skip("no CPython 3.11 here")
    pypi, nightly = indexes
    cell = "torch2.2.2-torch.ao-py3.11"
    config = PipIndexConfig(index_url=pypi)
    good = load_matrix(write_matrix(MATRIX.format(setting="", nightly=nightly)))
    manifest = prefetch.prefetch(
        good, wheelhouse=tmp_path / "wh", envs_root=tmp_path / "envs", pip_config=config
    )
    assert sorted(manifest.cells[cell].wheels) == [
        "fakedep-2.0-py3-none-any.whl",
        "torch-2.2.2-py3-none-any.whl",
    ]
    for name in manifest.cells[cell].wheels:
        data = (tmp_path / "wh" / name).read_bytes()
        assert manifest.files[name].sha256 == hashlib.sha256(data).hexdigest()

    text = MATRIX.replace('deps = ["fakedep"]', 'deps = ["fakedep==9.9"]')
    bad = load_matrix(write_matrix(text.format(setting="", nightly=nightly), name="bad.toml"))
    manifest = prefetch.prefetch(
        bad, wheelhouse=tmp_path / "wh2", envs_root=tmp_path / "envs", pip_config=config
    )
    error = manifest.cells[cell].error
    assert error is not None
    assert error.startswith("no-such-version: "), error
    assert "there is no version of fakedep==9.9" in error
    log = (tmp_path / "wh2" / ".locks" / cell / "compile.log").read_text(encoding="utf-8")
    assert "pip compile" in log
    assert "no version of fakedep==9.9" in log
