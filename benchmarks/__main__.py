"""Every benchmark in one command, each in its own process so figures do not bleed into each other.

python -m benchmarks            # full sizes (several minutes on 2 cores)
python -m benchmarks --quick    # small sizes: checks the harness runs and shows the shape of the figures
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

FULL = [
    ["benchmarks.bench_drift_performance"],
    ["benchmarks.bench_analyses"],
    ["benchmarks.bench_sensor"],
    ["benchmarks.bench_ledger"],
    ["benchmarks.bench_capacity"],
    ["benchmarks.bench_fleet"],
    ["benchmarks.calibration"],
]
QUICK = [
    ["benchmarks.bench_drift_performance", "--rows", "50000"],
    ["benchmarks.bench_analyses", "--rows", "20000"],
    ["benchmarks.bench_sensor"],
    ["benchmarks.bench_ledger", "--runs", "200"],
    ["benchmarks.calibration", "--quick", "--sources", "breast_cancer,synthetic", "--trials", "4"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    failed = []
    for command in QUICK if args.quick else FULL:
        print(f"\n=== python -m {' '.join(command)}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", *command])
        print(f"=== {command[0]}: exit {code}, {time.perf_counter() - started:.0f} s", flush=True)
        if code:
            failed.append(command[0])
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
