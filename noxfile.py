"""nox sessions of torch-compat-matrix.

    nox -s matrix                     every cell of matrix.toml, then the grid
    nox -s matrix -- --matrix F --out D -j 2
    nox -l                            lists one ``cell(<id>)`` session per applicable cell
    nox -s "cell(torch2.8.0-torch.ao-py3.11)"
    nox -s report [-- RUN_DIR]        rebuild a run's report from its cell folders
    nox -s probe                      capability grid of every cell, without running tests
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


def _exit(code: int) -> None:
    if code:
        raise SystemExit(code)


@nox.session(python=False)
def matrix(session: nox.Session) -> None:
    """Run every cell of the matrix (``-- --matrix FILE --out DIR -j N``), then report."""
    args = list(session.posargs)
    if "--matrix" not in args:
        args = ["--matrix", MATRIX, *args]
    _exit(cli.main(["matrix", *args]))


@nox.session(python=False)
@nox.parametrize("cell_id", _cell_ids(), ids=_cell_ids())
def cell(session: nox.Session, cell_id: str) -> None:
    """One cell of the matrix, alone (its folder merges into a report like any other)."""
    _exit(cli.main(["cell", cell_id, "--matrix", MATRIX, *session.posargs]))


@nox.session(python=False)
def report(session: nox.Session) -> None:
    """Rebuild a run's report from its cell folders (default ``reports/latest``)."""
    _exit(cli.main(["report", *session.posargs]))


@nox.session(python=False)
def probe(session: nox.Session) -> None:
    """Print which shape each API has in every cell, without running the tests."""
    args = list(session.posargs)
    if "--matrix" not in args:
        args = ["--matrix", MATRIX, *args]
    _exit(cli.main(["probe", *args]))


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


@nox.session(python=False)
def prefetch(session: nox.Session) -> None:
    """Download every cell's wheels into ./wheelhouse (then: matrix -- --offline)."""
    args = list(session.posargs)
    if "--matrix" not in args:
        args = ["--matrix", MATRIX, *args]
    _exit(cli.main(["prefetch", *args]))


@nox.session(python=False)
def bisect(session: nox.Session) -> None:
    """First bad release or nightly: ``-- TEST --good V --bad V [--stack S]``."""
    args = list(session.posargs)
    if "--matrix" not in args:
        args = [*args, "--matrix", MATRIX]
    _exit(cli.main(["bisect", *args]))


@nox.session(python=False)
def gc(session: nox.Session) -> None:
    """Remove envs no longer in the matrix; ``-- --cache-budget 40G`` prunes the uv cache."""
    args = list(session.posargs)
    if "--matrix" not in args:
        args = ["--matrix", MATRIX, *args]
    _exit(cli.main(["gc", *args]))
