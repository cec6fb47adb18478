"""Load ``matrix.toml`` into cells, validating every key before anything is installed.

The file declares axes (python, pt2e stacks), a list of torch entries each with its
torchao pairing, ``include``/``exclude`` rules and expectations. The product of the
axes, minus exclusions, plus inclusions, is the cell list; cells that cannot exist are
kept with a *not applicable* reason so that the grid can say why they were not run.
"""

from __future__ import annotations

import datetime
import difflib
import fnmatch
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from compat.harness.config.applicability import STACKS, not_applicable_reason
from compat.harness.config.channels import CHANNEL_KINDS, RELEASE, Channel, is_nightly_spec
from compat.harness.config.sizes import budget_problem, parse_size
from compat.harness.config.tables import Table, count, env_table, missing, optional_int, show
from compat.harness.errors import ConfigError
from compat.harness.processes import wait_for
from compat.harness.redact import redact

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "ISOLATION_MODES",
    "Cell",
    "Expectation",
    "Matrix",
    "Selector",
    "Suite",
    "harness_owned",
    "load_matrix",
    "parse_matrix",
]

DEFAULT_TESTS = ("tests/core",)
DEFAULT_DEPS = ("pytest", "numpy")  # torch < 2.3 needs numpy for dynamo capture
DEFAULT_TIMEOUT = 900.0
DEFAULT_INSTALL_TIMEOUT = 1800.0
# "file": one process per test file, as PyTorch's own CI (run_test.py) runs its tests, so a
# file's verdict never depends on what another file did at import; "cell": one pytest.
ISOLATION_MODES = ("file", "cell")
# Imported once per cell before the per-file processes fork: what nearly every pt2e test
# imports, whose import warns of nothing and starts no thread (torch._dynamo: 0.7 s a file).
DEFAULT_PRELOAD = ("torch.fx", "torch._dynamo", "torch.export")
NIGHTLY_TORCHAO = "nightly"  # torchao: the nightly of the same date as the torch nightly
DEPS_AS_OF_TORCH = "torch-release"  # deps as the index had them when the cell's torch came out
_NONE = "none"
_SAFE_ID = re.compile(r"[^A-Za-z0-9._+-]")
MAX_NAME = 100
MAX_VERSION = 48
_SAFE_NAME = re.compile(rf"[A-Za-z0-9_+-][A-Za-z0-9._+-]{{0,{MAX_NAME - 1}}}")
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
URL_SCHEMES = ("http", "https", "file")


@dataclass(frozen=True)
class Cell:
    """One point of the matrix: an interpreter, a torch build, a pt2e stack."""

    python: str
    torch: str
    stack: str
    torchao: str | None = None
    channel: str = RELEASE
    gating: bool = True
    not_applicable: str | None = None
    url: str | None = None  # a direct wheel URL for torch (a nightly that left the index)
    declared: bool = False  # named by an [[include]]: the user vouches for an unsupported pair
    # ``deps`` of its [[torch]] / [[include]] entry: pins for this torch only (an ExecuTorch,
    # a backend's package), installed beside the matrix's deps; part of the env's key.
    deps: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """A readable, filesystem- and shell-safe id, also the nox session parameter."""
        channel = "" if self.channel == RELEASE else f"{self.channel}-"
        stack = f"torchao{self.torchao}" if self.stack == "torchao" else "torch.ao"
        return _SAFE_ID.sub("_", f"{channel}torch{self.torch}-{stack}-py{self.python}")

    @property
    def applicable(self) -> bool:
        return self.not_applicable is None

    def to_dict(self) -> dict[str, Any]:
        """The cell as ``run.json`` and ``result.json`` record it (without its id)."""
        return {**asdict(self), "deps": list(self.deps)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        """A cell as :meth:`to_dict` wrote it, its types checked by the reader; keys this
        harness does not know (an ``id``, a newer harness's) are ignored, missing optional
        ones (an older harness's) take their defaults."""
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in data.items() if k in known}
        if "deps" in given:  # a JSON list; a frozen cell is hashed
            given["deps"] = tuple(given["deps"] or ())
        return cls(**given)


@dataclass(frozen=True)
class Selector:
    """Matches cells by axis values; a bare version means "this release series"."""

    python: SpecifierSet | None = None
    torch: SpecifierSet | None = None
    torchao: SpecifierSet | str | None = None
    stack: str | None = None
    channel: str | None = None

    def matches(self, cell: Cell) -> bool:
        if self.stack is not None and cell.stack != self.stack:
            return False
        if self.channel is not None and cell.channel != self.channel:
            return False
        if not _version_in(cell.python, self.python) or not _version_in(cell.torch, self.torch):
            return False
        if isinstance(self.torchao, str):  # the literal "none"
            return cell.torchao is None
        if isinstance(self.torchao, SpecifierSet):
            return cell.torchao is not None and _version_in(cell.torchao, self.torchao)
        return True


_ISSUE = re.compile(r"([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)#([0-9]{1,9})")


def issue_url(issue: str) -> str:
    """``owner/repo#N`` as the page GitHub shows it on (an issue or a PR: GitHub redirects).

    >>> issue_url("pytorch/ao#2339")
    'https://github.com/pytorch/ao/issues/2339'
    """
    owner, repo, number = _ISSUE.fullmatch(issue).groups()  # type: ignore[union-attr]
    return f"https://github.com/{owner}/{repo}/issues/{number}"


@dataclass(frozen=True)
class Expectation:
    """A known failure: which tests, where, why, and *how* they fail.

    ``raises`` names the exception type (its name or dotted path, any class of its MRO, as
    ``pytest.raises`` would accept a base class); ``match`` is a regex searched in the
    failure message. A failure that matches neither is not the known one: it is reported
    as "failed differently" and fails the gate.
    """

    test: str
    where: Selector
    reason: str
    link: str | None = None
    raises: str | None = None
    match: str | None = None
    issue: str | None = None  # "pytorch/pytorch#130555": the upstream issue or PR it is

    @property
    def references(self) -> str:
        """`` (https://github.com/pytorch/pytorch/issues/130555)``: what a reason cites.

        >>> Expectation("t", Selector(), "r", issue="pytorch/pytorch#130555").references
        ' (https://github.com/pytorch/pytorch/issues/130555)'
        """
        refs = [issue_url(self.issue)] if self.issue else []
        refs += [self.link] if self.link else []
        return f" ({', '.join(refs)})" if refs else ""

    def matches(self, cell: Cell, test_id: str) -> bool:
        return self.names(test_id) and self.where.matches(cell)

    def names(self, test_id: str) -> bool:
        """Whether ``test`` names this node id, or its bare test name (whatever the cell)."""
        name = test_id.rsplit("::", 1)[-1]
        return fnmatch.fnmatchcase(test_id, self.test) or fnmatch.fnmatchcase(name, self.test)

    def explains(self, exc_types: Sequence[str], message: str) -> bool:
        """Whether a failure with these exception types and message is the expected one."""
        if self.raises is not None and self.raises not in exc_types:
            return False
        return self.match is None or re.search(self.match, message) is not None

    def describe(self) -> str:
        """``AssertionError matching 'tag'``: how the test is expected to fail."""
        parts = [self.raises or "any exception"]
        if self.match is not None:
            parts.append(f"matching {self.match!r}")
        return " ".join(parts)


@dataclass(frozen=True)
class Suite:
    """A test path and the cells it was written for (``[[suite]]``); ``where`` None: all.

    A suite of another era's tests (PyTorch 2.5's numeric debugger, say) runs only in the
    cells its selector matches; elsewhere its files are "not in scope", neither run nor
    counted as missing.
    """

    path: str
    where: Selector | None = None

    def in_scope(self, cell: Cell) -> bool:
        return self.where is None or self.where.matches(cell)


@dataclass(frozen=True)
class Matrix:
    """A validated matrix file."""

    path: Path
    name: str
    cells: tuple[Cell, ...]
    tests: tuple[str, ...] = DEFAULT_TESTS
    deps: tuple[str, ...] = DEFAULT_DEPS
    timeout: float = DEFAULT_TIMEOUT
    install_timeout: float = DEFAULT_INSTALL_TIMEOUT
    memory_limit_mb: int | None = None
    reruns: int = 0  # rerun a failed test up to N times; a later pass is "flaky"
    select: str | None = None  # a pytest -k expression (bisect runs one test this way)
    env: Mapping[str, str] = field(default_factory=dict)
    expectations: tuple[Expectation, ...] = ()
    channels: Mapping[str, Channel] = field(default_factory=dict)
    strict: bool = False  # an expected failure that passes ("fixed") fails the gate
    skip_missing_interpreters: bool = False  # else a missing Python is an infrastructure error
    deps_as_of: str | None = None  # "torch-release" or an ISO date: uv --exclude-newer for deps
    disk_budget: int | None = None  # bytes the uv cache and the envs may hold during a run
    suites: tuple[Suite, ...] = ()  # scoped test paths ([[suite]]), beside the unscoped tests
    isolation: str = "file"  # one of ISOLATION_MODES
    file_timeout: float | None = None  # seconds for one test file's process (default: timeout)
    pytest_args: tuple[str, ...] = ()  # given to every cell's pytest (-x, -k, -v...)
    preload: tuple[str, ...] = DEFAULT_PRELOAD  # imported once before the files fork
    warnings: tuple[str, ...] = ()  # what the file says that cannot be what was meant
    cache: bool = True  # reuse unchanged test files' definitive verdicts (compat.harness.cache)
    install_project: bool = False  # the matrix file's folder installed (editable) in each cell
    torch_backend: str | None = None  # uv's --torch-backend (``cpu``): which torch builds

    @property
    def project_root(self) -> Path | None:
        """The repository installed into every cell (``install-project``): the folder of
        the matrix file; None when the cells do not install it."""
        return self.path.parent if self.install_project else None

    def channel(self, name: str) -> Channel:
        """The channel a cell names; one the file does not declare is the default index."""
        return self.channels.get(name) or Channel(name)

    def cell(self, cell_id: str) -> Cell:
        for cell in self.cells:
            if cell.id == cell_id:
                return cell
        raise ConfigError(
            self.path, "cell", f"no cell {cell_id!r} in this matrix{self._hint(cell_id)}"
        )

    def _hint(self, cell_id: str) -> str:
        """What was probably meant: the glob of the cells an id begins (``torch2.8.0`` names
        no cell; ``'torch2.8.0*'`` names its stacks), else the nearest ids."""
        ids = [c.id for c in self.cells]
        if not any(ch in cell_id for ch in "*?["):
            glob = f"{cell_id}*" if cell_id.endswith("-") else f"{cell_id}-*"
            matched = [i for i in ids if fnmatch.fnmatchcase(i, glob)]
            if not matched:
                glob = f"{cell_id}*"
                matched = [i for i in ids if fnmatch.fnmatchcase(i, glob)]
            if len(matched) == 1:
                return f" (did you mean {matched[0]!r}?)"
            if matched:
                return f" (did you mean the glob {glob!r}? it names {len(matched)} cell(s): " + (
                    ", ".join(matched[:4]) + (", ..." if len(matched) > 4 else "") + ")"
                )
        known = difflib.get_close_matches(cell_id, ids, n=3, cutoff=0.5)
        if known:
            more = f"; also near: {', '.join(known[1:])}" if known[1:] else ""
            return f" (did you mean {known[0]!r}?{more})"
        return f" (cells: {', '.join(ids[:4])}{', ...' if len(ids) > 4 else ''})"

    @property
    def cell_deps(self) -> tuple[str, ...]:
        """What every cell installs beside torch: ``deps``, and the rerun plugin if asked."""
        if self.reruns and not any(d.startswith("pytest-rerunfailures") for d in self.deps):
            return (*self.deps, "pytest-rerunfailures")
        return self.deps

    def cells_matching(self, patterns: Sequence[str]) -> list[Cell]:
        """Cells named by id or by glob (``'torch2.8*'``), in matrix order; a pattern that
        names no cell is an error, as a misspelt id is."""
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(c.id, pattern) for c in self.cells):
                self.cell(pattern)  # raises, with a suggestion
        return [c for c in self.cells if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]

    def all_suites(self) -> tuple[Suite, ...]:
        """The unscoped ``tests`` (every cell), then the ``[[suite]]`` entries."""
        return (*(Suite(t) for t in self.tests), *self.suites)

    def scope(self, cell: Cell) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The test paths ``cell`` runs, and those of suites written for other cells."""
        suites = self.all_suites()
        return (
            tuple(dict.fromkeys(s.path for s in suites if s.in_scope(cell))),
            tuple(dict.fromkeys(s.path for s in suites if not s.in_scope(cell))),
        )

    def expectation_for(self, cell: Cell, test_id: str) -> Expectation | None:
        return self.expectations_met(cell, [test_id]).get(test_id)

    def expectations_met(self, cell: Cell, test_ids: Iterable[str]) -> dict[str, Expectation]:
        """The first expectation naming each of ``test_ids`` in ``cell`` (none: left out).
        The cell's own entries are picked once, then matched by name: matching each test
        of a cell against every cell's entries cost an all-cached rerun a tenth of its time."""
        mine = [e for e in self.expectations if e.where.matches(cell)]
        found = {}
        for test_id in test_ids:
            expectation = next((e for e in mine if e.names(test_id)), None)
            if expectation is not None:
                found[test_id] = expectation
        return found


def _version_in(text: str, spec: SpecifierSet | None) -> bool:
    if spec is None:
        return True
    try:
        return spec.contains(Version(text), prereleases=True)
    except InvalidVersion:
        return False


def _version(table: Table, name: str, text: str) -> str:
    try:
        if len(text) > MAX_VERSION:
            raise InvalidVersion(text)
        Version(text)
    except InvalidVersion:
        raise table.error(name, f"{show(text)} is not a valid version") from None
    return text


def _url(table: Table, name: str, text: str | None, *, folder_ok: bool = False) -> str | None:
    """An index or wheel URL: http(s) or file only; with ``folder_ok`` also a folder path."""
    if text is None:
        return None
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in URL_SCHEMES and (scheme == "file" or urlsplit(text).netloc):
        return text
    if folder_ok and not scheme:
        return text
    raise table.error(name, f"{show(text)} is not an http(s) or file URL")


def _matrix_name(settings: Table, path: Path) -> str:
    """The name runs are filed under (``reports/<stamp>-<name>``): one safe path component."""
    given = settings.string("name")
    if given is None:  # the file's name, made safe
        return _SAFE_ID.sub("_", path.stem)[:MAX_NAME].lstrip(".") or "matrix"
    if not _SAFE_NAME.fullmatch(given) or ".." in given:
        raise settings.error(
            "name",
            f"{show(given)} is not a name for a folder: letters, "
            f"digits and . _ + - only, at most {MAX_NAME} characters, not "
            "starting with a dot",
        )
    return given


def _inside(target: Path, root: Path) -> bool:
    return target == root or root in target.parents


_PACKAGE = Path(__file__).resolve().parents[2]  # this harness's own ``compat`` package


def _check_no_shadow(path: Path) -> None:
    """A ``compat`` module beside the matrix file would be imported in every cell in place of
    the shims and the file runner: cells run there, and ``python -m`` puts that folder first
    on ``sys.path``. Said before anything is installed."""
    folder = path.parent
    for shadow in (folder / "compat.py", folder / "compat"):
        if shadow.exists() and shadow.resolve() != _PACKAGE:
            raise ConfigError(
                path,
                "",
                f"{shadow} shadows torch-compat-matrix's package 'compat' in every cell "
                "(the cells run in this folder): rename it, or keep matrix.toml in a folder "
                "without one",
            )


def _test_path(table: Table, key: str, path: Path, test: str) -> str:
    """A test path stays inside the project: the matrix file's folder tree or the folder the
    command runs in (a shared test core beside the matrix folder, ``../core``, is fine;
    ``/etc`` is not)."""
    roots = [path.parent.resolve(), Path.cwd().resolve()]
    part = test.split("::", 1)[0]
    try:
        target = Path(os.path.normpath(path.parent / part)).resolve()
    except (OSError, ValueError, RuntimeError):
        target = None
    if target is None or not any(_inside(target, root) for root in roots):
        raise table.error(
            key,
            f"{show(test)} is outside the project (test paths "
            "stay inside the matrix file's folder or the working folder)",
        )
    return test


def _exists(table: Table, key: str, path: Path, test: str, *, default: bool = False) -> None:
    """Checked last, so another fault of the file is named first."""
    try:
        found = (path.parent / test.split("::", 1)[0]).exists()
    except (OSError, ValueError):
        found = False
    if not found and default:
        raise table.error(
            key,
            f"not set, and the default {test!r} is not next to "
            "the matrix file (set tests = [...] to your test paths)",
        )
    if not found:
        raise table.error(key, f"{show(test)} does not exist next to the matrix file")


def _test_paths(settings: Table, path: Path, *, scoped: bool) -> tuple[str, ...]:
    """``tests``: the paths every cell runs (``tests/core`` unless suites are declared)."""
    given = settings.raw("tests")
    default = () if scoped else DEFAULT_TESTS
    tests = settings.strings("tests", default, nonempty=given is not None and not scoped)
    return tuple(_test_path(settings, "tests", path, t) for t in tests)


def _suites(root: Table, path: Path) -> list[tuple[Table, Suite]]:
    """``[[suite]]``: a test path with the cells it is for (the keys of ``[[expect]]``)."""
    suites = []
    for entry in root.tables("suite"):
        test = entry.string("path") or missing(entry, "path")
        suite = Suite(_test_path(entry, "path", path, test), _selector(entry))
        entry.finish()
        suites.append((entry, suite))
    return suites


def _check_scopes(path: Path, cells: Sequence[Cell], suites: Sequence[tuple[Table, Suite]]) -> None:
    """A suite whose selector matches no applicable cell would silently never run."""
    applicable = [c for c in cells if c.applicable]
    for entry, suite in suites:
        if applicable and not any(suite.in_scope(c) for c in applicable):
            given = {
                k: entry.data[k]
                for k in ("python", "torch", "torchao", "stack", "channel")
                if k in entry.data
            }
            key = next(iter(given), "path")
            raise entry.error(
                key,
                f"{show(given.get(key, suite.path))} matches no applicable cell of this "
                f"matrix (suite {suite.path!r} would never run)",
            )


def harness_owned(args: Sequence[str]) -> str | None:
    """The first of ``args`` the harness sets itself for every cell (its ini, rootdir,
    plugin, JUnit file and events), which a user's pytest options must not change.

    >>> harness_owned(["-k", "porting", "-x"]) is None
    True
    >>> harness_owned(["--rootdir=/tmp"])
    '--rootdir=/tmp'
    """
    for arg in args:
        if arg in ("-p", "--rootdir", "-c", "--junitxml", "--junit-xml") or arg.startswith(
            ("--rootdir=", "--junitxml=", "--junit-xml=", "--compat-", "-c=")
        ):
            return arg
    return None


def _isolation(settings: Table) -> dict[str, Any]:
    """How a cell's test files share processes, and what every cell's pytest is given."""
    timeout = settings.raw("file-timeout")
    args = settings.strings("pytest-args")
    refused = harness_owned(args)
    if refused:
        raise settings.error("pytest-args", f"{show(refused)} is set by the harness for every cell")
    return {
        "isolation": settings.string("isolation", "file", choices=ISOLATION_MODES),
        "file_timeout": None if timeout is None else settings.number("file-timeout", 0),
        "pytest_args": args,
        "preload": settings.strings("preload", DEFAULT_PRELOAD),
    }


def _specifier(table: Table, name: str, text: str | None) -> SpecifierSet | None:
    """``"2.8"`` means the 2.8 series (``==2.8.*``); anything else is a PEP 440 specifier."""
    if text is None:
        return None
    try:
        return SpecifierSet(f"=={Version(text)}.*")
    except InvalidVersion:
        pass
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise table.error(
            name, f"{show(text)} is neither a version nor a version specifier"
        ) from None


def _selector(table: Table) -> Selector:
    torchao = table.string("torchao")
    selector = Selector(
        python=_specifier(table, "python", table.string("python")),
        torch=_specifier(table, "torch", table.string("torch")),
        torchao=torchao if torchao == _NONE else _specifier(table, "torchao", torchao),
        stack=table.string("stack", choices=STACKS),
        channel=table.string("channel"),
    )
    return selector


def _disk_budget(settings: Table) -> int | None:
    text = settings.string("disk-budget", None)
    if text is None:
        return None
    problem = budget_problem(text)
    if problem:
        raise settings.error("disk-budget", f"{show(text)} {problem}")
    return parse_size(text)


def parse_matrix(path: Path, data: Mapping[str, Any]) -> Matrix:
    """Build a :class:`Matrix` from parsed TOML; every problem is a :class:`ConfigError`.

    In the order a reader meets them: the axes and settings of ``[matrix]``, the channels,
    the cells of ``[[torch]]`` less ``[[exclude]]`` plus ``[[include]]``, the expectations,
    the suites; last the plan (each cell applicable or not, with the reason) and the checks
    that need the whole file (test paths exist, every suite reaches a cell).
    """
    root = Table(path, "", data)
    settings = Table(path, "matrix", root.raw("matrix") or {})
    name = _matrix_name(settings, path)
    pythons = tuple(
        _version(settings, "python", p) for p in settings.strings("python", ["3.11"], nonempty=True)
    )
    stacks = settings.strings("stacks", STACKS, nonempty=True)
    for stack in stacks:
        if stack not in STACKS:
            raise settings.error("stacks", f"{show(stack)} is not one of {', '.join(STACKS)}")
    scoped = bool(root.data.get("suite"))
    matrix_kwargs: dict[str, Any] = {
        "tests": _test_paths(settings, path, scoped=scoped),
        "deps": _deps(settings),
        "timeout": settings.number("timeout", DEFAULT_TIMEOUT),
        "install_timeout": settings.number("install-timeout", DEFAULT_INSTALL_TIMEOUT),
        "memory_limit_mb": optional_int(settings, "memory-limit-mb"),
        "reruns": count(settings, "reruns"),
        "env": env_table(settings),
        "strict": settings.boolean("strict", False),
        "skip_missing_interpreters": settings.boolean("skip-missing-interpreters", False),
        "deps_as_of": _deps_as_of(settings),
        "disk_budget": _disk_budget(settings),
        "cache": settings.boolean("cache", True),
        "install_project": settings.boolean("install-project", False),
        "torch_backend": _torch_backend(settings),
        **_isolation(settings),
    }
    tests_given = settings.data.get("tests")
    settings.finish()

    channels = _channels(root)
    warnings: list[ConfigError] = []
    cells = _torch_cells(root, channels, pythons, stacks, warnings)
    excludes = []
    for rule in root.tables("exclude"):
        excludes.append(_selector(rule))
        rule.finish()
    cells = [c for c in cells if not any(rule.matches(c) for rule in excludes)]
    cells += _include_cells(root, channels, pythons)
    expectations = _expectations(root)
    suites = _suites(root, path)
    root.finish()

    planned = _plan(path, cells)
    for test in matrix_kwargs["tests"]:
        _exists(settings, "tests", path, test, default=tests_given is None)
    for entry, suite in suites:
        _exists(entry, "path", path, suite.path)
    _check_scopes(path, planned, suites)
    _check_no_shadow(path)
    if warnings and matrix_kwargs["strict"]:
        raise warnings[0]
    return Matrix(
        path,
        name,
        tuple(planned),
        expectations=tuple(expectations),
        channels=channels,
        suites=tuple(suite for _, suite in suites),
        warnings=tuple(str(w) for w in warnings),
        **matrix_kwargs,
    )


def _torch_cells(
    root: Table,
    channels: Mapping[str, Channel],
    pythons: Sequence[str],
    stacks: Sequence[str],
    warnings: list[ConfigError],
) -> list[Cell]:
    """``[[torch]]``: each entry's pythons x stacks (torchao only where one is paired); an
    entry that yields no cell (only the torchao stack, no torchao paired) is a warning."""
    cells: list[Cell] = []
    for entry in root.tables("torch"):
        before = len(cells)
        channel = _channel(entry, channels)
        nightly = channels[channel].is_nightly
        version = _torch_version(entry, "version", entry.string("version"), nightly)
        url = _url(entry, "url", entry.string("url"))
        torchao = _torchao(entry, entry.string("torchao"), nightly)
        gating = entry.boolean("gating", channels[channel].gating)
        entry_pythons = tuple(
            _version(entry, "python", p) for p in entry.strings("python", pythons, nonempty=True)
        )
        entry_stacks = entry.strings("stacks", stacks, nonempty=True)
        for stack in entry_stacks:
            if stack not in STACKS:
                raise entry.error("stacks", f"{show(stack)} is not one of {', '.join(STACKS)}")
        deps = _deps(entry, ())
        entry.finish()
        for python in entry_pythons:
            for stack in entry_stacks:
                if stack == "torchao" and torchao is None:
                    continue  # no torchao paired with this torch: only torch.ao is meant
                ao = torchao if stack == "torchao" else None
                cells.append(Cell(python, version, stack, ao, channel, gating, url=url, deps=deps))
        if len(cells) == before:
            warnings.append(
                entry.error(
                    "stacks",
                    f"{show(list(entry_stacks))} yields no cell: the torchao stack needs a "
                    'torchao paired with this torch (torchao = "X.Y.Z")',
                )
            )
    return cells


def _include_cells(
    root: Table, channels: Mapping[str, Channel], pythons: Sequence[str]
) -> list[Cell]:
    """``[[include]]``: one declared cell each (the user vouches for the pair)."""
    cells = []
    for extra in root.tables("include"):
        stack = extra.string("stack", choices=STACKS) or missing(extra, "stack")
        channel = _channel(extra, channels)
        nightly = channels[channel].is_nightly
        torchao = extra.string("torchao")
        cells.append(
            Cell(
                python=_version(extra, "python", extra.string("python", pythons[0])),
                torch=_torch_version(extra, "torch", extra.string("torch"), nightly),
                stack=stack,
                torchao=None if torchao in (None, _NONE) else _torchao(extra, torchao, nightly),
                channel=channel,
                gating=extra.boolean("gating", channels[channel].gating),
                url=_url(extra, "url", extra.string("url")),
                declared=True,
                deps=_deps(extra, ()),
            )
        )
        extra.finish()
    return cells


def _expectations(root: Table) -> list[Expectation]:
    """``[[expect]]``: known failures, each saying how it fails (``raises``/``match``)."""
    expectations = []
    for rule in root.tables("expect"):
        test = rule.string("test") or missing(rule, "test")
        reason = rule.string("reason") or missing(rule, "reason")
        link = rule.string("link")
        issue = rule.string("issue")
        if issue is not None and not _ISSUE.fullmatch(issue):
            raise rule.error("issue", f"{show(issue)} is not an issue reference (owner/repo#123)")
        raises = rule.string("raises")
        match = rule.string("match")
        if raises is None and match is None:
            hint = " (test = '*' with neither would hide any failure)" if "*" in test else ""
            raise rule.error(
                "raises",
                "an expectation needs `raises` (exception type) and/or "
                f"`match` (regex in the failure message){hint}",
            )
        if raises is not None and not re.fullmatch(r"[A-Za-z_][\w.]*", raises):
            raise rule.error("raises", f"{show(raises)} is not an exception type name")
        if match is not None:
            try:
                re.compile(match)
            except (re.error, RecursionError, OverflowError) as exc:
                raise rule.error("match", f"{show(match)} is not a valid regex ({exc})") from None
        expectations.append(Expectation(test, _selector(rule), reason, link, raises, match, issue))
        rule.finish()
    return expectations


def _plan(path: Path, cells: Sequence[Cell]) -> list[Cell]:
    """Each cell once, with the reason it cannot exist (or None: applicable)."""
    planned: list[Cell] = []
    seen: set[str] = set()
    for cell in cells:
        if cell.id in seen:
            raise ConfigError(path, "torch", f"duplicate cell {cell.id!r}")
        reason = not_applicable_reason(
            python=cell.python,
            torch=cell.torch,
            stack=cell.stack,
            torchao=cell.torchao,
            declared=cell.declared,
        )
        seen.add(cell.id)
        planned.append(replace(cell, not_applicable=reason))
    if not planned:
        raise ConfigError(path, "torch", "the matrix has no cells (add [[torch]] entries)")
    return planned


def _deps(settings: Table, default: Sequence[str] = DEFAULT_DEPS) -> tuple[str, ...]:
    """Requirements installed next to torch: each one PEP 508 (no pip options; the
    repository itself is ``install-project``, not ``-e .``)."""
    deps = settings.strings("deps", default)
    for dep in deps:
        try:
            Requirement(dep)
        except InvalidRequirement:
            hint = " (the repository itself: install-project = true)" if dep.startswith("-") else ""
            raise settings.error(
                "deps", f"{show(dep)} is not a requirement (PEP 508){hint}"
            ) from None
    return deps


# uv's --torch-backend values (``uv pip install --help``): cpu, auto, cuXYZ, rocmX.Y, xpu.
_TORCH_BACKEND = re.compile(r"auto|cpu|xpu|cu[0-9]{2,3}|rocm[0-9]+(\.[0-9]+){1,2}")


def _torch_backend(settings: Table) -> str | None:
    """``torch-backend = "cpu"``: uv's ``--torch-backend``, which takes torch (and the other
    PyTorch-ecosystem packages) from PyTorch's index for that backend."""
    value = settings.string("torch-backend")
    if value is not None and not _TORCH_BACKEND.fullmatch(value):
        raise settings.error(
            "torch-backend",
            f"{show(value)} is not a uv torch backend (cpu, auto, cu128, rocm6.3, xpu...)",
        )
    return value


def _deps_as_of(settings: Table) -> str | None:
    """``"torch-release"``, ``"none"`` or a date (``2024-03-28``, or an RFC 3339 time)."""
    value = settings.raw("deps-as-of")
    if value is None or value == _NONE:
        return None
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if value == DEPS_AS_OF_TORCH:
        return value
    if isinstance(value, str):
        try:
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return value
    raise settings.error(
        "deps-as-of", f'expected "{DEPS_AS_OF_TORCH}", "none" or a date, got {show(value)}'
    )


def _torch_version(table: Table, name: str, text: str | None, nightly: bool) -> str:
    """A release version; on a nightly channel also ``YYYY-MM-DD``, ``latest``, ``latest-Nd``."""
    if text is None:
        return missing(table, name)
    if nightly and is_nightly_spec(text):
        return text
    try:
        if len(text) > MAX_VERSION:
            raise InvalidVersion(text)
        Version(text)
    except InvalidVersion:
        hint = " (or a date, latest, latest-7d)" if nightly else ""
        raise table.error(name, f"{show(text)} is not a valid version{hint}") from None
    return text


def _torchao(table: Table, text: str | None, nightly: bool) -> str | None:
    """A torchao version; a nightly torch pairs with the torchao nightly of its date."""
    if text is None:
        return NIGHTLY_TORCHAO if nightly else None
    if text == NIGHTLY_TORCHAO and nightly:
        return text
    return _version(table, "torchao", text)


def _channels(root: Table) -> dict[str, Channel]:
    raw = root.raw("channels") or {}
    table = Table(root.path, "channels", raw)
    channels: dict[str, Channel] = {RELEASE: Channel(RELEASE)}
    for name in list(table.data):
        if not _CHANNEL_NAME.fullmatch(name):
            raise table.error(
                redact(name)[:100],
                "a channel's name is letters, digits, _ and - "
                "(at most 40; it becomes part of cell ids)",
            )
        entry = Table(root.path, f"channels.{name}", table.raw(name))
        default_kind = name if name in CHANNEL_KINDS else "index"
        kind = entry.string("kind", default_kind, choices=CHANNEL_KINDS)
        channel = Channel(
            name=name,
            kind=kind,
            index_url=_url(entry, "index-url", entry.string("index-url")),
            find_links=tuple(
                _url(entry, "find-links", link, folder_ok=True) or link
                for link in entry.strings("find-links")
            ),
            gating=entry.boolean("gating", kind != "nightly"),
        )
        if kind in ("rc", "nightly", "index") and not channel.index_url:
            raise entry.error("index-url", f"is required for a {kind} channel")
        if kind == "wheelhouse" and not channel.find_links:
            raise entry.error("find-links", "is required for a wheelhouse channel")
        for link in channel.find_links:
            if "://" not in link and not (root.path.parent / link).is_dir():
                raise entry.error("find-links", f"{show(link)} is not a folder")
        channels[name] = channel
        entry.finish()
    table.finish()
    return channels


def _channel(table: Table, channels: Mapping[str, Channel]) -> str:
    channel = table.string("channel", RELEASE)
    if channel not in channels:
        close = difflib.get_close_matches(channel, list(channels), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(channels)})"
        raise table.error("channel", f"unknown channel {show(channel)}{hint}")
    return channel


def load_matrix(path: Path | str) -> Matrix:
    """Read and validate a matrix file."""
    path = Path(path)
    try:
        # Off the main thread, so a signal during a blocking read (a FIFO) always stops it.
        text = wait_for(lambda: path.read_text(encoding="utf-8"), what=str(path))
    except FileNotFoundError:
        raise ConfigError(path, "", "no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(path, "", f"cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(path, "", "not valid TOML: nested too deeply") from None
    try:
        return parse_matrix(path.resolve(), data)
    except RecursionError:
        raise ConfigError(path, "", "nested too deeply to be a matrix file") from None
