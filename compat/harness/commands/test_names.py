"""Is there a test by that name? Answered from the source before any env is built.

A bisection (or any one-test run) of a name no cell would collect would build an env per
candidate and conclude nothing; a typo is far likelier. The check is static (``ast``):
the file of a node id exists under the matrix's test paths and each name after ``::``
is a function or class defined in it; a bare name (``-k`` selects by substring) is part
of some test file's or function's or class's name. A ``-k`` expression is not judged.
"""

from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path

from compat.harness.config.matrix import Matrix
from compat.harness.config.suites import split_selector, test_files
from compat.harness.errors import UsageError
from compat.harness.execute.cell_runner import rootdir_of

__all__ = ["check_test_exists", "defined_names"]

_IDENTIFIER = re.compile(r"[A-Za-z_]\w*(\[.*\])?")


def defined_names(path: Path) -> set[str]:
    """Every function and class defined in a Python file, at any depth (a file that does
    not parse defines nothing we can see: the check then passes it, pytest will say)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return set()
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {node.name for node in ast.walk(tree) if isinstance(node, kinds)}


def _unparametrized(name: str) -> str:
    return name.split("[", 1)[0]


def _nearest(wanted: str, known: set[str]) -> str:
    close = difflib.get_close_matches(wanted, sorted(known), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def check_test_exists(matrix: Matrix, test: str, option: str = "test") -> None:
    """Refuse (:class:`UsageError`, exit 2) a test id no cell of ``matrix`` would collect."""
    base, root = matrix.path.parent, rootdir_of(matrix)
    paths = [s.path for s in matrix.all_suites()]
    files = {f.nodeid: root / f.nodeid for f in test_files(paths, base=base, rootdir=root)}
    part, selector = split_selector(test)
    if selector is not None:
        found = files.get(part)
        if found is None:  # given relative to the folder the matrix is in
            given = (base / part).resolve()
            found = next((p for p in files.values() if p.resolve() == given), None)
        if found is None:
            near = _nearest(part, set(files))
            raise UsageError(
                f"{option} {test!r}: no test file {part!r} under the matrix's test paths "
                f"({', '.join(paths)}){near}"
            )
        names = defined_names(found)
        for name in (_unparametrized(n) for n in selector.split("::")):
            if names and name not in names:
                raise UsageError(
                    f"{option} {test!r}: {part} defines no {name!r}{_nearest(name, names)}"
                )
        return
    if not _IDENTIFIER.fullmatch(test):
        return  # a -k expression: pytest judges it
    wanted = _unparametrized(test).lower()
    known: set[str] = set()
    for path in files.values():
        names = defined_names(path) | {path.stem}
        if any(wanted in n.lower() for n in names):
            return
        known |= names
    raise UsageError(
        f"{option} {test!r}: no test file, function or class of the matrix's test paths "
        f"({', '.join(paths)}) has that name{_nearest(_unparametrized(test), known)}"
    )
