"""Cells that run this interpreter with a stand-in ``torch``: the real harness minus uv.

Only the install is stood in for; the process group, timeout, streamed events,
classification and report are the real ones.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from compat.harness.config.matrix import Matrix, load_matrix
from compat.harness.execute import cell_runner
from compat.harness.install.envs import EnvRecord

# The checkout under test: its plugin and shims, never an installed copy of another checkout.
ROOT = Path(__file__).resolve().parents[2]

FAKE_TORCH = (
    'import os\n__version__ = os.environ.get("FAKE_TORCH_VERSION", "2.8.0+cpu")\n'
    'class version:\n    git_version = "0123abc"\n    cuda = None\n    debug = False\n'
)

TESTS = {
    "segfault": """
        import ctypes, os
        def test_before(): pass
        def test_segfault():
            if os.environ["COMPAT_CELL_ID"].startswith("torch2.9.0"):
                ctypes.string_at(0)
        def test_after(): pass
    """,
    "abort": """
        import os
        def test_before(): pass
        def test_abort(): os.abort()
    """,
    "hang": """
        import os, time
        def test_quick(): pass
        def test_hang():
            if os.environ["COMPAT_CELL_ID"].startswith("torch2.8.0"):
                time.sleep(600)
    """,
    "memory": """
        def test_quick(): pass
        def test_unbounded():
            hoard = []
            while True:
                hoard.append(bytearray(50 * 2**20))
    """,
    "fixed-in-2.4": """
        import os
        def test_porting():
            version = os.environ["COMPAT_CELL_ID"].split("-")[0].removeprefix("torch")
            assert tuple(int(p) for p in version.split(".")[:2]) >= (2, 4)
    """,
    "flaky": """
        from pathlib import Path
        def test_steady(): pass
        def test_flaky():
            marker = Path(__file__).with_name("attempts")
            attempts = int(marker.read_text()) if marker.exists() else 0
            marker.write_text(str(attempts + 1))
            assert attempts >= 1, "the first attempt fails"
    """,
    "gate": """
        import os
        def _minor():
            version = os.environ["COMPAT_CELL_ID"].split("-")[0].removeprefix("torch")
            return tuple(int(p) for p in version.split(".")[:2])
        def test_walk_back():
            if os.environ.get("PLANTED"):  # a regression in the pass under test
                assert {"tag"} == set(), "quantization_tag was not ported"
            if _minor() < (2, 4):
                raise ValueError("dq has tag aten.matmul.default that is associated with another")
        def test_steady(): pass
    """,
    "drifts-at-2.4": """
        import os
        from types import SimpleNamespace
        from compat.shims import snapshot
        def test_porting():
            version = os.environ["COMPAT_CELL_ID"].split("-")[0].removeprefix("torch")
            walks_back = tuple(int(p) for p in version.split(".")[:2]) < (2, 4)
            mm = SimpleNamespace(op="call_function", target="aten.matmul.default", args=(),
                                 meta={"quantization_tag": "mm"})
            dq = SimpleNamespace(op="call_function", meta={
                "quantization_tag": "mm" if walks_back else "add"},
                target="quantized_decomposed.dequantize_per_tensor.default", args=(mm,))
            snapshot.record("converted", SimpleNamespace(nodes=[mm, dq]))
    """,
    "release": """
        import os
        from types import SimpleNamespace
        from compat.shims import snapshot
        def _candidate():
            return os.environ["COMPAT_CELL_ID"].startswith("torch2.10.0")
        def _broken():
            return _candidate() and os.environ.get("PLANTED")
        def test_porting():
            mm = SimpleNamespace(op="call_function", target="aten.matmul.default", args=(),
                                 meta={"quantization_tag": "BackendA_mm_0"})
            dq = SimpleNamespace(op="call_function", args=(mm,),
                                 target="quantized_decomposed.dequantize_per_tensor.default",
                                 meta={} if _broken() else {"quantization_tag": "BackendA_mm_0"})
            snapshot.record("converted", SimpleNamespace(nodes=[mm, dq]))
            assert not _broken(), "quantization_tag was not ported"
        def test_steady(): pass
    """,
    "all-skipped": """
        import pytest
        def test_one(): pytest.skip("not on this build")
        def test_two(): pytest.skip("not on this build")
    """,
    "version-dependent": """
        import os
        def test_everywhere(): pass
        if os.environ["COMPAT_CELL_ID"].startswith("torch2.9.0"):
            def test_only_here(): pass
    """,
    "plain": """
        def test_one(): pass
        def test_two(): assert 1 + 1 == 2
    """,
}


@pytest.fixture
def cell_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Matrix]:
    """A matrix whose cells run this interpreter with a stand-in torch."""
    fake = tmp_path / "fake-site"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text(FAKE_TORCH, encoding="utf-8")

    def fake_env(plan: object, *, log: Path, timeout: float) -> EnvRecord:
        return EnvRecord(Path(sys.executable), True, 0.0, "fake-key")

    monkeypatch.setattr(cell_runner, "ensure_env", fake_env)

    def make(
        kind: str,
        *,
        timeout: int = 120,
        memory: int | None = None,
        torch_source: str = FAKE_TORCH,
        versions: tuple[str, ...] = ("2.8.0", "2.9.0"),
        reruns: int = 0,
        settings: str = "",
        tables: str = "",
        env: str = "",
        files: dict[str, str] | None = None,
    ) -> Matrix:
        (fake / "torch" / "__init__.py").write_text(torch_source, encoding="utf-8")
        tests = tmp_path / "tests" / "core"
        tests.mkdir(parents=True, exist_ok=True)
        (tests / "test_fault.py").write_text(textwrap.dedent(TESTS[kind]), encoding="utf-8")
        for relative, text in (files or {}).items():  # more files, beside the matrix file
            (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / relative).write_text(textwrap.dedent(text), encoding="utf-8")
        entries = "".join(f'[[torch]]\nversion = "{v}"\n' for v in versions)
        limit = f"memory-limit-mb = {memory}\n" if memory else ""
        limit += f"reruns = {reruns}\n" if reruns else ""
        (tmp_path / "matrix.toml").write_text(
            f'[matrix]\nname = "{kind}"\ntimeout = {timeout}\n{limit}{settings}'
            f'env = {{ PYTHONPATH = "{fake}{os.pathsep}{ROOT}"{env} }}\n{entries}{tables}',
            encoding="utf-8",
        )
        return load_matrix(tmp_path / "matrix.toml")

    return make
