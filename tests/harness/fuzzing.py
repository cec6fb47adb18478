"""Random and adversarial input for the harness's three readers, and what must hold for each.

The matrix loader (``list``, ``plan``), the report reader (``report`` on a run folder,
``report --merge``) and the baseline reader (``report --baseline``) are driven through
``cli.main``, as a user or CI would. Inputs: random TOML text and bytes, valid-ish tables
with every value swapped at random, deep nesting, non-UTF-8 bytes, huge strings, truncated
files, unsafe cell ids, hostile JUnit, and a credential planted as a URL's password
wherever a string goes. For every case:

- the exit code is one of the table's (0-3; the loader: 0 or 2, never an internal error);
- no traceback is printed; a usage error is one line;
- no part of the planted credential reaches stdout, stderr or any file the command wrote;
- nothing is written outside the folder the command owns.

Shared by ``tests/harness/test_fuzz.py`` (a few hundred cases in the normal suite) and
``benchmarks/fuzz.py`` (the same properties at scale, with figures).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import string
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import strategies as st

from compat.harness.commands import cli

SECRET = "Fz9cRedQ7wPk"  # only ever planted as the password of a URL
WINDOWS = [SECRET[i : i + 5] for i in range(len(SECRET) - 4)]  # a cut secret is a leak too

# --- strings ----------------------------------------------------------------------------

_USERINFO = string.ascii_letters + string.digits + "-._~!$&'()*+,;=%"


@st.composite
def credential_urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["https", "http", "ftp", "git+https", "file", "s3"]))
    user = draw(st.text(_USERINFO, min_size=1, max_size=8))
    before = draw(st.text(_USERINFO, max_size=4))
    after = draw(st.sampled_from(["", "@x", ":y", "%40z"]))
    host = draw(st.sampled_from(["host", "mirror.invalid", "127.0.0.1:8080", "[::1]"]))
    path = draw(
        st.sampled_from(
            ["", "/", "/simple", "/whl/torch-2.8.0-py3-none-any.whl", "/a b", "?q=1", "#frag"]
        )
    )
    prefix = draw(st.sampled_from(["", "", "key.", "see ", "(", "'", "\n", "x"]))
    return f"{prefix}{scheme}://{user}:{before}{SECRET}{after}@{host}{path}"


@st.composite
def huge_strings(draw: st.DrawFn) -> str:
    """Up to ~2 MB, a credential URL somewhere in it."""
    size = draw(st.integers(10_000, 1_000_000))
    filler = draw(st.sampled_from(["a", "a:", "://", "@", " ", "x/", "\u00e9"]))
    where = draw(st.sampled_from(["start", "middle", "end"]))
    url = draw(credential_urls())
    body = filler * (size // len(filler))
    return {"start": url + body, "middle": body + " " + url + " " + body, "end": body + url}[where]


VERSIONS = [
    "2.8.0",
    "2.13.0",
    "2.15.0",
    "0.13.0",
    "0.18.0",
    "3.11",
    "3.12",
    ">=2.9",
    "<2.4",
    "2.8",
    "latest",
    "latest-7d",
    "2026-01-15",
    "2.x",
    "",
    "none",
    "torch.ao",
    "torchao",
    "release",
    "nightly",
    "tests/core",
    "tests/core::test_x",
    "default",
    "../x",
    "/etc",
    "a/b",
    ".",
    "..",
    "\x00",
    "x" * 300,
]
strings = st.one_of(
    st.sampled_from(VERSIONS),
    st.text(max_size=12),
    credential_urls(),
    st.text(string.printable, max_size=40),
)
scalars = st.one_of(
    strings,
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
)


def json_values(leaves: st.SearchStrategy[Any] = scalars) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(st.none(), leaves),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)
        ),
        max_leaves=10,
    )


def toml_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)
        ),
        max_leaves=10,
    )


# --- matrix files -------------------------------------------------------------------------

MATRIX_KEYS = [
    "name",
    "python",
    "stacks",
    "tests",
    "deps",
    "timeout",
    "install-timeout",
    "memory-limit-mb",
    "reruns",
    "env",
    "deps-as-of",
    "strict",
    "skip-missing-interpreters",
]
TORCH_KEYS = ["version", "torchao", "python", "stacks", "channel", "gating", "url"]
EXPECT_KEYS = [
    "test",
    "reason",
    "raises",
    "match",
    "link",
    "torch",
    "python",
    "stack",
    "torchao",
    "channel",
]
PLAUSIBLE: dict[str, list[Any]] = {
    "name": ["default", "x/../../../tmp/elsewhere", "a b", ".hidden", "n" * 120],
    "python": [["3.11"], ["3.11", "3.12"], [], "3.13", ["3.9"]],
    "stacks": [["torch.ao"], ["torch.ao", "torchao"], [], ["tensorflow"]],
    "tests": [["tests/core"], ["/etc"], ["../x"], [], ["tests/core::test_a"]],
    "deps": [["pytest", "numpy<2"], ["--index-url=x"], [], ["pkg @ https://u:p@h/x.whl"]],
    "timeout": [900, 0, -1, float("inf"), float("nan"), 1e300, 10**30, True],
    "install-timeout": [1800, float("nan"), "1800"],
    "memory-limit-mb": [600, 0, 2**62, 1.5],
    "reruns": [0, 2, -1, 10**6, True],
    "env": [{"A": "b"}, {"A-B": "x"}, {"A": 1}, {"A": "x\x00"}],
    "deps-as-of": ["torch-release", "none", "2024-03-28", "yesterday", 5],
    "strict": [True, "yes"],
    "skip-missing-interpreters": [False, 1],
    "version": ["2.8.0", "2.13.0", "2.x", "latest", "2026-01-15", "1" * 60, 2.8],
    "torchao": ["0.13.0", "0.18.0", "nightly", "none", "0.x"],
    "channel": ["release", "nightly", "rc", "mirror", "nighty"],
    "gating": [True, False, "no"],
    "url": ["https://host/torch-2.8.0-py3-none-any.whl", "ftp://host/x.whl", "file:///x.whl"],
    "test": ["test_simple_metadata_porting", "*", "tests/core/t.py::test_x"],
    "reason": ["known", ""],
    "raises": ["ValueError", "not a type", "a.b.C"],
    "match": ["has tag", "(", "a" * 5000],
    "link": ["https://x.invalid/1"],
    "torch": [">=2.9", "2.8", ">>2"],
    "stack": ["torch.ao", "torchao", "tf"],
}


def _value_for(key: str) -> st.SearchStrategy[Any]:
    choices = PLAUSIBLE.get(key, [])
    return st.one_of(st.sampled_from(choices), toml_values()) if choices else toml_values()


def _table(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Some of ``keys`` with plausible or random values, and now and then a stranger."""
    known = st.fixed_dictionaries({}, optional={k: _value_for(k) for k in keys})
    strangers = st.dictionaries(strings, toml_values(), max_size=1)
    return st.tuples(known, strangers, st.integers(0, 5)).map(
        lambda t: {**t[1], **t[0]} if t[2] == 0 else t[0]
    )


@st.composite
def matrix_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A matrix file's tables, valid-ish: right keys, values plausible or random."""
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["matrix"] = draw(_table(MATRIX_KEYS))
    doc["torch"] = draw(st.lists(_table(TORCH_KEYS), max_size=4))
    if draw(st.booleans()):
        doc["channels"] = draw(
            st.dictionaries(
                st.one_of(st.sampled_from(["rc", "nightly", "mirror", "local", "a/b"]), strings),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "kind": st.sampled_from(["rc", "nightly", "index", "wheelhouse", "weekly"]),
                        "index-url": st.one_of(credential_urls(), strings),
                        "find-links": st.lists(st.one_of(credential_urls(), strings), max_size=2),
                        "gating": st.booleans(),
                    },
                ),
                max_size=2,
            )
        )
    for name, keys in (
        ("include", [*TORCH_KEYS, "stack", "torch"]),
        ("exclude", ["python", "torch", "torchao", "stack", "channel"]),
        ("expect", EXPECT_KEYS),
    ):
        if draw(st.booleans()):
            doc[name] = draw(st.lists(_table(keys), max_size=3))
    extra = draw(st.dictionaries(strings, toml_values(), max_size=2))
    return {**extra, **doc}


def _nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "a = " + "[" * depth + "]" * depth
    if kind == "inline":
        return "a = " + "{b = " * depth + "1" + "}" * depth
    return "[matrix]\nenv = " + "{ a = " * depth + '"x"' + " }" * depth


@st.composite
def valid_matrices(draw: st.DrawFn) -> dict[str, Any]:
    """A matrix that loads, with credentials wherever a URL or a free text goes; then at most
    two of its values swapped for anything."""
    versions = draw(
        st.lists(
            st.sampled_from(["2.2.2", "2.5.1", "2.8.0", "2.10.0", "2.13.0", "2.15.0"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    torch = []
    for version in versions:
        entry: dict[str, Any] = {"version": version}
        if draw(st.booleans()):
            entry["torchao"] = draw(st.sampled_from(["0.13.0", "0.16.0", "0.18.0"]))
        if draw(st.integers(0, 3)) == 0:
            entry["url"] = f"https://user:{SECRET}@mirror.invalid/torch-{version}-py3-none-any.whl"
        if draw(st.integers(0, 3)) == 0:
            entry["channel"] = "mirror"
        torch.append(entry)
    doc: dict[str, Any] = {
        "matrix": {
            "name": "fuzz",
            "python": draw(st.sampled_from([["3.11"], ["3.10", "3.12"]])),
            "timeout": 600,
            "env": {"INDEX": draw(credential_urls())},
        },
        "channels": {
            "mirror": {"kind": "index", "index-url": f"https://u:{SECRET}@mirror.invalid/simple"},
            "nightly": {
                "index-url": draw(
                    st.sampled_from(
                        [f"https://user:{SECRET}@nightly.invalid/cpu", "https://n.invalid/cpu"]
                    )
                )
            },
        },
        "torch": torch,
        "expect": [
            {
                "test": "test_x",
                "raises": "ValueError",
                "reason": f"see {draw(credential_urls())}",
                "link": f"https://u:{SECRET}@tracker.invalid/1",
            }
        ],
    }
    for _ in range(draw(st.integers(0, 2))):
        table = draw(st.sampled_from(["matrix", "torch", "channels", "expect", "root"]))
        try:
            target = {
                "matrix": lambda: doc["matrix"],
                "torch": lambda: doc["torch"][0],
                "expect": lambda: doc["expect"][0],
                "channels": lambda: doc["channels"]["mirror"],
                "root": lambda: doc,
            }[table]()
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(target, dict):
            continue
        key = draw(st.one_of(st.sampled_from(sorted(target) or ["x"]), strings))
        target[key] = draw(
            st.one_of(_value_for(key if isinstance(key, str) else "x"), huge_strings())
        )
    return doc


@st.composite
def matrix_files(draw: st.DrawFn) -> bytes:
    """The bytes of a matrix file: serialised tables, mutated text, nesting, junk."""
    kind = draw(
        st.sampled_from(
            [
                "valid",
                "valid",
                "valid",
                "tables",
                "tables",
                "mutated",
                "text",
                "bytes",
                "nested",
                "huge",
            ]
        )
    )
    if kind in ("valid", "tables", "mutated", "huge"):
        doc = draw(valid_matrices() if kind == "valid" else matrix_documents())
        if kind == "huge":
            doc.setdefault("matrix", {})[draw(st.sampled_from(MATRIX_KEYS))] = draw(huge_strings())
        try:
            text = tomli_w.dumps(doc)
        except (TypeError, ValueError):
            text = json.dumps(doc, default=str)
        data = text.encode("utf-8", errors="surrogatepass")
        if kind == "mutated":
            cut = draw(st.integers(0, len(data)))
            junk = draw(st.sampled_from([b"", b"\xff\xfe", b"\x00", b"[[", b'"', b"\n]\n"]))
            data = data[:cut] + junk + data[cut:] if draw(st.booleans()) else data[:cut]
        return data
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8", errors="surrogatepass")
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    depth = draw(st.integers(1, 5000))
    return _nested(depth, draw(st.sampled_from(["array", "inline", "env"]))).encode()


# --- run folders --------------------------------------------------------------------------

STATUSES = [
    "passed",
    "failed",
    "error",
    "install-failed",
    "import-failed",
    "crashed",
    "timed-out",
    "not-applicable",
    "skipped",
    "not-run",
    "exploded",
]
OUTCOMES = [
    "passed",
    "failed",
    "error",
    "skipped",
    "xfailed",
    "xpassed",
    "failed-differently",
    "flaky",
    "not-run",
    "weird",
]
IDS = [
    "torch2.8.0-torch.ao-py3.11",
    "torch2.13.0-torchao0.18.0-py3.11",
    "nightly-torch2026-01-15-torch.ao-py3.12",
]
BAD_IDS = ["../../escaped", "..", ".", "", "a/b", "x" * 300, "c\x00d", 5, None]
texts = st.one_of(strings, credential_urls(), huge_strings())


def _cell_of(cell_id: str) -> dict[str, Any]:
    return {
        "python": "3.11",
        "torch": "2.8.0",
        "stack": "torch.ao",
        "torchao": None,
        "channel": "release",
        "gating": True,
        "not_applicable": None,
        "url": None,
        "declared": False,
        "id": cell_id,
    }


@st.composite
def cell_results(draw: st.DrawFn, cell_id: str, chaos: int = 1) -> dict[str, Any]:
    """A result.json document, plausible, then with fields swapped for anything."""
    tests = [
        {
            "nodeid": draw(st.one_of(st.sampled_from(["t.py::test_a", "t.py::test_b"]), texts)),
            "outcome": draw(st.sampled_from(OUTCOMES if chaos else OUTCOMES[:-1])),
            "duration": 0.5,
            "message": draw(st.one_of(st.none(), texts)),
            "expected_reason": None,
            "reruns": 0,
            "expected_failure": None,
            "exc_types": ["AssertionError"],
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    cell = _cell_of(cell_id)
    cell.pop("id")
    if draw(st.booleans()):
        cell["url"] = draw(credential_urls())
    doc: dict[str, Any] = {
        "schema": 1,
        "cell_id": cell_id,
        "cell": cell,
        "status": draw(st.sampled_from(STATUSES if chaos else STATUSES[:-1])),
        "reason": draw(st.one_of(st.none(), texts)),
        "gating": True,
        "tests": tests,
        "fingerprint": {"torch": "2.8.0+cpu", "torch_import_warnings": [draw(texts)]},
        "routes": {"capture": draw(texts)},
        "warnings": [draw(texts)],
        "install": {
            "disk": {"apparent_bytes": 10, "own_bytes": 2},
            "reused": True,
            "freeze": [draw(texts)],
            "plan": {"deps_cutoff": draw(texts)},
            "wheels": {"torch": {"file": "t.whl", "url": draw(credential_urls())}},
        },
        "adaptations": {},
        "applicability": {},
        "timings": {"install": 1.0, "tests": 2.0},
        "command": [draw(credential_urls())],
        "returncode": 0,
        "log_excerpt": draw(st.one_of(st.none(), texts)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(doc)), max_size=chaos)):
        if draw(st.booleans()):
            doc.pop(key, None)
        else:
            doc[key] = draw(json_values())
    return doc


def _document_bytes(draw: st.DrawFn, doc: Any, chaos: int = 1) -> bytes:
    """A JSON document as a file: whole, truncated, nested deep, non-UTF-8 or junk."""
    how = (
        "whole"
        if draw(st.integers(0, 3)) >= chaos
        else draw(st.sampled_from(["truncated", "deep", "bytes", "latin1"]))
    )
    if how == "deep":
        depth = draw(st.integers(100, 200_000))
        return (
            (b"[" * depth + b"]" * depth)
            if draw(st.booleans())
            else (b'{"cells": ' + b"[" * depth + b"]" * depth + b"}")
        )
    if how == "bytes":
        return draw(st.binary(max_size=200))
    data = json.dumps(doc, allow_nan=True).encode()
    if how == "truncated":
        return data[: draw(st.integers(0, len(data)))]
    if how == "latin1":
        return data.replace(b'"', b'"\xe9', 1)
    return data


JUNIT = (
    "<?xml version='1.0' encoding='utf-8'?><testsuites><testsuite name='pytest' "
    "tests='1'><testcase classname='t' name='test_a'><failure message='{m}'>{m}"
    "</failure><system-out>{m}</system-out></testcase></testsuite></testsuites>"
)
BOMB = (
    '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;'
    '&b;">]><testsuite name="x"><testcase name="&c;"/></testsuite>'
)


@st.composite
def junit_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["pytest", "pytest", "garbage", "deep", "bomb", "bytes"]))
    if kind == "pytest":
        message = (
            draw(st.one_of(credential_urls(), strings))
            .replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace("'", "&apos;")
        )
        return JUNIT.format(m=message).encode("utf-8", errors="surrogatepass")
    if kind == "deep":
        depth = draw(st.integers(10, 100_000))
        return b"<testsuite>" * depth + b"</testsuite>" * depth
    if kind == "bomb":
        return BOMB.encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    return draw(st.text(max_size=200)).encode("utf-8", errors="surrogatepass")


@dataclass
class RunFolder:
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content
    links: dict[str, str] = field(default_factory=dict)  # relative path -> outside target
    merge: bool = False
    baseline: bytes | None = None
    # A second run holding (some of) the same cells, merged with the first in both orders:
    # the merge must not depend on the order (nor on which folder is named first).
    twin: dict[str, bytes] | None = None
    resume: bool = False  # also `matrix --resume` from the folder (a matrix of n/a cells)
    special: str | None = None  # a file made a FIFO: a "cells/<id>/result.json"


@st.composite
def run_folders(draw: st.DrawFn) -> RunFolder:
    """A run folder: chaos 0 is a run as the harness writes it (credentials planted), 1 and 2
    swap ever more of it for anything, 3 is junk throughout."""
    chaos = draw(st.integers(0, 3))
    folder = RunFolder(merge=draw(st.integers(0, 4)) == 0)
    pool = (
        st.sampled_from(IDS)
        if chaos < 2
        else st.one_of(st.sampled_from(IDS), st.sampled_from(BAD_IDS))
    )
    ids = draw(st.lists(pool, min_size=1 if chaos < 2 else 0, max_size=4, unique_by=str))
    listed = [_cell_of(i) if isinstance(i, str) else {**_cell_of("x"), "id": i} for i in ids]
    manifest: Any = {
        "run_id": "r",
        "matrix_path": draw(st.one_of(credential_urls(), strings)),
        "matrix_name": draw(strings),
        "matrix_sha256": "0" * 64,
        "cells": listed,
        "all_cells": listed,
        "shard": None,
    }
    for key in draw(st.lists(st.sampled_from(sorted(manifest)), max_size=chaos // 2)):
        manifest[key] = draw(json_values())
    if chaos < 3 or draw(st.booleans()):
        folder.files["run.json"] = _document_bytes(draw, manifest, chaos)
    in_folder = [i for i in ids if isinstance(i, str) and i in IDS]
    if chaos >= 2:
        in_folder = draw(
            st.lists(st.sampled_from([*IDS, "evil", "x" * 200]), max_size=4, unique=True)
        )
    for cell_id in in_folder:
        written_id = (
            cell_id if chaos < 2 or draw(st.integers(0, 4)) else draw(st.sampled_from(BAD_IDS))
        )
        doc = draw(cell_results(written_id if isinstance(written_id, str) else cell_id, chaos))
        doc["cell_id"] = written_id
        base = f"cells/{cell_id}"
        folder.files[f"{base}/result.json"] = _document_bytes(draw, doc, chaos)
        if draw(st.booleans()):
            folder.files[f"{base}/junit.xml"] = draw(junit_files())
        if draw(st.integers(0, 6)) == 0:
            folder.links[f"cells/{cell_id}-linked"] = "outside"
    if draw(st.booleans()):
        folder.files["results.json"] = _document_bytes(draw, {"cells": []})
    if draw(st.integers(0, 2)) == 0:
        folder.baseline = draw(baselines(chaos))
    if draw(st.integers(0, 3)) == 0:
        folder.twin = draw(_twins(folder.files, chaos))
    folder.resume = draw(st.integers(0, 5)) == 0
    results = sorted(p for p in folder.files if p.endswith("/result.json"))
    if results and draw(st.integers(0, 9)) == 0:
        # Not run.json yet: RunManifest.read (results/run_folder.py) still blocks on a FIFO.
        folder.special = draw(st.sampled_from(results))
    return folder


@st.composite
def _twins(draw: st.DrawFn, files: dict[str, bytes], chaos: int) -> dict[str, bytes]:
    """Another run of the same cells: the same files, some results redrawn (another status),
    each cell with events.jsonl time stamps that may tie, order either way or be junk."""
    twin = dict(files)
    for path in [p for p in files if p.endswith("/result.json")]:
        cell_id = path.split("/")[1]
        if draw(st.booleans()):
            twin[path] = _document_bytes(draw, draw(cell_results(cell_id, chaos)), chaos)
        for copy in (files, twin):
            if draw(st.integers(0, 3)):
                stamp = draw(st.one_of(st.sampled_from([1e9, 2e9]), st.floats(), json_values()))
                line = json.dumps({"event": "session_finish", "t": stamp}).encode()
                copy[path.replace("result.json", "events.jsonl")] = line + b"\n"
    for path in draw(st.lists(st.sampled_from(sorted(files) or ["run.json"]), max_size=1)):
        twin.pop(path, None)  # a cell (or the manifest) only one of them has
    return twin


@st.composite
def bisect_states(draw: st.DrawFn) -> bytes:
    """``bisect.json`` as an earlier search left it, then damaged, foreign or junk."""
    chaos = draw(st.integers(0, 3))
    candidates = ["2.7.0", "2.8.0", "2.9.0"]
    doc: Any = {
        "mode": "outcome",
        "request": {"test": "test_a", "good": "2.7.0", "bad": "2.9.0"},
        "candidates": candidates,
        "verdicts": {
            v: draw(st.sampled_from(["good", "bad", "skip", "broken-env", "junk"]))
            for v in draw(st.lists(st.sampled_from(candidates), max_size=3, unique=True))
        },
        "git": {"2.7.0": draw(texts)},
        "steps": [],
        "envs_built": draw(st.integers(0, 5)),
        "snapshots": {},
    }
    for key in draw(st.lists(st.sampled_from(sorted(doc)), max_size=chaos)):
        doc[key] = draw(json_values())
    if chaos == 3 and draw(st.booleans()):
        doc = draw(json_values())
    raw = _document_bytes(draw, doc, chaos)
    if draw(st.integers(0, 5)) == 0:  # what Python's json reads beyond JSON
        raw = b'{"envs_built": ' + draw(st.sampled_from([b"Infinity", b"NaN", b"1e400"])) + b"}"
    return raw


@st.composite
def baselines(draw: st.DrawFn, chaos: int = 1) -> bytes:
    cells = [
        {
            "cell_id": draw(st.one_of(st.sampled_from(IDS), texts)),
            "status": draw(st.sampled_from(STATUSES)),
            "tests": [
                {
                    "nodeid": draw(st.one_of(st.just("t.py::test_a"), texts)),
                    "outcome": draw(st.sampled_from(OUTCOMES)),
                }
                for _ in range(draw(st.integers(0, 3)))
            ],
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    for cell in cells:
        for key in draw(
            st.lists(st.sampled_from(["cell_id", "status", "tests"]), max_size=min(chaos, 1))
        ):
            cell[key] = draw(json_values())
    doc: Any = {"schema": 1, "cells": cells}
    if chaos and draw(st.integers(0, 6)) == 0:
        doc = draw(json_values())
    if draw(st.integers(0, 8)) == 0:  # many vanished cells: a big file
        doc = {
            "cells": [
                {"cell_id": f"gone-{n}", "status": "passed"}
                for n in range(draw(st.integers(1000, 50_000)))
            ]
        }
    return _document_bytes(draw, doc, chaos)


# --- the checks ---------------------------------------------------------------------------


@dataclass
class Case:
    seconds: float
    codes: list[int]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def leaked(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return [w for w in WINDOWS if w in text]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    """Every file and link under ``root``: content digest (or link target)."""
    found = {}
    for path in root.rglob("*"):
        if path.is_symlink():
            found[str(path)] = "-> " + str(path.readlink())
        elif path.is_file():
            found[str(path)] = _digest(path)
    return found


def _check_output(code: int, out: str, err: str, allowed: tuple[int, ...]) -> None:
    assert code in allowed, f"exit {code}: {err[-2000:]}"
    assert "Traceback" not in out + err, err[-4000:]
    assert not leaked(out + err), f"credential in the output: {leaked(out + err)}"
    if code == 2:
        usage = [ln for ln in err.splitlines() if ln.startswith("compat: error")]
        assert len(usage) == 1, err[-2000:]


def check_matrix_file(data: bytes) -> Case:
    """``list`` and ``plan`` on the file: 0 or 2, one line, nothing written, no secret."""
    started = time.monotonic()
    codes = []
    with tempfile.TemporaryDirectory(prefix="fuzz-matrix-") as tmp:
        root = Path(tmp)
        (root / "tests" / "core").mkdir(parents=True)
        path = root / "matrix.toml"
        path.write_bytes(data)
        before = tree(root)
        for argv in (["list", "--json"], ["plan"]):
            code, out, err = run_cli([*argv, "--matrix", str(path)])
            _check_output(code, out, err, (0, 2))
            if code == 2:
                assert len(err.splitlines()) == 1, err[-2000:]
            codes.append(code)
        assert tree(root) == before, "the loader wrote a file"
    return Case(time.monotonic() - started, codes)


def _write_folder(folder: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _cells_of(run: Path) -> Any:
    """The merged run's cells as results.json has them (None if it was not written)."""
    try:
        doc = json.loads((run / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [(c.get("cell_id"), c.get("status")) for c in doc.get("cells", [])]


NA_MATRIX = """\
[matrix]
name = "resumed"
stacks = ["torch.ao"]

[[torch]]
version = "2.11.0"
"""  # torch.ao left torch at 2.11: every cell is not applicable, nothing is installed

_ENVS = tempfile.mkdtemp(prefix="fuzz-envs-")  # one per process: pip's kept answer and the
# uv cache's size are measured once, not per case


def _resume(root: Path, run: Path) -> list[str]:
    """``matrix --resume RUN`` of a matrix of not-applicable cells, into a new folder."""
    from compat.harness.install.disk_estimate import uv_cache_guess

    (root / "tests" / "core").mkdir(parents=True, exist_ok=True)
    (root / "matrix.toml").write_text(NA_MATRIX, encoding="utf-8")
    sizes = Path(_ENVS) / ".uv-cache-size.json"
    if not sizes.exists():
        sizes.write_text(
            json.dumps({"dir": str(uv_cache_guess()), "bytes": 1, "measured": "fuzz"}),
            encoding="utf-8",
        )
    return [
        "matrix",
        "--matrix",
        str(root / "matrix.toml"),
        "--out",
        str(root / "resumed"),
        "--resume",
        str(run),
    ]


@contextlib.contextmanager
def _envs_dir(folder: str) -> Iterator[None]:
    saved = os.environ.get("COMPAT_ENVS_DIR")
    os.environ["COMPAT_ENVS_DIR"] = folder
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("COMPAT_ENVS_DIR", None)
        else:
            os.environ["COMPAT_ENVS_DIR"] = saved


def check_bisect_state(data: bytes) -> Case:
    """A bisection's saved state, as ``bisect`` reads it back: a record, or one of the errors
    it turns into a usage error (exit 2), never another exception."""
    from compat.harness.commands.bisect import BisectRecord, BisectRequest
    from compat.harness.files import read_json_object

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-bisect-") as tmp:
        path = Path(tmp) / "bisect.json"
        path.write_bytes(data)
        request = BisectRequest("test_a", "2.7.0", "2.9.0", "torch.ao", "3.11")
        try:
            BisectRecord.resumed(request, ["2.7.0", "2.8.0", "2.9.0"], read_json_object(path))
        except (KeyError, TypeError, ValueError, AttributeError):
            return Case(time.monotonic() - started, [2])
    return Case(time.monotonic() - started, [0])


def check_run_folder(spec: RunFolder) -> Case:
    """``report`` (and ``report --merge``, ``--baseline``) on the folder: a code of the table,
    no traceback, no secret in anything written, nothing written outside what it owns."""
    started = time.monotonic()
    codes = []
    with tempfile.TemporaryDirectory(prefix="fuzz-run-") as tmp:
        root = Path(tmp)
        run, outside, merged = root / "run", root / "outside", root / "merged"
        outside.mkdir()
        (outside / "result.json").write_text('{"keep": true}', encoding="utf-8")
        run.mkdir()
        _write_folder(run, spec.files)
        if spec.special is not None and (run / spec.special).is_file():
            (run / spec.special).unlink()
            os.mkfifo(run / spec.special)  # read, it would block forever
        for relative, target in spec.links.items():
            (run / relative).parent.mkdir(parents=True, exist_ok=True)
            (run / relative).symlink_to(root / target)
        argv = ["report", str(run)]
        if spec.baseline is not None:
            (root / "baseline.json").write_bytes(spec.baseline)
            argv += ["--baseline", str(root / "baseline.json")]
        commands = [argv] + (
            [["report", "--merge", str(run), "--out", str(merged)]] if spec.merge else []
        )
        twins: list[Path] = []
        if spec.twin is not None:
            twin = root / "twin"
            _write_folder(twin, spec.twin)
            for n, order in enumerate(([run, twin], [twin, run])):
                twins.append(root / f"merged-{n}")
                commands.append(["report", "--merge", *map(str, order), "--out", str(twins[-1])])
        if spec.resume:
            commands.append(_resume(root, run))
        for command in commands:
            before = tree(root)
            with _envs_dir(_ENVS):
                code, out, err = run_cli(command)
            _check_output(code, out, err, (0, 1, 2, 3))
            codes.append(code)
            after = tree(root)
            changed = [p for p, digest in after.items() if before.get(p) != digest]
            owned = (
                str(run) + "/",
                str(merged) + "/",
                *(str(t) + "/" for t in twins),
                str(root / "resumed") + "/",
            )
            strays = [p for p in changed if not p.startswith(owned)]
            assert not strays, f"written outside the run: {strays}"
            for path in changed:
                if not after[path].startswith("-> "):
                    found = leaked(Path(path).read_bytes())
                    assert not found, f"credential in {path}: {found}"
        if spec.twin is not None:  # the merge is the same whichever folder comes first
            assert codes[-2 - spec.resume] == codes[-1 - spec.resume], codes
            assert _cells_of(twins[0]) == _cells_of(twins[1])
    return Case(time.monotonic() - started, codes)
