"""A release, an rc and a date-pinned nightly cell, each installed from a loopback index
through the real harness (uv, the cell's pytest, the report), plus the same channels
pointed at an index that does not answer. pytest itself comes from PyPI.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from compat.harness.commands import cli
from compat.harness.results.gate import EXIT_INFRA, EXIT_OK

from ..harness.fake_index import Listing, build_wheel, serve, write_listing

pytestmark = [pytest.mark.network]

TAG = "cp311-cp311-manylinux_2_28_x86_64"
AO_TAG = "cp310-abi3-manylinux_2_28_x86_64"
TODAY = date.today()
DAY = TODAY - timedelta(days=3)
STAMP = DAY.strftime("%Y%m%d")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("index")
    release = root / "whl" / "cpu"
    write_listing(
        release,
        Listing(
            "torch",
            [build_wheel(release, "torch", "2.15.0+cpu", TAG, git_version="a" * 40)],
            with_sha256=True,
        ),
    )
    write_listing(
        release,
        Listing(
            "torchao", [build_wheel(release, "torchao", "0.18.0+cpu", AO_TAG)], with_sha256=True
        ),
    )
    test = root / "whl" / "test" / "cpu"
    write_listing(
        test,
        Listing(
            "torch",
            [build_wheel(test, "torch", "2.16.0+cpu", TAG, git_version="b" * 40)],
            with_sha256=True,
        ),
    )
    write_listing(
        test,
        Listing("torchao", [build_wheel(test, "torchao", "0.19.0+cpu", AO_TAG)], with_sha256=True),
    )
    nightly = root / "whl" / "nightly" / "cpu"
    days = [TODAY - timedelta(days=n) for n in range(10)]
    write_listing(
        nightly,
        Listing(
            "torch",
            [
                build_wheel(
                    nightly, "torch", f"2.17.0.dev{d:%Y%m%d}+cpu", TAG, git_version=f"{n:040d}"
                )
                for n, d in enumerate(days)
            ],
        ),
    )
    write_listing(
        nightly,
        Listing(
            "torchao",
            [build_wheel(nightly, "torchao", f"0.20.0.dev{d:%Y%m%d}+cpu", AO_TAG) for d in days],
        ),
    )
    with serve(root) as url:
        yield url


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def matrix_file(tmp_path: Path, release: str, rc: str, nightly: str) -> Path:
    tests = tmp_path / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "test_build.py").write_text(
        "import torch\n\ndef test_imports():\n    assert torch.__version__\n", encoding="utf-8"
    )
    path = tmp_path / "matrix.toml"
    path.write_text(
        f"""
[matrix]
name = "channels"
tests = ["tests"]
deps = ["pytest"]
stacks = ["torchao"]

[channels.release]
index-url = "{release}"

[channels.rc]
index-url = "{rc}"

[channels.nightly]
index-url = "{nightly}"

[[torch]]
version = "2.15.0"
torchao = "0.18.0"

[[torch]]
version = "2.16.0"
torchao = "0.19.0"
channel = "rc"

[[torch]]
version = "{DAY.isoformat()}"
channel = "nightly"
""",
        encoding="utf-8",
    )
    return path


def run(tmp_path: Path, matrix: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(tmp_path / "envs"))
    monkeypatch.chdir(tmp_path)
    code = cli.main(["matrix", "--matrix", str(matrix), "--out", str(tmp_path / "out")])
    doc = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    doc["code"] = code
    return doc


def test_each_channel_resolves_to_one_recorded_wheel(
    index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = matrix_file(
        tmp_path, f"{index}/whl/cpu", f"{index}/whl/test/cpu", f"{index}/whl/nightly/cpu"
    )
    doc = run(tmp_path, matrix, monkeypatch)
    cells = {c["cell_id"]: c for c in doc["cells"]}
    assert doc["code"] == EXIT_OK, {k: (c["status"], c["reason"]) for k, c in cells.items()}
    expected = {
        "torch2.15.0-torchao0.18.0-py3.11": ("2.15.0+cpu", "a" * 40, f"{index}/whl/cpu"),
        "rc-torch2.16.0-torchao0.19.0-py3.11": ("2.16.0+cpu", "b" * 40, f"{index}/whl/test/cpu"),
        f"nightly-torch{DAY.isoformat()}-torchaonightly-py3.11": (
            f"2.17.0.dev{STAMP}+cpu",
            f"{3:040d}",
            f"{index}/whl/nightly/cpu",
        ),
    }
    for cell_id, (version, git, where) in expected.items():
        cell = cells[cell_id]
        assert cell["status"] == "passed", (cell_id, cell["reason"])
        assert cell["fingerprint"]["torch"] == version
        assert cell["fingerprint"]["torch_git_version"] == git
        wheel = cell["install"]["wheels"]["torch"]
        assert wheel["file"] == f"torch-{version}-{TAG}.whl"
        assert wheel["url"].startswith(where)
        assert len(wheel["sha256"]) == 64
    nightly = cells[f"nightly-torch{DAY.isoformat()}-torchaonightly-py3.11"]
    assert nightly["install"]["wheels"]["torch"]["sha256_source"].startswith("computed")
    assert nightly["install"]["resolution"]["torch"] == f"2.17.0.dev{STAMP}+cpu"
    assert nightly["fingerprint"]["torchao"] == f"0.20.0.dev{STAMP}+cpu"  # same-date pairing
    assert nightly["gating"] is False
    html = (tmp_path / "out" / "matrix.html").read_text(encoding="utf-8")
    assert f"2.17.0.dev{STAMP}+cpu" in html


def test_unreachable_indexes_fail_cleanly_per_cell(
    index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = closed_port()
    matrix = matrix_file(
        tmp_path, f"{index}/whl/cpu", f"{dead}/whl/test/cpu", f"{dead}/whl/nightly/cpu"
    )
    doc = run(tmp_path, matrix, monkeypatch)
    cells = {c["cell_id"]: c for c in doc["cells"]}
    assert cells["torch2.15.0-torchao0.18.0-py3.11"]["status"] == "passed"
    for cell_id in (
        "rc-torch2.16.0-torchao0.19.0-py3.11",
        f"nightly-torch{DAY.isoformat()}-torchaonightly-py3.11",
    ):
        assert cells[cell_id]["status"] == "install-failed"
        assert cells[cell_id]["reason"].startswith("index-unreachable: "), cells[cell_id]
    assert doc["code"] == EXIT_INFRA  # the rc cell gates; only infrastructure failed
    assert (tmp_path / "out" / "matrix.html").is_file()


def test_direct_url_for_a_nightly_that_left_the_index(
    index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = f"torch-2.17.0.dev{STAMP}%2Bcpu-{TAG}.whl"
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_build.py").write_text(
        "import torch\n\ndef test_imports():\n    assert torch.__version__\n", encoding="utf-8"
    )
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(
        f"""
[matrix]
tests = ["tests"]
deps = ["pytest"]
stacks = ["torch.ao"]

[channels.nightly]
index-url = "{index}/whl/nightly/cpu"

[[torch]]
version = "2020-01-01"
channel = "nightly"
url = "{index}/whl/nightly/cpu/{wheel}"
""",
        encoding="utf-8",
    )
    doc = run(tmp_path, matrix, monkeypatch)
    (cell,) = doc["cells"]
    assert cell["status"] == "passed", cell["reason"]
    assert cell["fingerprint"]["torch"] == f"2.17.0.dev{STAMP}+cpu"
    assert cell["install"]["wheels"]["torch"]["file"] == wheel.replace("%2B", "+")
    assert cell["install"]["resolution"]["notes"] == [f"torch from {index}/whl/nightly/cpu/{wheel}"]


def test_bisect_over_nightly_dates(
    index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The behaviour changes with the build of BAD; ten nightlies, found in log2 steps."""
    bad_day = TODAY - timedelta(days=6)
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_nightly.py").write_text(
        f"""
import datetime
import torch

def test_feature():
    stamp = torch.__version__.split(".dev")[1][:8]
    assert datetime.datetime.strptime(stamp, "%Y%m%d").date() < datetime.date.fromisoformat(
        "{bad_day.isoformat()}")
""",
        encoding="utf-8",
    )
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(
        f"""
[matrix]
tests = ["tests"]
deps = ["pytest"]

[channels.nightly]
index-url = "{index}/whl/nightly/cpu"

[[torch]]
version = "latest"
channel = "nightly"
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(tmp_path / "envs"))
    monkeypatch.chdir(tmp_path)
    first, last = TODAY - timedelta(days=9), TODAY
    code = cli.main(
        [
            "bisect",
            "test_feature",
            "--good",
            first.isoformat(),
            "--bad",
            last.isoformat(),
            "--channel",
            "nightly",
            "--matrix",
            str(matrix),
            "--out",
            str(tmp_path / "bisect"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    record = json.loads((tmp_path / "bisect" / "bisect.json").read_text(encoding="utf-8"))
    assert len(record["candidates"]) == 10
    before = bad_day - timedelta(days=1)
    assert record["last_good"] == f"2.17.0.dev{before:%Y%m%d}+cpu"
    assert record["first_bad"] == f"2.17.0.dev{bad_day:%Y%m%d}+cpu"
    assert record["envs_built"] <= 6  # ceil(log2(10)) + 2
    assert record["compare"] == (f"https://github.com/pytorch/pytorch/compare/{7:040d}...{6:040d}")
    assert "first bad: 2.17.0.dev" in out
