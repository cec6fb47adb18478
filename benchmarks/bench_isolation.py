"""What one process per test file costs, against the floor, measured side by side in one run.

    python benchmarks/bench_isolation.py [--repeat 3] [--cells ID ...]

For each warm cell of ``benchmarks/isolation.toml`` (torch 2.2.2, 2.8.0, 2.15.0 by default),
interleaved so that a noisy neighbour hits every variant alike, the wall time of:

  * the harness with ``isolation = "file"`` (a process per test file, torch imported once
    and forked): ``python -m compat matrix --cells ID -j 1``;
  * the harness with ``isolation = "cell"`` (one pytest for the cell, as before);
  * the floor: bare ``python -m pytest`` of the same files in one process, in the same env,
    with its warm bytecode (the ``PYTHONPYCACHEPREFIX`` the harness gives the cell).

The suite is tests/core plus the three files of benchmarks/suite. Timings are minima over
``--repeat`` runs; compare the ratios, not the seconds. The envs must exist (a first
``python -m compat matrix --matrix benchmarks/isolation.toml`` builds them).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compat.harness.config.matrix import load_matrix  # noqa: E402
from compat.harness.execute.cell_runner import BYTECODE_DIR, CELL_INI  # noqa: E402
from compat.harness.locations import envs_root  # noqa: E402

MATRIX = ROOT / "benchmarks" / "isolation.toml"
CELLS = (
    "torch2.2.2-torch.ao-py3.11",
    "torch2.8.0-torch.ao-py3.11",
    "torch2.15.0-torchao0.18.0-py3.11",
)


def timed(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    ok: tuple[int, ...] = (0,),
    cwd: Path = ROOT,
) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode not in ok:
        sys.exit(
            f"failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    return elapsed


def harness(matrix: Path, cell: str, scratch: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=scratch))
    out.rmdir()  # a run folder is never reused: the harness makes it
    return timed(
        [
            sys.executable,
            "-m",
            "compat",
            "matrix",
            "--matrix",
            str(matrix),
            "--cells",
            cell,
            "-j",
            "1",
            "--out",
            str(out),
        ]
    )


def bare_env(cell: str) -> dict[str, str]:
    """The environment a bare pytest of ``cell`` runs in: the cell's own bytecode folder
    (warm, as the harness's), its id and stack, and nothing of the host's PYTHONPATH."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    }
    env.update(
        PYTHONPYCACHEPREFIX=str(envs_root() / cell / BYTECODE_DIR),
        COMPAT_CELL_ID=cell,
        COMPAT_PT2E_STACK="torchao" if "torchao" in cell else "torch.ao",
    )
    return env


def bare(cell: str, tests: list[str]) -> float:
    env_dir = envs_root() / cell
    env = bare_env(cell)
    python = env_dir / "bin" / "python"
    return timed(
        [
            str(python),
            "-m",
            "pytest",
            "-c",
            str(CELL_INI),
            "--rootdir",
            str(ROOT),
            "-p",
            "no:cacheprovider",
            "-q",
            *tests,
        ],
        env=env,
        ok=(0, 1),  # the known failure (the matrix's [[expect]]) fails bare pytest too
        cwd=MATRIX.parent,  # where the harness runs the cell's pytest: the paths are relative
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cells", nargs="+", default=list(CELLS))
    args = parser.parse_args()
    matrix = load_matrix(MATRIX)
    missing = [c for c in args.cells if not (envs_root() / c / "bin" / "python").exists()]
    if missing:
        sys.exit(
            f"no env for {', '.join(missing)}: run python -m compat matrix --matrix {MATRIX} first"
        )
    cell_matrix = MATRIX.with_name(".isolation-cell.toml")  # beside it: test paths resolve alike
    cell_matrix.write_text(
        MATRIX.read_text(encoding="utf-8").replace('isolation = "file"', 'isolation = "cell"'),
        encoding="utf-8",
    )
    rows = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for cell in args.cells:
                runs: dict[str, list[float]] = {"file": [], "cell": [], "bare": []}
                for _ in range(args.repeat):  # interleaved: noise falls on every variant
                    runs["file"].append(harness(MATRIX, cell, Path(scratch)))
                    runs["cell"].append(harness(cell_matrix, cell, Path(scratch)))
                    runs["bare"].append(bare(cell, list(matrix.tests)))
                best = {k: min(v) for k, v in runs.items()}
                rows.append(
                    [
                        cell,
                        f"{best['bare']:.2f}",
                        f"{best['file']:.2f}",
                        f"{best['file'] / best['bare']:.2f}x",
                        f"{best['cell']:.2f}",
                        f"{best['cell'] / best['bare']:.2f}x",
                    ]
                )
    finally:
        cell_matrix.unlink(missing_ok=True)
    print(
        f"# one process per test file vs the bare-pytest floor ({platform.node()}, "
        f"{os.cpu_count()} cores, min of {args.repeat}, files: {', '.join(matrix.tests)})"
    )
    print(
        tabulate(
            rows,
            headers=[
                "cell",
                "bare pytest s",
                "file isolation s",
                "ratio",
                "cell isolation s",
                "ratio",
            ],
            tablefmt="github",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
