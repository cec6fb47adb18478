"""What the verdict cache saves, measured side by side in one run on warm envs.

    COMPAT_ENVS_DIR=.envs python benchmarks/bench_cache.py --matrix matrix.toml \\
        [--envs DIR] [--cells ID ...] [--tests PATH ...] [-j 2]

Four runs of the same cells, in one scratch folder (nothing in the checkout or the envs
changes; the store is the scratch folder's own):

  1. uncached: ``--no-cache``, every file runs (after an unmeasured warm-up run that
     compiles the scratch envs' bytecode);
  2. unchanged rerun: every file cached; checked: every verdict identical to run 1's and
     marked cached;
  3. after editing one test file (``--edit``): only that file reruns in each cell;
     compared with that file's bare-pytest floor (``python -m pytest FILE`` in each cell's
     env): the sum over the cells divided by ``-j``, or the longest cell if that is more
     (no schedule beats it);
  4. after changing one cell's env (its lock names another build of a wheel): only that
     cell reruns.

The scratch folder holds a copy of the matrix and its test paths, and for each cell an env
of links to the real one (its own lock, stamp and bytecode folder), so a changed lock is
the scratch env's only. The envs must exist and be warm (a run of the matrix built them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compat.harness.config.matrix import load_matrix  # noqa: E402
from compat.harness.config.suites import split_selector, test_files  # noqa: E402
from compat.harness.execute.cell_runner import BYTECODE_DIR  # noqa: E402
from compat.harness.install.env_folder import STAMP  # noqa: E402
from compat.harness.install.lockfile import LOCK  # noqa: E402
from compat.harness.locations import PIP_CONFIG, RESOLVED  # noqa: E402

COPIED = (LOCK, STAMP, "pyvenv.cfg", "requirements.in", "requirements.lock.txt")


def shadow_env(real: Path, shadow: Path) -> None:
    """An env that is the real one by links, but with its own lock, stamp, bytecode and
    copy of ``compat`` (the harness syncs that copy into the env on every run)."""
    shadow.mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name in COPIED:
            shutil.copy2(entry, shadow / entry.name)
        elif entry.name not in ("lib", "lib64", BYTECODE_DIR, ".lock"):
            (shadow / entry.name).symlink_to(entry)
    (shadow / BYTECODE_DIR).mkdir()
    for site in real.glob("lib/python*/site-packages"):
        mine = shadow / site.relative_to(real)
        mine.mkdir(parents=True)
        for entry in site.iterdir():
            if entry.name != "compat":
                (mine / entry.name).symlink_to(entry)
    (shadow / "lib64").symlink_to("lib")


def change_env(env: Path) -> None:
    """Another build of the same version: the digest of the lock's first wheel differs."""
    lock = env / LOCK
    text = lock.read_text(encoding="utf-8")
    at = text.index('sha256 = "', text.index("wheels = [")) + len('sha256 = "')
    lock.write_text(text[:at] + "0" * 8 + text[at + 8 :], encoding="utf-8")


def run_matrix(
    work: Path, matrix: Path, cells: list[str], jobs: int, out: str, *extra: str
) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "compat", "matrix", "--matrix", str(matrix), "--cells", *cells,
         "-j", str(jobs), "--out", str(work / out), *extra],
        capture_output=True, text=True, check=False, cwd=work, env=_env(work),
    )  # fmt: skip
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"{out}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return wall, json.loads((work / out / "results.json").read_text(encoding="utf-8"))


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        COMPAT_ENVS_DIR=str(work / "envs"),
        COMPAT_VERDICTS_DIR=str(work / "verdicts"),
        PYTHONPATH=str(ROOT),
    )
    return env


def verdicts(results: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (cell["cell_id"], t["nodeid"]): t["outcome"]
        for cell in results["cells"]
        for t in cell.get("tests", [])
    }


def cached(results: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per cell: (cached tests, tests)."""
    return {
        c["cell_id"]: (sum(bool(t.get("cached")) for t in c["tests"]), len(c["tests"]))
        for c in results["cells"]
        if c.get("tests")
    }


def bare(work: Path, cell: str, stack: str, file: str) -> float:
    """The floor: bare pytest of one file in the cell's env, with its warm bytecode."""
    env_dir = work / "envs" / cell
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",)}
    env.update(
        PYTHONPYCACHEPREFIX=str(env_dir / BYTECODE_DIR),
        COMPAT_CELL_ID=cell,
        COMPAT_PT2E_STACK=stack,
        PYTHONNOUSERSITE="1",
    )
    started = time.perf_counter()
    subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-q", file],
        capture_output=True, check=False, cwd=work, env=env,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", default=str(ROOT / "matrix.toml"))
    parser.add_argument("--envs", default=os.environ.get("COMPAT_ENVS_DIR", ".envs"))
    parser.add_argument("--cells", nargs="+", default=None, help="default: every warm one")
    parser.add_argument("--tests", nargs="+", default=None, help="instead of the matrix's")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--edit", default=None, help="the test file to edit (default: first)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    source = Path(args.matrix).resolve()
    envs = Path(args.envs).resolve()
    matrix = load_matrix(source)
    applicable = [c for c in matrix.cells if c.applicable]
    cells = [c for c in applicable if (envs / c.id / "bin" / "python").exists()]
    if args.cells:
        cells = [c for c in cells if c.id in args.cells]
    if not cells:
        sys.exit(f"no warm env in {envs} for the cells asked")
    work = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        tests = args.tests or [split_selector(t)[0] for t in matrix.tests]
        copied = []
        for test in tests:
            path = (source.parent / test).resolve()
            target = work / "tests" / path.name
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
            copied.append(f"tests/{path.name}")
        text = source.read_text(encoding="utf-8")
        body = "\n".join(ln for ln in text.splitlines() if not ln.startswith(("tests", "name")))
        body = body.replace(
            "[matrix]", f'[matrix]\nname = "bench-cache"\ntests = {json.dumps(copied)}', 1
        )
        (work / "matrix.toml").write_text(body, encoding="utf-8")
        for state in (PIP_CONFIG, RESOLVED):
            if (envs / state).is_file():
                (work / "envs").mkdir(exist_ok=True)
                shutil.copy2(envs / state, work / "envs" / state)
        for cell in cells:
            shadow_env(envs / cell.id, work / "envs" / cell.id)
        ids = [c.id for c in cells]
        scratch = work / "matrix.toml"
        print(f"# {len(ids)} warm cells, -j {args.jobs}, tests {copied}", flush=True)

        run_matrix(work, scratch, ids, args.jobs, "warmup", "--no-cache")
        cold_wall, cold = run_matrix(work, scratch, ids, args.jobs, "uncached", "--no-cache")
        warm_wall, warm = run_matrix(work, scratch, ids, args.jobs, "unchanged")
        same = verdicts(cold) == verdicts(warm)
        marked = cached(warm)
        all_marked = all(n == total for n, total in marked.values())

        files = test_files(copied, base=work, rootdir=work)
        chosen = [f for f in files if args.edit is None or f.nodeid.endswith(args.edit)]
        if not chosen:
            sys.exit(f"--edit {args.edit}: no such test file in {copied}")
        edited_id = chosen[0].nodeid
        edited = work / edited_id
        edited.write_text(edited.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        edit_wall, after_edit = run_matrix(work, scratch, ids, args.jobs, "edited")
        floors = [bare(work, c.id, c.stack, edited_id) for c in cells]
        # no schedule beats the longest cell: the floor is that or the sum over -j
        floor = max(sum(floors) / args.jobs, max(floors))
        reran_edit = {
            cell["cell_id"]: sorted(
                f for f, rec in cell.get("cache", {}).get("files", {}).items() if not rec["cached"]
            )
            for cell in after_edit["cells"]
            if cell.get("tests")
        }

        changed = cells[0].id
        change_env(work / "envs" / changed)
        env_wall, after_env = run_matrix(work, scratch, ids, args.jobs, "env-changed")
        reran_cells = sorted(c for c, (n, total) in cached(after_env).items() if n < total)

        print(f"uncached run:        {cold_wall:7.2f} s")
        print(f"unchanged rerun:     {warm_wall:7.2f} s  ({cold_wall / warm_wall:.1f}x faster); "
              f"verdicts identical: {same}; all marked cached: {all_marked}")  # fmt: skip
        print(f"one file edited:     {edit_wall:7.2f} s  vs floor {floor:.2f} s "
              f"(bare pytest of {edited_id}: max(sum over cells / -j {args.jobs}, "
              f"longest cell {max(floors):.2f} s)): "
              f"{edit_wall / floor:.2f}x; reran: "
              f"{sorted({f for fs in reran_edit.values() for f in fs})} in "
              f"{sum(bool(fs) for fs in reran_edit.values())}/{len(reran_edit)} cells")  # fmt: skip
        print(f"one cell's env:      {env_wall:7.2f} s  (changed {changed}; reran cells: "
              f"{reran_cells})")  # fmt: skip
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        ok = same and all_marked and reran_cells == [changed]
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"scratch kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
