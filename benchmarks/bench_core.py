"""What the whole test core costs per cell: per suite, harness vs floor, core vs seed suite.

    COMPAT_ENVS_DIR=/work/envs-default python benchmarks/bench_core.py [--cells ID ...]

Issue 23's budget, measured in one run on warm cells (default: torch 2.8.0 torch.ao,
2.13.0 + torchao 0.18.0, 2.15.0 + torchao 0.18.0), each cell on its own (``-j 1``):

  * the harness on ``tests/core`` with the suites of matrix.toml (a file a ``[[suite]]``
    names runs only where its suite applies; the era suites no benchmark cell runs are
    left out), with ``--no-cache``: wall time, and each file's seconds from the
    run's results.json (a forked process per file);
  * the floor: bare ``python -m pytest`` of exactly the files the harness ran, in one
    process, in the same env, with the cell's warm bytecode; per file, the sum of its
    tests' times from ``--junitxml`` (collection and torch's import are not in them);
  * the same two for the seed suite alone (``tests/core/test_metadata_porting.py``).

Printed ratios: harness / bare (goal <= 1.10), core / seed and what the core adds over the
seed, (core - seed) / seed (goal <= 3.00), for the harness and for bare pytest. Whether
bytecode was warm (the number of ``.pyc`` files in the env's ``.pycache`` before the run) is
printed too. Seconds are one run's: noisy on a shared machine, compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_isolation import bare_env  # noqa: E402
from compat.harness.config.matrix import load_matrix  # noqa: E402
from compat.harness.execute.cell_runner import BYTECODE_DIR, CELL_INI  # noqa: E402
from compat.harness.locations import envs_root  # noqa: E402

SEED = "tests/core/test_metadata_porting.py"
# cell id -> (torch, torchao or None): the [[torch]] entry that plans it
CELLS = {
    "torch2.8.0-torch.ao-py3.11": ("2.8.0", None),
    "torch2.13.0-torchao0.18.0-py3.11": ("2.13.0", "0.18.0"),
    "torch2.15.0-torchao0.18.0-py3.11": ("2.15.0", "0.18.0"),
}


def _matrix_text(tests: list[str], with_suites: bool) -> str:
    """A matrix of the benchmark's cells, written beside this file (paths are relative)."""
    lines = [
        "[matrix]",
        'name = "bench-core"',
        'python = ["3.11"]',
        f"tests = {json.dumps(['../' + t for t in tests])}",
        'deps = ["pytest", "numpy"]',
        'deps-as-of = "torch-release"',
        'isolation = "file"',
    ]
    for torch, torchao in CELLS.values():
        lines += ["", "[[torch]]", f'version = "{torch}"']
        lines += [f'torchao = "{torchao}"', 'stacks = ["torchao"]'] if torchao else []
        lines += [] if torchao else ['stacks = ["torch.ao"]']
    if with_suites:
        default = tomllib.loads((ROOT / "matrix.toml").read_text(encoding="utf-8"))
        _, wanted = _suites_for_these_cells()
        for suite in default.get("suite", []):
            if suite["path"] not in wanted:
                continue  # another era's file: the matrix refuses a suite no cell runs
            lines += ["", "[[suite]]", f"path = {json.dumps('../' + suite['path'])}"]
            lines += [f"{k} = {json.dumps(v)}" for k, v in suite.items() if k != "path"]
        for expect in default.get("expect", []):  # the known failures stay expected
            lines += ["", "[[expect]]", *(f"{k} = {json.dumps(v)}" for k, v in expect.items())]
    return "\n".join(lines) + "\n"


def _suites_for_these_cells() -> tuple[set[str], set[str]]:
    """The default matrix's ``[[suite]]`` paths: all, and those in scope of at least one
    benchmark cell."""
    matrix = load_matrix(ROOT / "matrix.toml")
    cells = [c for c in matrix.cells if c.id in CELLS]
    every = {s.path for s in matrix.suites}
    return every, {s.path for s in matrix.suites if any(s.in_scope(c) for c in cells)}


def core_files() -> list[str]:
    """tests/core's files, less the era suites no benchmark cell runs (listed, since a
    folder would run them unscoped)."""
    every, wanted = _suites_for_these_cells()
    return [
        f"tests/core/{p.name}"
        for p in sorted((ROOT / "tests" / "core").glob("test_*.py"))
        if f"tests/core/{p.name}" not in every - wanted
    ]


def _run(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    ok: tuple[int, ...] = (0,),
) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode not in ok:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}")
    return elapsed


def harness(matrix: Path, cell: str, out: Path) -> tuple[float, dict[str, float]]:
    """Wall time of the harness on one cell, and each file's seconds (by file name)."""
    # --no-cache: what running the files costs, not what the verdict cache answers; the
    # fresh verdicts go to a store of the benchmark's own, not the envs' (its scratch
    # matrix's keys would only crowd it)
    cmd = [sys.executable, "-m", "compat", "matrix", "--matrix", str(matrix), "--no-cache"]
    env = {**os.environ, "COMPAT_VERDICTS_DIR": str(out.parent / "verdicts")}
    wall = _run([*cmd, "--cells", cell, "-j", "1", "--out", str(out)], env=env)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    runs = results["cells"][0]["file_runs"]
    return wall, {Path(r["nodeid"]).name: r["seconds"] for r in runs}


def bare(cell: str, files: list[str], junit: Path) -> tuple[float, dict[str, float]]:
    """Wall time of bare pytest of ``files`` in one process, and each file's test time."""
    env_dir = envs_root() / cell
    env = bare_env(cell)
    cmd = [str(env_dir / "bin" / "python"), "-m", "pytest", "-c", str(CELL_INI)]
    cmd += ["--rootdir", str(ROOT), "-p", "no:cacheprovider", "-q", f"--junitxml={junit}"]
    # 1: some tests failed. Bare pytest knows no [[expect]]; the contracts' expected
    # failures fail here, and cost the same time.
    files_ = [str(ROOT / "tests" / "core" / f) for f in files]
    wall = _run([*cmd, *files_], env=env, ok=(0, 1))
    per_file: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("classname", "").split(".")
        module = next((p for p in name if p.startswith("test_")), "?")
        per_file[f"{module}.py"] += float(case.get("time", 0))
    return wall, dict(per_file)


def warm_bytecode(cell: str) -> int:
    return sum(1 for _ in (envs_root() / cell / BYTECODE_DIR).rglob("*.pyc"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    args = parser.parse_args()
    missing = [c for c in args.cells if not (envs_root() / c / "bin" / "python").exists()]
    if missing:
        sys.exit(f"no env for {', '.join(missing)} in {envs_root()} (set COMPAT_ENVS_DIR)")
    core_toml = ROOT / "benchmarks" / ".core-bench.toml"  # beside this file: ../tests
    seed_toml = ROOT / "benchmarks" / ".core-bench-seed.toml"
    core_toml.write_text(_matrix_text(core_files(), with_suites=True), encoding="utf-8")
    seed_toml.write_text(_matrix_text([SEED], with_suites=False), encoding="utf-8")
    per_suite, totals = [], []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for cell in args.cells:
                pyc = warm_bytecode(cell)
                h_wall, h_files = harness(core_toml, cell, Path(scratch) / f"{cell}-core")
                b_wall, b_files = bare(cell, sorted(h_files), Path(scratch) / f"{cell}.xml")
                hs_wall, _ = harness(seed_toml, cell, Path(scratch) / f"{cell}-seed")
                bs_wall, _ = bare(cell, [Path(SEED).name], Path(scratch) / f"{cell}-s.xml")
                for name in sorted(h_files):
                    per_suite.append(
                        [cell, name, f"{h_files[name]:.2f}", f"{b_files.get(name, 0):.2f}"]
                    )
                totals.append(
                    [
                        cell,
                        pyc,
                        f"{h_wall:.2f}",
                        f"{b_wall:.2f}",
                        f"{h_wall / b_wall:.2f}x",
                        f"{hs_wall:.2f}",
                        f"{bs_wall:.2f}",
                        f"{h_wall / hs_wall:.2f}x / +{(h_wall - hs_wall) / hs_wall:.2f}x",
                        f"{b_wall / bs_wall:.2f}x / +{(b_wall - bs_wall) / bs_wall:.2f}x",
                    ]
                )
    finally:
        core_toml.unlink(missing_ok=True)
        seed_toml.unlink(missing_ok=True)
    print(f"# test core per suite ({platform.node()}, {os.cpu_count()} cores, one run)")
    heads = ["cell", "file", "harness s (forked process)", "bare s (its tests, junit)"]
    print(tabulate(per_suite, headers=heads, tablefmt="github"))
    print()
    heads = [
        "cell",
        "warm .pyc",
        "core harness s",
        "core bare s",
        "harness/bare",
        "seed harness s",
        "seed bare s",
        "core/seed, added (harness)",
        "core/seed, added (bare)",
    ]
    print(tabulate(totals, headers=heads, tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
