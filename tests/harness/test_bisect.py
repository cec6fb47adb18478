"""The search against scripted verdicts, and the driver over stand-in cells."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compat.harness.config.channels import Channel
from compat.harness.config.matrix import Matrix
from compat.harness.results.bisection import Bisection, Verdict

G, B, S = Verdict.GOOD, Verdict.BAD, Verdict.SKIP


def run(candidates: list[str], oracle: Callable[[str], Verdict]) -> tuple[Bisection, list[str]]:
    search = Bisection(candidates)
    tried = []
    while (candidate := search.next_candidate()) is not None:
        assert candidate not in tried, "a candidate is never evaluated twice"
        tried.append(candidate)
        search.record(candidate, oracle(candidate))
    return search, tried


@pytest.mark.parametrize("n", [2, 3, 5, 8, 17, 60, 100])
def test_finds_every_boundary_within_the_bound(n: int) -> None:
    candidates = [f"v{i:03d}" for i in range(n)]
    for first_bad in range(1, n):
        search, tried = run(candidates, lambda c, fb=first_bad: B if int(c[1:]) >= fb else G)
        good, bad, skipped = search.result()
        assert (good, bad, skipped) == (candidates[first_bad - 1], candidates[first_bad], [])
        assert len(tried) <= math.ceil(math.log2(n)) + 2
        assert search.endpoints_hold


def test_skips_try_the_neighbour_and_are_reported() -> None:
    candidates = [f"v{i}" for i in range(10)]
    broken = {"v4", "v5"}

    def oracle(c: str) -> Verdict:
        if c in broken:
            return S
        return B if int(c[1:]) >= 6 else G

    search, tried = run(candidates, oracle)
    assert search.result() == ("v3", "v6", ["v4", "v5"])
    assert "v4" in tried
    assert "v5" in tried


def test_skipped_boundary_still_gives_the_narrowest_range() -> None:
    candidates = ["a", "b", "c", "d"]
    search, _ = run(candidates, {"a": G, "b": S, "c": S, "d": B}.__getitem__)
    assert search.result() == ("a", "d", ["b", "c"])


def test_bad_good_endpoint_is_visible() -> None:
    search, tried = run(["a", "b", "c"], {"a": B, "b": B, "c": B}.__getitem__)
    assert not search.endpoints_hold
    assert tried == ["a", "c"]


def test_a_candidate_that_flips_is_named() -> None:
    """Behaviour that comes back (a flaky or non-monotonic test) is reported, not hidden."""
    verdicts = {"v0": G, "v1": G, "v2": B, "v3": G, "v4": B, "v5": B, "v6": B}
    candidates = list(verdicts)
    search = Bisection.resume(candidates, {"v2": "bad", "v3": "good"})
    while (candidate := search.next_candidate()) is not None:
        search.record(candidate, verdicts[candidate])
    good, bad = search.result()[:2]
    assert (good, bad) == ("v1", "v2")
    assert search.inconsistencies() == ["v3 is good although v2 before it is bad"]


def test_resume_reuses_saved_verdicts() -> None:
    candidates = [f"v{i}" for i in range(16)]
    oracle = lambda c: B if int(c[1:]) >= 11 else G  # noqa: E731
    first, tried_first = run(candidates, oracle)
    half = dict(list(first.verdicts.items())[:3])
    resumed = Bisection.resume(candidates, {k: v.value for k, v in half.items()})
    tried_again = []
    while (candidate := resumed.next_candidate()) is not None:
        tried_again.append(candidate)
        resumed.record(candidate, oracle(candidate))
    assert resumed.result() == first.result()
    assert len(tried_again) == len(tried_first) - 3
    assert not set(tried_again) & set(half)


def test_needs_two_candidates() -> None:
    with pytest.raises(ValueError, match="at least a good and a bad"):
        Bisection(["only"])


def test_torchao_pairing_follows_the_matrix() -> None:
    from compat.harness.commands.bisect import BisectRequest, torchao_for

    release, nightly = Channel("release"), Channel("nightly", "nightly", "https://x.invalid")
    pairing = {"2.8.0": "0.13.0", "2.10.0": "0.16.0"}
    ao = BisectRequest("t", "2.8.0", "2.10.0", "torchao", "3.11")
    assert torchao_for(ao, "2.10.0", release, pairing) == "0.16.0"
    assert torchao_for(ao, "2.9.0", release, pairing) is None  # not paired: skipped
    fixed = BisectRequest("t", "2.8.0", "2.10.0", "torchao", "3.11", torchao="0.14.1")
    assert torchao_for(fixed, "2.9.0", release, pairing) == "0.14.1"
    assert torchao_for(ao, "2.17.0.dev20261120+cpu", nightly, pairing) == "nightly"
    plain = BisectRequest("t", "2.8.0", "2.10.0", "torch.ao", "3.11")
    assert torchao_for(plain, "2.9.0", release, pairing) is None


def test_a_fix_is_found_over_the_matrix_versions(
    cell_world: Callable[..., Matrix], tmp_path: Path
) -> None:
    """--good newer than --bad: the first good version, over real (stand-in) cell runs."""
    from compat.harness.commands.bisect import (
        BisectRequest,
        bisect,
        matrix_candidates,
        render_bisect,
    )
    from compat.harness.install.pipconfig import PipIndexConfig

    matrix = cell_world("fixed-in-2.4", versions=("2.2.2", "2.3.1", "2.4.1", "2.5.1", "2.6.0"))
    request = BisectRequest(
        "test_porting", good="2.5.1", bad="2.2.2", stack="torch.ao", python="3.11"
    )
    assert request.finds_fix
    candidates = matrix_candidates(request, matrix)
    assert candidates == ["2.2.2", "2.3.1", "2.4.1", "2.5.1"]  # 2.6.0 is outside the ends
    out = tmp_path / "bisect"
    record = bisect(
        request,
        matrix,
        out=out,
        envs_root=tmp_path / "envs",
        pip_config=PipIndexConfig(),
        candidates=candidates,
    )
    assert record.mode == "fix"
    assert record.ends == [("last bad", "2.3.1"), ("first good", "2.4.1")]
    assert record.verdicts == {
        "2.2.2": B,
        "2.5.1": G,
        "2.3.1": B,
        "2.4.1": G,
    }  # real verdicts, not the search's
    saved = json.loads((out / "bisect.json").read_text(encoding="utf-8"))
    assert (saved["mode"], saved["last_bad"], saved["first_good"]) == ("fix", "2.3.1", "2.4.1")
    assert saved["verdicts"] == {"2.2.2": "bad", "2.5.1": "good", "2.3.1": "bad", "2.4.1": "good"}
    assert set(saved) == {
        "mode",
        "request",
        "versions",
        "candidates",
        "verdicts",
        "git",
        "steps",
        "envs_built",
        "on",
        "snapshots",
        "last_bad",
        "first_good",
        "inconsistencies",
        "skipped",
        "endpoints_hold",
        "compare",
    }
    assert set(saved["steps"][0]) == {"candidate", "verdict", "status", "reason", "env_built"}
    text = render_bisect(record)
    assert "looking for the fix" in text
    assert "last bad: 2.3.1 (git 0123abc)" in text
    assert "first good: 2.4.1 (git 0123abc)" in text
    again = bisect(
        request,
        matrix,
        out=out,
        envs_root=tmp_path / "envs",
        pip_config=PipIndexConfig(),
        candidates=candidates,
    )
    assert len(again.steps) == len(record.steps)  # resumed: nothing run twice
    assert again.boundary == ("2.3.1", "2.4.1")


def test_same_ends_are_a_usage_error() -> None:
    from compat.harness.commands.bisect import BisectRequest, find_candidates
    from compat.harness.errors import UsageError
    from compat.harness.install.pipconfig import PipIndexConfig

    same = BisectRequest("t", "2.4.1", "2.4.1", "torch.ao", "3.11")
    with pytest.raises(UsageError, match="are the same version"):
        find_candidates(same, Channel("release"), PipIndexConfig())


def test_bisect_on_snapshot_finds_where_the_porting_changed(
    cell_world: Any, tmp_path: Path
) -> None:
    """The test passes everywhere; its porting snapshot changes at 2.4: that is found."""
    from compat.harness.commands.bisect import (
        BisectRequest,
        bisect,
        matrix_candidates,
        render_bisect,
    )
    from compat.harness.install.pipconfig import PipIndexConfig

    matrix = cell_world(
        "drifts-at-2.4", versions=("2.1.2", "2.2.2", "2.3.1", "2.4.1", "2.5.1", "2.6.0")
    )
    request = BisectRequest(
        "test_porting", good="2.1.2", bad="2.6.0", stack="torch.ao", python="3.11", on="snapshot"
    )
    candidates = matrix_candidates(request, matrix)
    record = bisect(
        request,
        matrix,
        out=tmp_path / "bisect",
        envs_root=tmp_path / "envs",
        pip_config=PipIndexConfig(),
        candidates=candidates,
    )
    assert record.ends == [("last good", "2.3.1"), ("first bad", "2.4.1")]
    assert len(record.steps) <= math.ceil(math.log2(len(candidates))) + 2  # the bound
    saved = json.loads((tmp_path / "bisect" / "bisect.json").read_text(encoding="utf-8"))
    assert (saved["last_good"], saved["first_bad"]) == ("2.3.1", "2.4.1")
    assert saved["snapshot_changes"]
    text = render_bisect(record)
    assert "on its porting snapshot" in text
    assert (
        "test_fault.py::test_porting: converted: dequantize_per_tensor after matmul: "
        "tag 'mm' -> 'add'"
    ) in text


def test_versions_matrix_names_the_index_versions_it_never_tried(
    cell_world: Callable[..., Matrix],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Through the command line: the answer says which releases between its two versions
    the matrix does not declare, so were never run."""
    from compat.harness.commands import bisect as bisect_command
    from compat.harness.commands import cli

    index = ["2.2.2", "2.3.0", "2.3.1", "2.4.0", "2.4.1", "2.5.0", "2.6.0"]
    monkeypatch.setattr(
        bisect_command,
        "find_candidates",
        lambda request, channel, pip: [v for v in index if request.good <= v <= request.bad],
    )
    matrix = cell_world("fixed-in-2.4", versions=("2.2.2", "2.4.1", "2.6.0"))
    out = tmp_path / "bisect"
    args = ["bisect", "test_porting", "--good", "2.6.0", "--bad", "2.2.2", "--versions"]
    code = cli.main([*args, "matrix", "--matrix", str(matrix.path), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert (
        "first good: 2.4.1 (git 0123abc) (last bad 2.2.2; 2.3.0, 2.3.1, 2.4.0 not tried: "
        "the answer holds for the matrix's versions" in text
    )
    saved = json.loads((out / "bisect.json").read_text(encoding="utf-8"))
    assert saved["untried"] == ["2.3.0", "2.3.1", "2.4.0"]


@pytest.mark.parametrize(
    ("test", "said"),
    [
        ("test_portnig", "no test file, function or class of the matrix's test paths"),
        ("tests/core/test_fault.py::test_portng", "tests/core/test_fault.py defines no "),
        ("tests/core/test_falt.py::test_porting", "no test file 'tests/core/test_falt.py'"),
    ],
)
def test_a_test_no_cell_would_collect_is_refused_before_any_env(
    cell_world: Callable[..., Matrix],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    test: str,
    said: str,
) -> None:
    from compat.harness.commands import cli
    from compat.harness.execute import cell_runner

    matrix = cell_world("fixed-in-2.4", versions=("2.2.2", "2.6.0"))
    built: list[object] = []
    monkeypatch.setattr(cell_runner, "ensure_env", lambda *a, **k: built.append(a))
    out = tmp_path / "bisect"
    args = ["bisect", test, "--good", "2.6.0", "--bad", "2.2.2", "--versions", "matrix"]
    code = cli.main([*args, "--matrix", str(matrix.path), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert said in err[0]
    assert "did you mean" in err[0]
    assert not built
    assert not out.exists()


def test_a_k_expression_and_a_parametrized_id_pass_the_static_check(
    cell_world: Callable[..., Matrix],
) -> None:
    from compat.harness.commands.test_names import check_test_exists

    matrix = cell_world("fixed-in-2.4", versions=("2.2.2",))
    check_test_exists(matrix, "porting and not slow")
    check_test_exists(matrix, "tests/core/test_fault.py::test_porting[x-1]")
    check_test_exists(matrix, "PORTING")  # -k is case-insensitive
    check_test_exists(matrix, "test_fault")  # a file's name selects its tests
