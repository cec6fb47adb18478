"""Where the time of a matrix run goes, from one run on this machine.

    python benchmarks/bench_matrix.py [--skip-anchor] [--repeat 2]

Prints, for the four warm cells of benchmarks/matrix.toml:
  * warm ``nox -s matrix -j 1`` against the sum of bare ``python -m pytest tests/core``
    in the same envs (the overhead of the harness over the tests themselves);
  * ``-j 2`` against ``-j 1`` (parallel speed-up on this machine's cores);
  * the cost of one extra cell whose wheels are already in the uv cache (seconds, MB);
  * the same matrix driven the ordinary way (a noxfile with nox's default virtualenv +
    pip backend, no reuse), second run, against our warm rerun.
Timings are wall-clock minima over ``--repeat`` runs; compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compat.harness.config.matrix import load_matrix  # noqa: E402
from compat.harness.install.disk import disk_use, tree_bytes, uv_cache_dir  # noqa: E402
from compat.harness.install.uv_cli import uv_bin  # noqa: E402

MATRIX = ROOT / "benchmarks" / "matrix.toml"
EXTRA = """
[[include]]
torch = "2.8.0"
stack = "torchao"
torchao = "0.13.0"
"""


def timed(cmd: list[str], ok: tuple[int, ...] = (0,), **kwargs: object) -> float:
    """Wall time of one command; ``ok`` lists the exit codes that count as a real run."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    elapsed = time.perf_counter() - started
    if proc.returncode not in ok:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}"
                 f"\n{proc.stderr[-3000:]}")
    return elapsed


def best(repeat: int, cmd: list[str], ok: tuple[int, ...] = (0,), **kwargs: object) -> float:
    return min(timed(cmd, ok, **kwargs) for _ in range(repeat))


def nox_matrix(envs: Path, out: Path, jobs: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-s", "matrix", "--",
            "--matrix", str(MATRIX), "--out", str(out), "-j", str(jobs), *extra]


def bare_pytest(envs: Path, repeat: int) -> float:
    """The tests alone: one pytest per env, sequentially, nothing else."""
    total = 0.0
    for cell in load_matrix(MATRIX).cells:
        if not cell.applicable:
            continue
        python = envs / cell.id / "bin" / "python"
        env = {**os.environ, "COMPAT_PT2E_STACK": cell.stack}
        env.pop("PYTHONPATH", None)
        # exit 1: the expected failure of test_metadata_porting_for_dq (no matrix here)
        total += best(repeat, [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "tests/core"], (0, 1), cwd=ROOT, env=env)
    return total


ANCHOR_NOXFILE = '''
import shutil

import nox

CELLS = {cells!r}

@nox.session(venv_backend="virtualenv")
@nox.parametrize("cell", list(CELLS), ids=list(CELLS))
def core(session, cell):
    spec = CELLS[cell]
    session.install(*spec["pins"], "pytest", "numpy")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "{root}/tests/core",
                env={{"COMPAT_PT2E_STACK": spec["stack"], "PYTHONPATH": "{root}"}},
                success_codes=[0, 1])
    # pip copies every file: ~6 GB per CUDA env. Drop it now so disk stays bounded.
    shutil.rmtree(session.virtualenv.location, ignore_errors=True)
'''


def anchor(tmp: Path, cell_ids: list[str]) -> tuple[float, float]:
    """The ordinary way, on ``cell_ids`` (pip's cache lives in ``tmp`` and goes with it)."""
    cells = {}
    for cell in load_matrix(MATRIX).cells:
        if cell.id not in cell_ids:
            continue
        if cell.applicable:
            pins = [f"torch=={cell.torch}"] + ([f"torchao=={cell.torchao}"] if cell.torchao else [])
            cells[cell.id] = {"pins": pins, "stack": cell.stack}
    noxfile = tmp / "noxfile.py"
    noxfile.write_text(textwrap.dedent(ANCHOR_NOXFILE.format(cells=cells, root=ROOT)),
                       encoding="utf-8")
    cmd = [sys.executable, "-m", "nox", "-f", str(noxfile), "--envdir", str(tmp / ".nox")]
    env = {**os.environ, "PIP_CACHE_DIR": str(tmp / "pip-cache")}
    first = timed(cmd, cwd=tmp, env=env)  # fills pip's cache
    second = timed(cmd, cwd=tmp, env=env)  # "cold second run": venvs recreated, wheels cached
    return first, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-anchor", action="store_true", help="skip the nox + pip anchor")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    envs = Path(os.environ.get("COMPAT_ENVS_DIR") or ROOT / ".envs").resolve()
    os.environ["COMPAT_ENVS_DIR"] = str(envs)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="compat-bench-") as tmp_name:
        tmp = Path(tmp_name)
        timed(nox_matrix(envs, tmp / "warmup", 2), cwd=ROOT)  # build or reuse every env
        j1 = best(args.repeat, nox_matrix(envs, tmp / "j1", 1), cwd=ROOT)
        j2 = best(args.repeat, nox_matrix(envs, tmp / "j2", 2), cwd=ROOT)
        bare = bare_pytest(envs, args.repeat)
        rows += [
            ["bare pytest tests/core, 4 envs in a row", f"{bare:.1f} s", ""],
            ["warm nox -s matrix -j 1", f"{j1:.1f} s",
             f"{j1 / bare:.2f}x bare (target <= 1.10)"],
            ["warm nox -s matrix -j 2", f"{j2:.1f} s",
             f"{j1 / j2:.2f}x faster than -j 1 (target >= 1.6)"],
        ]

        # One more cell whose wheels are cached, into its own env folder.
        extra_matrix = tmp / "extra.toml"
        extra_matrix.write_text(MATRIX.read_text(encoding="utf-8").replace(
            '"../tests/core"', f'"{ROOT / "tests" / "core"}"') + EXTRA, encoding="utf-8")
        extra_envs = tmp / "extra-envs"
        cache = uv_cache_dir(uv_bin())
        before = tree_bytes(cache) if cache else 0
        env = {**os.environ, "COMPAT_ENVS_DIR": str(extra_envs)}
        subprocess.run([sys.executable, "-m", "compat", "matrix", "--matrix", str(extra_matrix),
                        "--cells", "torch2.8.0-torchao0.13.0-py3.11", "--out",
                        str(tmp / "extra")], cwd=ROOT, env=env, capture_output=True, check=False)
        result = json.loads((tmp / "extra" / "cells" / "torch2.8.0-torchao0.13.0-py3.11" /
                             "result.json").read_text(encoding="utf-8"))
        own = disk_use(extra_envs / "torch2.8.0-torchao0.13.0-py3.11").own
        grown = (tree_bytes(cache) - before) if cache else 0
        seconds = result["install"]["seconds"]
        rows.append(["extra cell with cached wheels: install", f"{seconds:.1f} s",
                     f"{(own + max(grown, 0)) / 2**20:.1f} MB new disk (env own "
                     f"{own / 2**20:.1f} MB + cache {grown / 2**20:.1f} MB; target < 10 s, "
                     "< 50 MB)"])

        if not args.skip_anchor:
            # Two cells (one CUDA wheel from PyPI, one CPU wheel from pip's wheelhouse) keep
            # pip's copies within a few GB of disk; ours is timed on the same two cells.
            pair = ["torch2.8.0-torch.ao-py3.11", "torch2.13.0-torchao0.18.0-py3.11"]
            ours = best(args.repeat, nox_matrix(envs, tmp / "pair", 2, "--cells", *pair),
                        cwd=ROOT)
            first, second = anchor(tmp, pair)
            rows += [
                ["2 cells: our warm rerun (-j 2)", f"{ours:.1f} s", ""],
                ["2 cells: ordinary nox + pip, first run", f"{first:.1f} s", "fills pip's cache"],
                ["2 cells: ordinary nox + pip, second run", f"{second:.1f} s",
                 f"{second / ours:.1f}x our warm rerun (target >= 5)"],
            ]
        shutil.rmtree(extra_envs, ignore_errors=True)
    print(tabulate(rows, headers=["measurement", "time", "ratio"], tablefmt="github"))


if __name__ == "__main__":
    main()
