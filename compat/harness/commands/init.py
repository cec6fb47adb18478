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
NOXFILE = '''# Run the compatibility matrix of matrix.toml through nox (torch-compat-matrix).
import nox

nox.options.sessions = ["matrix"]


@nox.session(python=False)
def matrix(session: nox.Session) -> None:
    """Every cell of matrix.toml, then the grid (``-- --cells 'torch2.8*' -j 2``)."""
    session.run("torch-compat-matrix", "matrix", "--matrix", "matrix.toml", *session.posargs)
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
    if starter in targets:
        template = resources.files("compat.templates").joinpath(STARTER_TEST)
        atomic_write_text(starter, template.read_text(encoding="utf-8"))
    return targets
