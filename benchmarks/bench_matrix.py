"""Where the time of a matrix run goes, measured against the real floor, in one run.

    python benchmarks/bench_matrix.py [--repeat 2] [--full] [--anchor]

Prints, side by side:
  * per cell of benchmarks/matrix.toml (torch 2.2 - 2.15): the harness's warm cell
    (``python -m compat matrix --cells ID -j 1``) against the floor, a bare
    ``python -m pytest tests/core`` in the same env with warm bytecode (the same
    ``PYTHONPYCACHEPREFIX`` the harness gives the cell), and the same bare pytest without
    bytecode (what every run paid before cells kept their bytecode);
  * with ``--full``: the warm default matrix's CPython 3.11 cells at ``-j 2`` against the
    sum of their floors / 2;
  * one extra cell whose wheels are cached, built into a fresh env folder: install time,
    first (bytecode-compiling) test run, and new disk;
  * with ``--anchor``: the same two cells driven the ordinary way (nox + pip, no reuse);
  * with ``--cold-budget SIZE --scratch DIR``: the whole default matrix from an empty uv
    cache and env folder (both made under DIR, which must hold SIZE free) under
    ``--disk-budget SIZE``: wall time, the peak the report records, and the peak this
    script saw itself (``du`` of both every 2 s), which must agree.
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
import threading
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compat.harness.config.matrix import load_matrix  # noqa: E402
from compat.harness.execute.cell_runner import BYTECODE_DIR  # noqa: E402
from compat.harness.install.disk import disk_use, footprint, tree_bytes, uv_cache_dir  # noqa: E402
from compat.harness.install.uv_cli import uv_bin  # noqa: E402

MATRIX = ROOT / "benchmarks" / "matrix.toml"


def timed(cmd: list[str], ok: tuple[int, ...] = (0,), **kwargs: object) -> float:
    """Wall time of one command; ``ok`` lists the exit codes that count as a real run."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    elapsed = time.perf_counter() - started
    if proc.returncode not in ok:
        sys.exit(
            f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}"
            f"\n{proc.stderr[-3000:]}"
        )
    return elapsed


def best(repeat: int, cmd: list[str], ok: tuple[int, ...] = (0,), **kwargs: object) -> float:
    return min(timed(cmd, ok, **kwargs) for _ in range(repeat))


def nox_matrix(envs: Path, out: Path, jobs: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nox",
        "-f",
        str(ROOT / "noxfile.py"),
        "-s",
        "matrix",
        "--",
        "--matrix",
        str(MATRIX),
        "--out",
        str(out),
        "-j",
        str(jobs),
        *extra,
    ]


def bare_pytest(envs: Path, cell_id: str, stack: str, repeat: int, *, bytecode: bool) -> float:
    """The floor: the tests alone in the cell's env, nothing of the harness."""
    python = envs / cell_id / "bin" / "python"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    }
    env["COMPAT_PT2E_STACK"] = stack
    if bytecode:
        env["PYTHONPYCACHEPREFIX"] = str(envs / cell_id / BYTECODE_DIR)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.mkdtemp(prefix="compat-nobytecode-")))
    return best(
        repeat,
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/core"],
        (0, 1),
        cwd=ROOT,
        env=env,
    )  # 1: 2.2.2 xfail


def harness_cell(cell_id: str, out: Path, repeat: int, matrix: Path = MATRIX) -> float:
    """The harness's warm cell, each repeat into a run folder of its own (never reused)."""
    return min(
        timed(
            [
                sys.executable,
                "-m",
                "compat",
                "matrix",
                "--matrix",
                str(matrix),
                "--cells",
                cell_id,
                "-j",
                "1",
                "--out",
                str(out / f"run{n}"),
            ],
            cwd=ROOT,
        )
        for n in range(repeat)
    )


ANCHOR_NOXFILE = """
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
"""


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
    noxfile.write_text(
        textwrap.dedent(ANCHOR_NOXFILE.format(cells=cells, root=ROOT)), encoding="utf-8"
    )
    cmd = [sys.executable, "-m", "nox", "-f", str(noxfile), "--envdir", str(tmp / ".nox")]
    env = {**os.environ, "PIP_CACHE_DIR": str(tmp / "pip-cache")}
    first = timed(cmd, cwd=tmp, env=env)  # fills pip's cache
    second = timed(cmd, cwd=tmp, env=env)  # "cold second run": venvs recreated, wheels cached
    return first, second


def cold_budget(size: str, scratch: Path) -> list[list[str]]:
    """The default matrix from nothing under ``--disk-budget size``, its peak watched."""
    cache, envs, out = scratch / "uv-cache", scratch / "envs", scratch / "run"
    if any(p.exists() and any(p.iterdir()) for p in (cache, envs, out)):
        sys.exit(f"--scratch {scratch}: not empty; give an empty folder")
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "UV_CACHE_DIR": str(cache), "COMPAT_ENVS_DIR": str(envs)}
    seen = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(2.0):
            seen[0] = max(seen[0], footprint([cache, envs]))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "compat",
            "matrix",
            "--disk-budget",
            size,
            "-j",
            "2",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - started
    done.set()
    watcher.join()
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    budget = doc.get("disk", {}).get("budget", {})
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(doc.get("summary", {}).items()))
    gib = 2**30
    return [
        [
            f"default matrix cold, --disk-budget {size}, -j 2 ({statuses}; exit {proc.returncode})",
            f"{wall:.0f} s",
            f"peak {budget.get('peak_bytes', 0) / gib:.1f} GiB in the report, "
            f"{seen[0] / gib:.1f} GiB seen by du every 2 s; freed "
            f"{len(budget.get('freed_envs', []))} envs, {budget.get('freed_wheels', 0)} wheels; "
            f"over budget: {len(budget.get('over_budget', []))} build(s)",
        ]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--full", action="store_true", help="also the default matrix's CPython 3.11 cells at -j 2"
    )
    parser.add_argument("--anchor", action="store_true", help="also the nox + pip anchor")
    parser.add_argument(
        "--cold-budget",
        metavar="SIZE",
        default=None,
        help="also the default matrix cold under --disk-budget SIZE",
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="an empty folder for --cold-budget's uv cache and envs",
    )
    parser.add_argument(
        "--only-cold", action="store_true", help="with --cold-budget: skip the warm measurements"
    )
    args = parser.parse_args()
    if args.cold_budget:
        if args.scratch is None:
            parser.error("--cold-budget needs --scratch DIR (an empty folder)")
        rows = cold_budget(args.cold_budget, args.scratch.resolve())
        if args.only_cold:
            print(tabulate(rows, headers=["measurement", "time", "ratio"], tablefmt="github"))
            return
    else:
        rows = []
    envs = Path(os.environ.get("COMPAT_ENVS_DIR") or ROOT / ".envs").resolve()
    os.environ["COMPAT_ENVS_DIR"] = str(envs)
    with tempfile.TemporaryDirectory(prefix="compat-bench-") as tmp_name:
        tmp = Path(tmp_name)
        timed(
            [
                sys.executable,
                "-m",
                "compat",
                "matrix",
                "--matrix",
                str(MATRIX),
                "--out",
                str(tmp / "warmup"),
                "-j",
                "2",
            ],
            cwd=ROOT,
        )  # build or reuse, compile bytecode
        floors: dict[str, float] = {}
        for cell in [c for c in load_matrix(MATRIX).cells if c.applicable]:
            floor = bare_pytest(envs, cell.id, cell.stack, args.repeat, bytecode=True)
            ours = harness_cell(cell.id, tmp / cell.id, args.repeat)
            cold = bare_pytest(envs, cell.id, cell.stack, 1, bytecode=False)
            floors[cell.id] = floor
            rows.append(
                [
                    f"{cell.id}: warm cell vs floor",
                    f"{ours:.1f} s / {floor:.1f} s",
                    f"{ours / floor:.2f}x (target <= 1.05); without bytecode "
                    f"{cold:.1f} s ({floor / cold:.2f}x of it)",
                ]
            )

        if args.full:
            default = ROOT / "matrix.toml"
            cells = [c for c in load_matrix(default).cells if c.applicable and c.python == "3.11"]
            for cell in cells:
                if cell.id not in floors:
                    floors[cell.id] = bare_pytest(envs, cell.id, cell.stack, 1, bytecode=True)
            sum_floors = sum(floors[c.id] for c in cells)
            wall = timed(
                [
                    sys.executable,
                    "-m",
                    "compat",
                    "matrix",
                    "--cells",
                    "*py3.11",
                    "-j",
                    "2",
                    "--out",
                    str(tmp / "full"),
                ],
                cwd=ROOT,
            )
            rows.append(
                [
                    f"default matrix, {len(cells)} py3.11 cells, -j 2",
                    f"{wall:.1f} s",
                    f"{wall / (sum_floors / 2):.2f}x of sum(floors)/2 = "
                    f"{sum_floors / 2:.1f} s (target <= 1.10)",
                ]
            )

        # One more cell whose wheels are cached, into its own env folder: build + first run.
        extra_envs = tmp / "extra-envs"
        cache = uv_cache_dir(uv_bin())
        before = tree_bytes(cache) if cache else 0
        env = {**os.environ, "COMPAT_ENVS_DIR": str(extra_envs)}
        cell_id = "torch2.13.0-torchao0.18.0-py3.11"
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "compat",
                "matrix",
                "--matrix",
                str(MATRIX),
                "--cells",
                cell_id,
                "--out",
                str(tmp / "extra"),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=False,
        )
        wall = time.perf_counter() - started
        result = json.loads(
            (tmp / "extra" / "cells" / cell_id / "result.json").read_text(encoding="utf-8")
        )
        own = disk_use(extra_envs / cell_id).own
        grown = (tree_bytes(cache) - before) if cache else 0
        rows.append(
            [
                "cold cell, cached wheels: install + first run",
                f"{result['timings']['install']:.1f} s + {result['timings']['tests']:.1f} s",
                f"{wall:.1f} s wall; {own / 2**20:.0f} MB env own disk with bytecode "
                f"({result['install']['disk'].get('bytecode_bytes', 0) / 2**20:.0f} MB of "
                f"it), cache +{max(grown, 0) / 2**20:.0f} MB",
            ]
        )
        shutil.rmtree(extra_envs, ignore_errors=True)

        if args.anchor:
            pair = ["torch2.8.0-torch.ao-py3.11", "torch2.13.0-torchao0.18.0-py3.11"]
            ours = min(
                timed(nox_matrix(envs, tmp / f"pair{n}", 2, "--cells", *pair), cwd=ROOT)
                for n in range(args.repeat)
            )
            first, second = anchor(tmp, pair)
            rows += [
                ["2 cells: our warm rerun (-j 2)", f"{ours:.1f} s", ""],
                ["2 cells: ordinary nox + pip, first run", f"{first:.1f} s", "fills pip's cache"],
                [
                    "2 cells: ordinary nox + pip, second run",
                    f"{second:.1f} s",
                    f"{second / ours:.1f}x our warm rerun",
                ],
            ]
    print(tabulate(rows, headers=["measurement", "time", "ratio"], tablefmt="github"))


if __name__ == "__main__":
    main()
