"""Channels read pages saved from PyTorch's own indexes (``data/recorded/README.md``).

The synthetic index of ``test_channels`` can be shaped at will; these pages cannot, so
they check that the client and the nightly rules hold on what the indexes really serve:
flat pages that mix projects, host-relative hrefs with ``%2B``, local version labels of
every flavour, and the ~60-day nightly window.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from compat.harness.commands.bisect import BisectRequest, find_candidates
from compat.harness.config.channels import Channel, nightly_date
from compat.harness.install.index import list_wheels
from compat.harness.install.nightly import NightlyNotFound, resolve_nightly
from compat.harness.install.pipconfig import PipIndexConfig

from .fake_index import serve

RECORDED = Path(__file__).parent / "data" / "recorded"
SAVED_ON = date(2021, 2, 16)  # the day the flat nightly page was saved


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("recorded")
    pages = {
        "whl/nightly/cu102/torch": "nightly-cu102-flat-2021-02-16.html",
        "whl/nightly/torch": "nightly-torch-excerpt-2023-02-08.html",
        "whl/torch": "stable-torch-2023-10-13.html",
    }
    for folder, page in pages.items():
        (root / folder).mkdir(parents=True)
        shutil.copy(RECORDED / page, root / folder / "index.html")
    with serve(root) as url:
        yield url


def test_a_flat_page_yields_only_the_asked_project(recorded: str) -> None:
    files = list_wheels(f"{recorded}/whl/nightly/cu102", "torch")
    assert len(files) == 467  # of 2,730 links: torchvision, torchaudio, torch_nightly... left out
    assert {f.filename.split("-")[0] for f in files} == {"torch"}
    # hrefs are relative to the page, wherever it is served (here as the torch/ page)
    assert files[0].url.startswith(f"{recorded}/whl/nightly/cu102/torch/torch-1.8.0.dev")
    assert all(f.sha256 is None for f in files)  # nightly pages carry no digests
    days = {nightly_date(f.version) for f in files}
    assert (min(days), max(days), len(days)) == (date(2020, 12, 20), SAVED_ON, 59)


@pytest.mark.parametrize(
    ("spec", "version"),
    [
        ("latest", "1.9.0.dev20210216"),
        ("latest-7d", "1.8.0.dev20210209"),
        ("2021-02-10", "1.8.0.dev20210210"),  # the last day before the version bump
        ("2021-02-11", "1.9.0.dev20210211"),
        ("1.8.0.dev20201220", "1.8.0.dev20201220"),
    ],
)
def test_recorded_nightlies_resolve_to_one_wheel(recorded: str, spec: str, version: str) -> None:
    files = list_wheels(f"{recorded}/whl/nightly/cu102", "torch")
    found = resolve_nightly(files, spec, python="3.9", today=SAVED_ON, index="nightly")
    assert found.version == version
    assert found.filename == f"torch-{version}-cp39-cp39-linux_x86_64.whl"
    assert found.url == f"{recorded}/whl/nightly/cu102/torch/{found.filename}"


@pytest.mark.parametrize(
    ("spec", "python", "message"),
    [
        (
            "2020-12-19",
            "3.9",
            "nightly 2020-12-19 is gone (oldest is 2020-12-20; the nightly index "
            "keeps only about 60 days of builds); give the wheel's URL",
        ),
        ("latest", "3.11", "no nightly wheel for CPython 3.11"),  # the page predates 3.11
    ],
)
def test_recorded_nightlies_say_why_not(
    recorded: str, spec: str, python: str, message: str
) -> None:
    files = list_wheels(f"{recorded}/whl/nightly/cu102", "torch")
    with pytest.raises(NightlyNotFound, match="nightly") as info:
        resolve_nightly(files, spec, python=python, today=SAVED_ON, index="nightly")
    assert message in str(info.value)


def test_per_project_page_with_local_labels(recorded: str) -> None:
    files = list_wheels(f"{recorded}/whl/nightly", "torch")
    assert len(files) == 8
    assert files[0].url == (
        f"{recorded}/whl/nightly/cpu/torch-1.13.0.dev20220728%2Bcpu-cp310-cp310-linux_x86_64.whl"
    )
    assert str(files[0].version) == "1.13.0.dev20220728+cpu"
    today = date(2023, 2, 8)
    rocm = resolve_nightly(files, "2023-02-07", python="3.10", today=today, index="nightly")
    assert rocm.filename == "torch-2.0.0.dev20230207+rocm5.3-cp310-cp310-linux_x86_64.whl"
    cpu = resolve_nightly(files, "2022-07-28", python="3.10", today=today, index="nightly")
    assert cpu.filename == "torch-1.13.0.dev20220728+cpu-cp310-cp310-linux_x86_64.whl"
    with pytest.raises(
        NightlyNotFound,
        match=r"no nightly build dated 2023-02-06 \(nearest: "
        r"2022-07-28, 2023-02-07\)",
    ):
        resolve_nightly(files, "2023-02-06", python="3.10", today=today, index="nightly")


def test_release_page_orders_bisect_candidates(recorded: str) -> None:
    files = list_wheels(f"{recorded}/whl", "torch")
    assert (len(files), sum(f.sha256 is not None for f in files)) == (1494, 1128)
    request = BisectRequest("test_x", good="1.13.0", bad="2.1.0", stack="torch.ao", python="3.10")
    candidates = find_candidates(
        request, Channel("mirror", "index", f"{recorded}/whl"), PipIndexConfig()
    )
    # +cpu, +cu118, +rocm5.6, cpu.cxx11.abi... builds of one release are one candidate
    assert candidates == ["1.13.0", "1.13.1", "2.0.0", "2.0.1", "2.1.0"]
