"""nox sessions of torch-compat-matrix.

    nox -s matrix                     every cell of matrix.toml, then the grid
    nox -s matrix -- --matrix F --out D -j 2
    nox -l                            lists one ``cell(<id>)`` session per applicable cell
    nox -s "cell(torch2.8.0-torch.ao-py3.11)"
    nox -s report [-- RUN_DIR]        rebuild a run's report from its cell folders
    nox -s probe                      capability grid of every cell, without running tests
    nox -s history -- TEST            a test across the kept runs, and since when it broke
    nox -s tests                      the project's own test suite

Cell environments are not nox virtualenvs: the harness builds one uv environment per
cell, keyed by its resolved install plan, so ``matrix`` and ``cell(...)`` share them and a
warm rerun installs nothing. Sessions that only drive the harness run in nox's own
interpreter (``python=False``). The ``matrix``, ``cell``, ``report`` and ``probe``
sessions exit with the harness's documented code (0 ok, 1 unexpected, 2 usage, 3 infra).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from compat.harness import cli  # noqa: E402
from compat.harness.errors import UsageError  # noqa: E402
from compat.harness.matrix import load_matrix  # noqa: E402
from compat.harness.pipconfig import read_pip_config  # noqa: E402

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["matrix"]

MATRIX = os.environ.get("COMPAT_MATRIX", "matrix.toml")


def _cell_ids() -> list[str]:
    try:
        return [c.id for c in load_matrix(ROOT / MATRIX).cells if c.applicable]
    except UsageError:
        return []  # the matrix session reports the error with exit code 2


def _harness(session: nox.Session, command: str, *, with_matrix: bool = True) -> None:
    """Run one harness command with the session's arguments; exit with its code."""
    args = list(session.posargs)
    if with_matrix and "--matrix" not in args:
        args += ["--matrix", MATRIX]
    code = cli.main([command, *args])
    if code:
        raise SystemExit(code)  # nox itself only knows 0 and 1; the gate needs 2 and 3 too


@nox.session(python=False)
def matrix(session: nox.Session) -> None:
    """Run every cell of the matrix (``-- --matrix FILE --out DIR -j N``), then report."""
    _harness(session, "matrix")


@nox.session(python=False)
@nox.parametrize("cell_id", _cell_ids(), ids=_cell_ids())
def cell(session: nox.Session, cell_id: str) -> None:
    """One cell of the matrix, alone (its folder merges into a report like any other)."""
    code = cli.main(["cell", cell_id, "--matrix", MATRIX, *session.posargs])
    if code:
        raise SystemExit(code)


@nox.session(python=False)
def report(session: nox.Session) -> None:
    """Rebuild a run's report from its cell folders (default ``reports/latest``)."""
    _harness(session, "report", with_matrix=False)


@nox.session(python=False)
def probe(session: nox.Session) -> None:
    """Print which shape each API has in every cell, without running the tests."""
    _harness(session, "probe")


@nox.session(python=False)
def prefetch(session: nox.Session) -> None:
    """Download every cell's wheels into ./wheelhouse (then: matrix -- --offline)."""
    _harness(session, "prefetch")


@nox.session(python=False)
def bisect(session: nox.Session) -> None:
    """First bad release or nightly: ``-- TEST --good V --bad V [--stack S]``."""
    _harness(session, "bisect")


@nox.session(python=False)
def history(session: nox.Session) -> None:
    """A test across the kept runs: ``-- TEST [--cells GLOB]``; says between which it broke."""
    _harness(session, "history", with_matrix=False)


@nox.session(python=False)
def plan(session: nox.Session) -> None:
    """The cells as a GitHub Actions ``strategy.matrix`` (``-- --shard I/N --ids``)."""
    _harness(session, "plan")


@nox.session(python=False)
def gc(session: nox.Session) -> None:
    """Remove envs no longer in the matrix; ``-- --cache-budget 40G`` prunes the uv cache."""
    _harness(session, "gc")


@nox.session
def tests(session: nox.Session) -> None:
    """The project's own tests: harness (no torch), shims (dev torch), end to end (nox)."""
    index_args = read_pip_config().uv_args()
    session.install("-e", ".[test]", *index_args)
    # The shims are tested against a real torch; 2.13.0 has a CPU wheel on the reference
    # machine's wheelhouse (pip config), elsewhere it comes from the default index.
    session.install("torch==2.13.0", "torchao==0.18.0", *index_args)
    session.run("ruff", "check", "compat", "tests", "noxfile.py", "benchmarks")
    session.run("pytest", *session.posargs)
