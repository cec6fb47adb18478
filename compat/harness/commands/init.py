"""``torch-compat-matrix init``: a commented ``matrix.toml`` for today's torch landscape.

It reads the index once: the newest patch of every torch minor from 2.2 on, and for each
the torchao released beside it (the newest torchao uploaded before the next torch minor,
among those whose pt2e the applicability rules accept). Stacks follow the rules too:
``torch.ao`` up to 2.10, ``torchao`` where a pairing exists. With ``--noxfile`` it also
writes a noxfile snippet that runs the matrix through nox. Nothing is overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from packaging.version import Version

from compat.harness.config.applicability import not_applicable_reason
from compat.harness.errors import UsageError
from compat.harness.files import atomic_write_text
from compat.harness.install.index import IndexFile, IndexUnreachable, list_wheels

__all__ = ["Release", "landscape", "render_matrix", "write_start"]

# The starter test is a template file, not code of the harness (which never imports torch).
STARTER_TEST = "test_pt2e_on_shims.py.txt"

FIRST = Version("2.2")  # the first torch with PortNodeMetaForQDQ
NOXFILE = '''# The compatibility matrix of matrix.toml through nox (torch-compat-matrix).
# Each session runs the tool's command with the arguments after `--`.
import nox

nox.options.sessions = ["matrix"]

try:  # one `cell(<id>)` session per applicable cell, as in the tool's own noxfile
    from compat.harness.config.matrix import load_matrix

    CELL_IDS = [c.id for c in load_matrix("matrix.toml").cells if c.applicable]
except Exception:  # noqa: BLE001 - a broken matrix.toml is reported by `nox -s matrix`
    CELL_IDS = []


def _compat(session: nox.Session, command: str, *args: str) -> None:
    session.run("torch-compat-matrix", command, *args, *session.posargs)


@nox.session(python=False)
def matrix(session: nox.Session) -> None:
    """Every cell, then the grid (``-- --cells 'torch2.8*' -j 2``)."""
    _compat(session, "matrix", "--matrix", "matrix.toml")


@nox.session(python=False)
@nox.parametrize("cell_id", CELL_IDS, ids=CELL_IDS)
def cell(session: nox.Session, cell_id: str) -> None:
    """One cell alone (its folder merges into a report like any other)."""
    _compat(session, "cell", cell_id, "--matrix", "matrix.toml")


@nox.session(python=False)
def report(session: nox.Session) -> None:
    """Rebuild a run's report (``-- reports/<run>``; default reports/latest)."""
    _compat(session, "report")


@nox.session(python=False)
def bisect(session: nox.Session) -> None:
    """The first bad release: ``-- TEST --good V --bad V [--stack S]``."""
    _compat(session, "bisect", "--matrix", "matrix.toml")


@nox.session(python=False)
def qualify(session: nox.Session) -> None:
    """``-- --candidate V --reference V``: QUALIFIED or NOT QUALIFIED."""
    _compat(session, "qualify", "--matrix", "matrix.toml")


@nox.session(python=False)
def history(session: nox.Session) -> None:
    """A test across the kept runs: ``-- TEST``."""
    _compat(session, "history")


@nox.session(python=False)
def probe(session: nox.Session) -> None:
    """Which shape each API has in every cell, without running the tests."""
    _compat(session, "probe", "--matrix", "matrix.toml")
'''


@dataclass(frozen=True)
class Release:
    torch: str
    torchao: str | None
    stacks: tuple[str, ...]


def _newest_patches(files: list[IndexFile]) -> dict[tuple[int, int], tuple[Version, datetime]]:
    """Per minor: the newest final release and when its files were uploaded."""
    found: dict[tuple[int, int], tuple[Version, datetime]] = {}
    for f in files:
        v = f.version
        if v.is_prerelease or v.is_devrelease or v.local or f.upload_time is None:
            continue
        minor = (v.major, v.minor)
        if (
            minor not in found
            or v > found[minor][0]
            or (v == found[minor][0] and f.upload_time > found[minor][1])
        ):
            found[minor] = (v, f.upload_time)
    return found


def _first_uploads(files: list[IndexFile]) -> dict[tuple[int, int], datetime]:
    """Per minor: when its first file was uploaded (the x.y.0 release)."""
    found: dict[tuple[int, int], datetime] = {}
    for f in files:
        v = f.version
        if f.upload_time is None or v.is_prerelease or v.is_devrelease:
            continue
        minor = (v.major, v.minor)
        found[minor] = min(found.get(minor, f.upload_time), f.upload_time)
    return found


def landscape(
    torch_files: list[IndexFile], torchao_files: list[IndexFile], python: str = "3.11"
) -> list[Release]:
    """The matrix's rows, from the index's files of torch and torchao."""
    torch = sorted((v, t) for v, t in _newest_patches(torch_files).values() if v >= FIRST)
    aos = sorted(_newest_patches(torchao_files).values())
    opened = _first_uploads(torch_files)
    rows = []
    for i, (version, _) in enumerate(torch):
        # The torchao of this torch's era: released before the next torch minor came out.
        until = (
            opened.get((torch[i + 1][0].major, torch[i + 1][0].minor))
            if i + 1 < len(torch)
            else None
        )
        pairs = [str(ao) for ao, uploaded in aos if until is None or uploaded < until]
        torchao = next(
            (
                ao
                for ao in reversed(pairs)
                if not not_applicable_reason(
                    python=python, torch=str(version), stack="torchao", torchao=ao
                )
            ),
            None,
        )
        stacks = tuple(
            s
            for s, ao in (("torch.ao", None), ("torchao", torchao))
            if (s == "torch.ao" or ao)
            and not not_applicable_reason(python=python, torch=str(version), stack=s, torchao=ao)
        )
        if stacks:
            rows.append(Release(str(version), torchao, stacks))
    return rows


def render_matrix(rows: list[Release], *, source: str) -> str:
    lines = [
        "# torch-compat-matrix: one cell per (python, torch, pt2e stack).",
        f"# Written by `torch-compat-matrix init` from {source}.",
        '# Every key: the README\'s "matrix.toml reference".',
        "",
        "[matrix]",
        'name = "my-project"',
        'python = ["3.11"]                 # CPython versions (each needs an interpreter)',
        'stacks = ["torch.ao", "torchao"]  # pt2e from torch.ao.quantization, or from torchao',
        'tests = ["tests"]                 # your tests; they may import compat.shims',
        'deps = ["pytest", "numpy"]        # installed next to torch / torchao in every cell',
        'deps-as-of = "torch-release"      # numpy, pytest... of each torch\'s own era',
        "strict = true                     # an expected failure that passes fails the gate",
        "# install-project = true          # this repository (its pyproject.toml) in every cell,",
        "#                                 # editable: a src/ layout imports as installed",
        "",
        "# One entry per torch minor (its newest patch); torchao is the one released beside",
        "# it, for the torchao stack. Cells the rules rule out are listed as not applicable.",
    ]
    for row in rows:
        lines += ["", "[[torch]]", f'version = "{row.torch}"']
        if row.torchao:
            lines.append(f'torchao = "{row.torchao}"')
        if row.stacks != ("torch.ao", "torchao"):
            lines.append(f"stacks = {json.dumps(list(row.stacks))}")
    lines += [
        "",
        "# A known failure names how it fails, or it is not accepted:",
        "# [[expect]]",
        '# test = "test_my_port"',
        '# torch = "<2.4"',
        '# raises = "ValueError"',
        '# match = "a regex searched in the exception message"',
        '# reason = "why, traced to code"',
        "",
    ]
    return "\n".join(lines)


IGNORED = (".envs/", "reports/")  # what a run writes into the repository


def _ignore_outputs(folder: Path) -> Path | None:
    """Append the run's folders to the repository's ``.gitignore`` (created if missing),
    never rewriting a line of it; None when it already names them."""
    path = folder / ".gitignore"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    wanted = [entry for entry in IGNORED if entry not in lines and entry.rstrip("/") not in lines]
    if not wanted:
        return None
    with open(path, "a", encoding="utf-8") as handle:
        if lines and path.read_bytes()[-1:] != b"\n":
            handle.write("\n")
        handle.write("# torch-compat-matrix: cell envs and run reports\n")
        handle.write("".join(f"{entry}\n" for entry in wanted))
    return path


def write_start(folder: Path, *, noxfile: bool = False, index_url: str | None = None) -> list[Path]:
    """Write ``matrix.toml`` (and ``noxfile.py``) into ``folder``; never overwrite."""
    targets = [folder / "matrix.toml"] + ([folder / "noxfile.py"] if noxfile else [])
    starter = folder / "tests" / "test_pt2e_on_shims.py"
    if not (folder / "tests").exists():
        targets.append(starter)
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise UsageError(f"{', '.join(existing)}: already exists (init never overwrites)")
    try:
        rows = landscape(list_wheels(index_url, "torch"), list_wheels(index_url, "torchao"))
    except IndexUnreachable as exc:
        raise UsageError(
            f"init reads the releases from the index, which did not answer: {exc}"
        ) from None
    if not rows:
        raise UsageError("the index lists no torch release from 2.2 on")
    atomic_write_text(
        targets[0], render_matrix(rows, source="the index's releases of torch and torchao")
    )
    if noxfile:
        atomic_write_text(folder / "noxfile.py", NOXFILE)
    ignore = _ignore_outputs(folder)
    if ignore is not None:
        targets.append(ignore)
    if starter in targets:
        template = resources.files("compat.templates").joinpath(STARTER_TEST)
        atomic_write_text(starter, template.read_text(encoding="utf-8"))
    return targets
