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
interpreter (``python=False``). A harness command that does not exit 0 fails its session
through ``session.error`` with the gate's code and meaning in the message, so nox runs
every selected session, prints its summary and writes ``--report``; the gate's own codes
(1 unexpected, 2 usage, 3 infrastructure) come from ``python -m compat`` (see README).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

from compat.harness.commands import cli
from compat.harness.config.matrix import load_matrix
from compat.harness.errors import UsageError
from compat.harness.install.pipconfig import read_pip_config
from compat.harness.results.gate import describe_exit_code

ROOT = Path(__file__).resolve().parent

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["matrix"]

MATRIX = os.environ.get("COMPAT_MATRIX", "matrix.toml")


def _cell_ids() -> list[str]:
    try:
        return [c.id for c in load_matrix(ROOT / MATRIX).cells if c.applicable]
    except UsageError:
        return []  # the matrix session reports the error


CELL_IDS = _cell_ids()  # read once, when nox loads this file


def _harness(session: nox.Session, command: str, *args: str, with_matrix: bool = True) -> None:
    """Run one harness command with the session's arguments; fail the session through nox."""
    argv = [*args, *session.posargs]
    if with_matrix and "--matrix" not in argv:
        argv += ["--matrix", MATRIX]
    code = cli.main([command, *argv])
    if code:
        session.error(f"compat {command}: exit code {code} ({describe_exit_code(code)})")


@nox.session(python=False)
def matrix(session: nox.Session) -> None:
    """Run every cell of the matrix (``-- --matrix FILE --out DIR -j N --disk-budget 30G``),
    then report."""
    _harness(session, "matrix")


@nox.session(python=False)
@nox.parametrize("cell_id", CELL_IDS, ids=CELL_IDS)
def cell(session: nox.Session, cell_id: str) -> None:
    """One cell of the matrix, alone (its folder merges into a report like any other)."""
    _harness(session, "cell", cell_id)


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
def qualify(session: nox.Session) -> None:
    """``-- --candidate V [--channel rc|nightly] --reference V``: QUALIFIED or NOT QUALIFIED."""
    _harness(session, "qualify")


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
    """Remove envs no longer in the matrix, prune the verdict cache (2G, 30 days by default);
    ``-- --cache-budget 40G`` prunes the uv cache."""
    _harness(session, "gc")


@nox.session
def tests(session: nox.Session) -> None:
    """The project's own tests: harness (no torch), shims (dev torch), end to end (nox)."""
    index_args = read_pip_config().uv_args()
    session.install("-e", ".[test]", *index_args)
    # The shims are tested against a real torch; 2.13.0 has a CPU wheel on the reference
    # machine's wheelhouse (pip config), elsewhere it comes from the default index.
    session.install("torch==2.13.0", "torchao==0.18.0", *index_args)
    sources = ("compat", "tests", "noxfile.py", "benchmarks", "scripts", "examples")
    session.run("ruff", "check", *sources)
    session.run("ruff", "format", "--check", *sources)  # the whole tree stays formatted
    session.run("lint-imports")  # the two sides never mix (pyproject: [tool.importlinter])
    session.run("pytest", *session.posargs)
