"""The route registry: pure Python, must work (and stay torch-free) on the host."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from compat.shims import routes


def test_record_last_write_wins_and_sorted() -> None:
    routes.record("pt2e", "torch.ao")
    routes.record("capture", "export(strict=True)")
    routes.record("pt2e", "torchao-0.18.0")
    assert routes.routes() == {"capture": "export(strict=True)", "pt2e": "torchao-0.18.0"}
    assert list(routes.routes()) == ["capture", "pt2e"]


def test_adaptations_are_kept_apart_from_routes_and_reset() -> None:
    routes.record("convert", "convert_pt2e(fold_quantize=True)")
    routes.adapted("convert", "the default is False here")
    assert routes.adaptations() == {"convert": "the default is False here"}
    assert routes.routes() == {"convert": "convert_pt2e(fold_quantize=True)"}
    routes.reset()
    assert routes.adaptations() == {}


def test_warnings_recorded_not_raised_under_error_filter() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with routes.capture_warnings("convert_pt2e"):
            warnings.warn("torch.ao.quantization is deprecated", DeprecationWarning, stacklevel=1)
            warnings.warn("export_for_training is deprecated", FutureWarning, stacklevel=1)
            warnings.warn("XNNPACKQuantizer is deprecated!", UserWarning, stacklevel=1)
            warnings.warn("XNNPACKQuantizer is deprecated!", UserWarning, stacklevel=1)
    assert routes.warnings_seen() == [
        "[convert_pt2e] DeprecationWarning: torch.ao.quantization is deprecated",
        "[convert_pt2e] FutureWarning: export_for_training is deprecated",
        "[convert_pt2e] UserWarning: XNNPACKQuantizer is deprecated!",
    ]


def test_warnings_kept_when_block_raises() -> None:
    def crash() -> None:
        with routes.capture_warnings("x"):
            warnings.warn("before the crash", UserWarning, stacklevel=1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        crash()
    assert routes.warnings_seen() == ["[x] UserWarning: before the crash"]


def test_import_is_light() -> None:
    code = "import sys, compat.shims.routes; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(__import__("pathlib").Path(__file__).parents[2]),
    )
    assert out.stdout.strip() == "False"
