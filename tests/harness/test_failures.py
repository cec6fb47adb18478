"""A failure's one line and the user's frame, read from reports as pytest wrote them."""

from __future__ import annotations

from compat.harness.results.failures import short_message, signature, user_frame
from compat.harness.results.model import Outcome
from compat.harness.results.model import TestResult as Result

# A call failure: the test, the user's package, then torch (installed in the cell's env).
CALL = """\
    def test_annotates_conv_relu():
>       quantize(model)

tests/test_quantizer.py:21:
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _
myquant/quantizer.py:48: in annotate
    source = node.meta["source_fn_stack"][-1][1]
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _
/envs/torch2.8.0/lib/python3.11/site-packages/torch/fx/node.py:77: in __getitem__
    raise TypeError(...)
E   TypeError: 'NodeSource' object is not subscriptable

/envs/torch2.8.0/lib/python3.11/site-packages/torch/fx/node.py:77: TypeError
"""
# A file that fails to import: pytest's short traceback, the interpreter's importlib first.
COLLECT = """\
ImportError while importing test module '/repo/tests/test_quantizer.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
/uv/python/cpython-3.11.9/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package)
tests/test_quantizer.py:3: in <module>
    from myquant.quantizer import annotate
src/myquant/quantizer.py:12: in <module>
    from torch.ao.quantization.quantizer import Quantizer
E   ModuleNotFoundError: No module named 'torch.ao.quantization.quantizer'
"""
# A failure inside the tool's shims, called from the test: the test is the user's frame.
SHIM = """\
tests/core/test_port.py:30: in test_port
    prepared = pt2e.prepare(model, quantizer)
compat/shims/pt2e.py:88: in prepare
    return prepare_pt2e(model, quantizer)
E   RuntimeError: boom

compat/shims/pt2e.py:88: RuntimeError
"""
# Python's own traceback format, as a subprocess or a logged traceback prints it.
PYTHON = """\
Traceback (most recent call last):
  File "/usr/lib/python3.11/runpy.py", line 198, in _run_module_as_main
  File "tools/export_model.py", line 14, in main
    export(model)
KeyError: 'val'
"""


def test_the_deepest_user_frame_skips_installed_packages() -> None:
    assert user_frame(CALL) == "myquant/quantizer.py:48"


def test_a_collection_error_names_the_users_module_not_importlib() -> None:
    assert user_frame(COLLECT) == "src/myquant/quantizer.py:12"


def test_the_tools_own_shims_are_never_the_users_frame() -> None:
    assert user_frame(SHIM) == "tests/core/test_port.py:30"


def test_pythons_traceback_format_is_read_too() -> None:
    assert user_frame(PYTHON) == "tools/export_model.py:14"


def test_no_user_frame_is_none() -> None:
    only_torch = "/env/lib/python3.11/site-packages/torch/x.py:3: KeyError\n"
    assert user_frame(only_torch) is None
    assert user_frame(None) is None
    assert user_frame("<frozen importlib._bootstrap>:1: in _gcd_import") is None


def test_short_message_is_the_first_e_line() -> None:
    assert short_message(CALL) == "TypeError: 'NodeSource' object is not subscriptable"
    assert short_message("x" * 500) == "x" * 300


def test_identical_failures_share_a_signature_whatever_the_cell() -> None:
    def failed(message: str, types: list[str]) -> Result:
        return Result("t.py::test", Outcome.FAILED, message=message, exc_types=types)

    one = failed(CALL, ["TypeError", "Exception"])
    other = failed(CALL.replace("/envs/torch2.8.0", "/envs/torch2.10.0"), ["TypeError"])
    assert signature(one) == signature(other) == ("TypeError", "myquant/quantizer.py:48")
    assert signature(failed(CALL, ["KeyError"])) != signature(one)
    assert signature(failed("E   RuntimeError: no frame", ["RuntimeError"])) is None
