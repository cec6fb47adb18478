"""The bridge between a cell and the harness: streams what happens in the cell as JSON lines.

Loaded in the cell with ``-p compat.pytest_plugin --compat-events PATH``. Every line is
flushed as soon as it is known, so that a segfault or a kill leaves every finished test
(and the name of the one that was running) on disk. The harness owns the format; this
side only appends, with the names and version of :mod:`compat.events`. Runs on every
Python a cell may use (3.9+), next to any torch, so it must never import
:mod:`compat.harness` (an import-linter contract checks it).
"""

from __future__ import annotations

import fnmatch
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any

import pytest

from compat.events import (
    COLLECT_ERROR,
    EVENTS_SCHEMA,
    FILE_FINISH,
    SESSION_FINISH,
    SESSION_START,
    TEST,
    TEST_START,
)

_MAX_TEXT = 8000


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("compat", "torch-compat-matrix cell recording")
    group.addoption("--compat-events", default=None, help="append the cell's events (JSONL) here")
    group.addoption(
        "--compat-no-rerun",
        action="append",
        default=[],
        metavar="GLOB",
        help="never rerun tests matching GLOB (node id or name): the matrix expects them to fail",
    )
    group.addoption(
        "--compat-file",
        default=None,
        metavar="NODEID",
        help="this pytest runs one file for compat.file_runner: the runner wrote the "
        "session's start, this process ends with the file's finish",
    )


def _clip(text: str) -> str:
    if len(text) <= _MAX_TEXT:
        return text
    return text[: _MAX_TEXT // 2] + "\n...\n" + text[-_MAX_TEXT // 2 :]


def _version_of(dist: str) -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _import_error(module: str) -> str | None:
    try:
        __import__(module)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return _clip("".join(traceback.format_exception_only(type(exc), exc)).strip())
    return None


def _exception_types(exc: BaseException) -> list[str]:
    """The exception's class and its bases, each as a bare name and a dotted path.

    An expectation's ``raises`` matches any of them, as ``pytest.raises`` accepts a base.
    """
    names: list[str] = []
    for cls in type(exc).__mro__:
        if cls is object:
            continue
        for name in (cls.__name__, f"{cls.__module__}.{cls.__qualname__}"):
            if name not in names:
                names.append(name)
    return names


def _import_with_warnings(module: str) -> tuple[str | None, list[str]]:
    """Import ``module``; its import error and the warnings it raised (a NumPy ABI warning
    at ``import torch`` says the environment is broken for any test touching numpy)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error = _import_error(module)
    seen = []
    for w in caught:
        text = f"{w.category.__name__}: {str(w.message).strip().splitlines()[0][:300]}"
        if text not in seen:
            seen.append(text)
    return error, seen


def fingerprint() -> dict[str, Any]:
    """What this cell really is, read from inside it (importing torch once, here)."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "stack": os.environ.get("COMPAT_PT2E_STACK"),
        "pytest": pytest.__version__,
    }
    started = time.perf_counter()
    info["torch_import_error"], info["torch_import_warnings"] = _import_with_warnings("torch")
    info["torch_import_seconds"] = round(time.perf_counter() - started, 3)
    if info["torch_import_error"] is None:
        import torch

        version = getattr(torch, "version", None)
        info["torch"] = str(torch.__version__)
        info["torch_git_version"] = getattr(version, "git_version", None)
        info["torch_cuda"] = getattr(version, "cuda", None)
        info["torch_debug"] = getattr(version, "debug", None)
    info["numpy"] = _version_of("numpy")  # torch's numpy bridge needs the numpy of its era
    info["torchao"] = _version_of("torchao")
    if info["torchao"] is not None and os.environ.get("COMPAT_PT2E_STACK") == "torchao":
        info["torchao_import_error"] = _import_error("torchao")
    return info


class _Recorder:
    def __init__(self, stream: IO[str], file: str | None = None) -> None:
        self.stream = stream
        self.file = file  # set when compat.file_runner runs this file alone
        self.outcomes: dict[str, dict[str, Any]] = {}

    def emit(self, event: str, **data: Any) -> None:
        data = {"event": event, "t": round(time.time(), 3), **data}
        self.stream.write(json.dumps(data, default=str) + "\n")
        self.stream.flush()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.file is None:  # the file runner wrote the cell's start, with its fingerprint
            self.emit(SESSION_START, schema=EVENTS_SCHEMA, fingerprint=fingerprint())

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # a file that cannot be imported: its node id (the file's path)
            self.emit(
                COLLECT_ERROR,
                nodeid=report.nodeid or self.file or "",
                message=_clip(str(report.longrepr)),
            )

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        """Keep the failure's exception type and message: expectations match on them."""
        outcome = yield
        report = outcome.get_result()
        excinfo = call.excinfo
        if excinfo is None or not report.failed:
            return
        state = self.outcomes.setdefault(
            report.nodeid, {"duration": 0.0, "message": None, "reruns": 0}
        )
        if "exc_types" in state and report.when == "teardown":
            return  # the call's failure is the one that says what broke
        state["exc_types"] = _exception_types(excinfo.value)
        state["exc_message"] = _clip(str(excinfo.value))
        state["where"] = _user_frame(excinfo, item.config.rootpath)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        snapshots = sys.modules.get("compat.shims.snapshot")
        if snapshots is not None:  # a suite that records porting snapshots imported it
            snapshots.begin(nodeid)
        self.emit(TEST_START, nodeid=nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self.outcomes.setdefault(
            report.nodeid, {"duration": 0.0, "message": None, "reruns": 0}
        )
        state["duration"] += report.duration
        if report.outcome == "rerun":  # pytest-rerunfailures: this attempt failed, another comes
            state["reruns"] += 1
            state.setdefault("first_failure", _clip(_longrepr(report)))
            return
        wasxfail = hasattr(report, "wasxfail")
        if report.when == "call" or (report.outcome != "passed" and "outcome" not in state):
            if report.skipped:
                state["outcome"] = "xfailed" if wasxfail else "skipped"
            elif report.failed:
                state["outcome"] = "failed" if report.when == "call" else "error"
            else:
                state["outcome"] = "xpassed" if wasxfail else "passed"
            if report.outcome != "passed" or wasxfail:
                state["message"] = _clip(_longrepr(report))
        elif report.failed and report.when == "teardown":
            state["outcome"] = "error"
            state["message"] = _clip(_longrepr(report))
        if report.when == "teardown":
            outcome = state.get("outcome", "passed")
            if state["reruns"] and outcome == "passed":
                outcome = "flaky"
                state["message"] = (
                    f"passed on attempt {state['reruns'] + 1}; the first "
                    f"failed:\n{state['first_failure']}"
                )
            self.emit(
                TEST,
                nodeid=report.nodeid,
                outcome=outcome,
                duration=round(state["duration"], 4),
                message=state["message"],
                reruns=state["reruns"],
                exc_types=state.get("exc_types", []),
                exc_message=state.get("exc_message"),
                where=state.get("where"),
                snapshots=_snapshots_of(report.nodeid),
            )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        routes: dict[str, str] = {}
        adaptations: dict[str, str] = {}
        warnings_seen: list[str] = []
        shim_routes = sys.modules.get("compat.shims.routes")
        if shim_routes is not None:
            try:
                routes = dict(shim_routes.routes())
                adaptations = dict(getattr(shim_routes, "adaptations", dict)())
                warnings_seen = list(shim_routes.warnings_seen())
            except Exception as exc:  # noqa: BLE001 - a broken shim must not lose the results
                routes = {"error": f"{type(exc).__name__}: {exc}"}
        self.emit(
            SESSION_FINISH if self.file is None else FILE_FINISH,
            nodeid=self.file,
            exitstatus=int(exitstatus),
            routes=routes,
            adaptations=adaptations,
            warnings=warnings_seen,
        )


_OWN = Path(__file__).resolve().parent  # this tool's package: never the user's code


def _user_frame(excinfo: Any, root: Any) -> str | None:
    """``pkg/mod.py:48``: the deepest frame of the failure inside the user's tree (under
    pytest's rootdir, not an installed package, not this tool's own package), relative to
    the rootdir as node ids are; None when no frame is the user's."""
    top = Path(str(root)).resolve()
    found = None
    try:
        entries = list(excinfo.traceback)
    except Exception:  # noqa: BLE001 - a traceback pytest cannot walk: no frame, no loss
        return None
    for entry in entries:
        path = Path(str(entry.path)).resolve()
        if {"site-packages", "dist-packages"} & set(path.parts):
            continue
        if _OWN in path.parents or top not in path.parents:
            continue
        found = f"{path.relative_to(top).as_posix()}:{entry.lineno + 1}"
    return found


def _snapshots_of(nodeid: str) -> dict[str, Any]:
    """The porting snapshots the test recorded (``compat.shims.snapshot``), if any."""
    snapshots = sys.modules.get("compat.shims.snapshot")
    if snapshots is None:
        return {}
    try:
        return dict(snapshots.take(nodeid))
    except Exception as exc:  # noqa: BLE001 - a broken shim must not lose the result
        return {"error": f"{type(exc).__name__}: {exc}"}


def _longrepr(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    text = getattr(report, "longreprtext", "") or str(report.longrepr or "")
    return text or getattr(report, "wasxfail", "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An expected failure fails every attempt: pytest-rerunfailures' own per-test marker
    (``flaky(reruns=0)``) spares it the reruns."""
    patterns = config.getoption("compat_no_rerun")
    for item in items if patterns else []:
        if any(
            fnmatch.fnmatchcase(item.nodeid, p) or fnmatch.fnmatchcase(item.name, p)
            for p in patterns
        ):
            item.add_marker(pytest.mark.flaky(reruns=0))


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("compat_events")
    if not path or hasattr(config, "_compat_recorder"):
        return
    stream = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives with the session
    recorder = _Recorder(stream, config.getoption("compat_file"))
    config._compat_recorder = recorder  # type: ignore[attr-defined]
    config.pluginmanager.register(recorder, "compat-recorder")


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = getattr(config, "_compat_recorder", None)
    if recorder is not None:
        recorder.stream.close()
