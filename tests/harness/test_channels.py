"""Releases, RCs and nightlies resolved against a real HTTP index on loopback."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import socket
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from compat.harness.config.channels import is_nightly_spec
from compat.harness.config.matrix import load_matrix
from compat.harness.errors import ConfigError
from compat.harness.install.index import (
    IndexFile,
    IndexUnreachable,
    Listings,
    download,
    list_wheels,
    sha256_of_url,
)
from compat.harness.install.nightly import NightlyNotFound, resolve_nightly
from compat.harness.install.resolve import ResolutionFailed, resolve_cell

from .fake_index import Listing, build_wheel, serve, write_listing

TODAY = date(2026, 11, 27)
TAG = "cp311-cp311-manylinux_2_28_x86_64"
OTHER_TAGS = ("cp312-cp312-manylinux_2_28_x86_64", "cp311-cp311-manylinux_2_28_aarch64")


def nightly_days() -> list[date]:
    """60 days of builds, as the nightly index keeps, with one day missing."""
    days = [TODAY - timedelta(days=n) for n in range(60)]
    return [d for d in days if d != date(2026, 11, 15)]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("index")
    nightly = root / "whl" / "nightly" / "cpu"
    torch, torchao = [], []
    for day in nightly_days():
        stamp = day.strftime("%Y%m%d")
        minor = 17 if day >= date(2026, 11, 20) else 16
        for tag in (TAG, *OTHER_TAGS):
            torch.append(build_wheel(nightly, "torch", f"2.{minor}.0.dev{stamp}+cpu", tag))
        torchao.append(
            build_wheel(
                nightly, "torchao", f"0.19.0.dev{stamp}+cpu", "cp310-abi3-manylinux_2_28_x86_64"
            )
        )
    # Around the version bump, both the old and the new version were built on one day.
    torch.append(build_wheel(nightly, "torch", "2.16.0.dev20261120+cpu", TAG))
    write_listing(nightly, Listing("torch", torch))
    write_listing(nightly, Listing("torchao", torchao))
    test = root / "whl" / "test" / "cpu"
    rc = [build_wheel(test, "torch", "2.16.0+cpu", TAG, git_version="rc2" + "0" * 37)]
    write_listing(test, Listing("torch", rc, with_sha256=True))
    with serve(root) as url:
        yield url


def test_listing_is_read_with_versions_and_digests(index: str) -> None:
    files = list_wheels(f"{index}/whl/nightly/cpu", "torch")
    assert len(files) == len(nightly_days()) * 3 + 1
    assert all(f.sha256 is None for f in files)  # nightly pages carry none
    assert str(files[0].version).startswith("2.17.0.dev20261127")
    rc = list_wheels(f"{index}/whl/test/cpu", "torch")
    assert [str(f.version) for f in rc] == ["2.16.0+cpu"]
    assert rc[0].sha256 is not None
    assert list_wheels(f"{index}/whl/test/cpu", "no-such-project") == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("2026-11-20", "2.17.0.dev20261120+cpu"),  # two builds that day: the newest
        ("2026-11-19", "2.16.0.dev20261119+cpu"),
        ("latest", "2.17.0.dev20261127+cpu"),
        ("latest-7d", "2.17.0.dev20261120+cpu"),
        ("2.16.0.dev20261120+cpu", "2.16.0.dev20261120+cpu"),
    ],
)
def test_nightly_specs(index: str, spec: str, expected: str) -> None:
    files = list_wheels(f"{index}/whl/nightly/cpu", "torch")
    found = resolve_nightly(files, spec, python="3.11", today=TODAY, index="nightly")
    assert found.version == expected
    assert found.filename == f"torch-{expected}-{TAG}.whl"
    assert found.url.endswith(found.filename.replace("+", "%2B"))


def test_two_builds_on_one_day_are_named(index: str) -> None:
    files = list_wheels(f"{index}/whl/nightly/cpu", "torch")
    found = resolve_nightly(files, "2026-11-20", python="3.11", today=TODAY, index="nightly")
    assert found.note == (
        "2 builds dated 2026-11-20: 2.16.0.dev20261120+cpu, 2.17.0.dev20261120+cpu; took the newest"
    )


@pytest.mark.parametrize(
    ("spec", "python", "message"),
    [
        (
            "2026-08-01",
            "3.11",
            "nightly 2026-08-01 is gone (oldest is 2026-09-29; the nightly "
            "index keeps only about 60 days of builds); give the wheel's URL",
        ),
        (
            "2026-11-15",
            "3.11",
            "no nightly build dated 2026-11-15 (nearest: 2026-11-14, 2026-11-16)",
        ),
        ("latest", "3.13", "no nightly wheel for CPython 3.13"),
        ("2.15.0.dev20260101+cpu", "3.11", "no build 2.15.0.dev20260101+cpu"),
    ],
)
def test_nightly_not_found_says_why(index: str, spec: str, python: str, message: str) -> None:
    files = list_wheels(f"{index}/whl/nightly/cpu", "torch")
    with pytest.raises(NightlyNotFound) as info:
        resolve_nightly(files, spec, python=python, today=TODAY, index="nightly")
    assert message in str(info.value)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/whl/nightly/cpu"


def test_unreachable_index() -> None:
    with pytest.raises(IndexUnreachable, match="ConnectionError"):
        list_wheels(closed_port_url(), "torch")


def test_downloads_and_hashes_go_through_one_client(index: str, tmp_path: Path) -> None:
    """A wheel by HTTP (requests, streamed) or from disk (``file:``): the same bytes, the same
    sha256; a missing file or a dead index is IndexUnreachable, and no partial file stays."""
    [rc] = list_wheels(f"{index}/whl/test/cpu", "torch")
    digest = download(rc.url, tmp_path / "got" / rc.filename)
    data = (tmp_path / "got" / rc.filename).read_bytes()
    assert digest == hashlib.sha256(data).hexdigest() == rc.sha256
    assert sha256_of_url(rc.url) == digest
    assert sha256_of_url((tmp_path / "got" / rc.filename).as_uri()) == digest
    assert download((tmp_path / "got" / rc.filename).as_uri(), tmp_path / "copy.whl") == digest
    with pytest.raises(IndexUnreachable, match="404"):
        download(f"{index}/whl/test/cpu/missing.whl", tmp_path / "missing.whl")
    with pytest.raises(IndexUnreachable, match="ConnectionError"):
        sha256_of_url(closed_port_url() + "/torch.whl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.whl", "got"]


def write_matrix(tmp_path: Path, nightly_url: str, rc_url: str, extra: str = "") -> Path:
    (tmp_path / "tests").mkdir(exist_ok=True)
    path = tmp_path / "matrix.toml"
    path.write_text(
        f"""
[matrix]
tests = ["tests"]
deps = ["pytest"]

[channels.nightly]
index-url = "{nightly_url}"

[channels.rc]
index-url = "{rc_url}"

[[torch]]
version = "2026-11-20"
channel = "nightly"

[[torch]]
version = "2.16.0"
channel = "rc"
{extra}""",
        encoding="utf-8",
    )
    return path


def test_matrix_channels_and_pairing(index: str, tmp_path: Path) -> None:
    matrix = load_matrix(
        write_matrix(tmp_path, f"{index}/whl/nightly/cpu", f"{index}/whl/test/cpu")
    )
    ids = [c.id for c in matrix.cells]
    assert ids == [
        "nightly-torch2026-11-20-torch.ao-py3.11",
        "nightly-torch2026-11-20-torchaonightly-py3.11",
        "rc-torch2.16.0-torch.ao-py3.11",
    ]
    nightly = matrix.cells[1]
    assert nightly.gating is False  # nightlies do not gate unless told to
    resolved = resolve_cell(
        nightly, matrix.channels["nightly"], envs_root=tmp_path / "envs", today=TODAY
    )
    assert resolved.pins == ["torch==2.17.0.dev20261120+cpu", "torchao==0.19.0.dev20261120+cpu"]
    assert resolved.notes[0].startswith("2 builds dated 2026-11-20")
    rc = resolve_cell(matrix.cells[2], matrix.channels["rc"], envs_root=tmp_path / "envs")
    assert rc.pins == ["torch==2.16.0"]


def test_dated_nightly_is_remembered_and_needs_no_network(index: str, tmp_path: Path) -> None:
    matrix = load_matrix(
        write_matrix(tmp_path, f"{index}/whl/nightly/cpu", f"{index}/whl/test/cpu")
    )
    cell = matrix.cells[0]
    first = resolve_cell(cell, matrix.channels["nightly"], envs_root=tmp_path / "envs", today=TODAY)
    offline = dataclasses.replace(matrix.channels["nightly"], index_url=closed_port_url())
    # Same cache key needs the same index URL: use the real one, then break the network.
    again = resolve_cell(cell, matrix.channels["nightly"], envs_root=tmp_path / "envs", today=TODAY)
    assert again.pins == first.pins
    with pytest.raises(ResolutionFailed) as info:
        resolve_cell(cell, offline, envs_root=tmp_path / "envs", today=TODAY)
    assert info.value.kind == "index-unreachable"


def test_one_run_reads_each_index_page_once(index: str, tmp_path: Path) -> None:
    """``latest`` cells of one run agree on the build; a dead index costs one timeout."""
    path = write_matrix(tmp_path, f"{index}/whl/nightly/cpu", f"{index}/whl/test/cpu")
    path.write_text(
        path.read_text(encoding="utf-8").replace('"2026-11-20"', '"latest"'), encoding="utf-8"
    )
    matrix = load_matrix(path)
    asked: list[tuple[str | None, str]] = []

    def counting(url: str | None, project: str) -> list[IndexFile]:
        asked.append((url, project))
        return list_wheels(url, project)

    listings = Listings(counting)
    nightly = [c for c in matrix.cells if c.channel == "nightly"]
    pins = [
        resolve_cell(
            cell,
            matrix.channels["nightly"],
            envs_root=tmp_path / "envs",
            today=TODAY,
            listings=listings,
        ).pins[0]
        for cell in nightly
    ]
    assert pins == ["torch==2.17.0.dev20261127+cpu"] * 2
    assert sorted(p for _, p in asked) == ["torch", "torchao"]
    dead = dataclasses.replace(matrix.channels["nightly"], index_url=closed_port_url())
    attempts = Listings(counting)
    asked.clear()
    for cell in nightly:
        with pytest.raises(ResolutionFailed, match="ConnectionError"):
            resolve_cell(cell, dead, envs_root=tmp_path / "other", today=TODAY, listings=attempts)
    assert asked == [(dead.index_url, "torch")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[channels.nightly2]\nkind = "nightly"\n', "channels.nightly2.index-url: is required"),
        (
            '[[include]]\ntorch = "yesterday"\nstack = "torch.ao"\nchannel = "nightly"\n',
            "include[0].torch: 'yesterday' is not a valid version (or a date, latest, latest-7d)",
        ),
        (
            '[[include]]\ntorch = "2026-11-20"\nstack = "torch.ao"\n',
            "include[0].torch: '2026-11-20' is not a valid version",
        ),
        (
            '[channels.wh]\nkind = "wheelhouse"\nfind-links = ["nowhere"]\n',
            "channels.wh.find-links: 'nowhere' is not a folder",
        ),
        (
            '[channels.x]\nkind = "weekly"\nindex-url = "http://x.invalid"\n',
            "channels.x.kind: 'weekly' is not one of",
        ),
    ],
)
def test_channel_config_errors(tmp_path: Path, extra: str, message: str) -> None:
    path = write_matrix(tmp_path, "http://a.invalid/n", "http://a.invalid/t", extra)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_matrix(path)


def test_nightly_specs_syntax() -> None:
    assert is_nightly_spec("2026-11-20")
    assert is_nightly_spec("latest")
    assert is_nightly_spec("latest-7d")
    assert not is_nightly_spec("2026-13-40")
    assert not is_nightly_spec("latest-d")


def test_credentials_never_reach_logs_or_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unreachable indexes with credentials in their URLs: clean install-failed cells,
    and the secret appears in no file of the run (logs, results, HTML, JUnit)."""
    from compat.harness.commands import cli

    dead = closed_port_url().rsplit("/whl/", 1)[0].replace("http://", "http://ci:s3cr3t@")
    path = write_matrix(
        tmp_path,
        f"{dead}/whl/nightly/cpu",
        f"{dead}/whl/test/cpu",
        '[[include]]\ntorch = "2.10.0"\nstack = "torch.ao"\nchannel = "rc"\n',
    )
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(tmp_path / "envs"))
    monkeypatch.chdir(tmp_path)
    code = cli.main(["matrix", "--matrix", str(path), "--out", str(tmp_path / "out")])
    assert code == 3  # the rc cell gates and could only fail to install
    doc = (tmp_path / "out" / "results.json").read_text(encoding="utf-8")
    statuses = {c["cell_id"]: (c["status"], c["reason"]) for c in json.loads(doc)["cells"]}
    failed = {k: r for k, (s, r) in statuses.items() if s != "not-applicable"}
    assert sorted(failed) == [
        "nightly-torch2026-11-20-torch.ao-py3.11",
        "nightly-torch2026-11-20-torchaonightly-py3.11",
        "rc-torch2.10.0-torch.ao-py3.11",
    ]
    assert all(r.startswith("index-unreachable: ") for r in failed.values()), statuses
    for file in (tmp_path / "out").rglob("*"):
        if file.is_file():
            assert "s3cr3t" not in file.read_text(encoding="utf-8", errors="replace"), file
    assert "***@127.0.0.1" in doc
