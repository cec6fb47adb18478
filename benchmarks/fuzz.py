"""The fuzz properties of tests/harness/test_fuzz.py at scale, with figures.

    python benchmarks/fuzz.py [--matrices 10000] [--runs 2000] [--bisect-states 2000]
                              [--seed N] [--keep DIR]

Generates matrix files (random TOML and bytes, valid-ish tables with any value swapped,
deep nesting, non-UTF-8, huge strings, credentials in URLs) and run folders (run.json,
results.json, cells/*/result.json and junit.xml: random, truncated, nested, hostile ids,
links out, FIFOs, baselines, a twin run holding the same cells) and drives ``list``/``plan``,
``report`` (``--merge``, both orders with the twin, ``--baseline``) and ``matrix --resume``
through ``cli.main`` for each, and reads bisections' saved states back (see
tests/harness/fuzzing.py for what must hold). Prints the number of cases, the exit codes
seen, the slowest case and every kind of failure; failing inputs (and the slowest) are
pickled into ``--keep`` to replay. Exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import collections
import pickle
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.harness.fuzzing import (  # noqa: E402
    bisect_states,
    check_bisect_state,
    check_matrix_file,
    check_run_folder,
    matrix_files,
    run_folders,
)

HANG = 10.0  # seconds: a case slower than this counts as a failure (a hang)


def drive(
    name: str,
    strategy: st.SearchStrategy[Any],
    check: Any,
    count: int,
    random_seed: int,
    keep: Path,
) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "cases": 0,
        "max_seconds": 0.0,
        "total_seconds": 0.0,
        "codes": collections.Counter(),
        "failures": collections.Counter(),
    }
    kept = 0

    @seed(random_seed)
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(value: Any) -> None:
        nonlocal kept
        started = time.monotonic()
        failure = None
        try:
            case = check(value)
            figures["codes"].update(case.codes)
        except Exception as exc:  # noqa: BLE001 - every failure is counted, the run goes on
            failure = f"{type(exc).__name__}: {str(exc)[:160]}"
        seconds = time.monotonic() - started
        if seconds > HANG and failure is None:
            failure = f"over {HANG:.0f} s"
        figures["cases"] += 1
        figures["total_seconds"] += seconds
        if seconds > figures["max_seconds"]:  # the slowest input, to look at
            figures["max_seconds"] = seconds
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"{name}-slowest.pickle").write_bytes(pickle.dumps(value))
        if failure is not None:
            figures["failures"][failure] += 1
            if kept < 50:
                keep.mkdir(parents=True, exist_ok=True)
                kept += 1
                (keep / f"{name}-{kept}.pickle").write_bytes(pickle.dumps(value))
        if figures["cases"] % 500 == 0:
            print(
                f"  {name}: {figures['cases']}/{count} cases, "
                f"{sum(figures['failures'].values())} failure(s)",
                flush=True,
            )

    run()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrices", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=2_000)
    parser.add_argument("--bisect-states", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--keep", default="fuzz-failures", help="folder for failing inputs")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # hypothesis's notes on large examples
    keep = Path(args.keep)
    started = time.monotonic()
    results = {
        "matrix files": drive(
            "matrix", matrix_files(), check_matrix_file, args.matrices, args.seed, keep
        ),
        "run folders": drive("run", run_folders(), check_run_folder, args.runs, args.seed, keep),
        "bisect states": drive(
            "bisect", bisect_states(), check_bisect_state, args.bisect_states, args.seed, keep
        ),
    }
    print(f"\nfuzz: {time.monotonic() - started:.0f} s, seed {args.seed}")
    failed = 0
    for name, figures in results.items():
        cases = figures["cases"]
        failures = sum(figures["failures"].values())
        failed += failures
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(figures["codes"].items()))
        print(
            f"{name}: {cases} cases, {failures} failure(s), max {figures['max_seconds']:.2f} s "
            f"per case, mean {figures['total_seconds'] / max(cases, 1) * 1000:.0f} ms; "
            f"exit codes {codes}"
        )
        for failure, n in figures["failures"].most_common():
            print(f"  {n} x {failure}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
