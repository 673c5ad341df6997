"""CPU seconds per assured version, for capacity planning: how many versions per hour one worker core takes.

    python -m benchmarks.bench_capacity                          # 1,000 / 10,000 / 100,000 current rows
    python -m benchmarks.bench_capacity --rows 1000 --repeats 1

Each size is one version of a demo-like credit model (the demo's generator and classifier; reference rows
are 0.8 x current rows) in an embedded sqlite registry, with local data and evidence. Each measurement is
one `assurance run` in a fresh process, as a Dagster run worker is one fresh process per version: the
same job, in process, from imports to published evidence. CPU is the child's user + system seconds
(getrusage), which depends little on what else the machine runs, so 3,600 / CPU seconds is the versions
per hour a dedicated core sustains; wall seconds and peak memory are shown beside it. What a run worker
adds on top (`dagster api execute_run` start-up, events written to PostgreSQL) is measured by
tests/integration/test_production_shape.py (deploy/README.md, "Capacity").
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (1_000, 10_000, 100_000)
REPEATS = 2
MODEL = "capacity_credit"


def register(root: Path, rows: int) -> str:
    """An embedded registry holding one onboarded version with `rows` current rows; its tracking URI."""
    from assurance.demo.generator import FEATURES, LABEL, classifier, generate
    from assurance.demo.registry_builder import embedded_tracking_uri, register_version

    uri = embedded_tracking_uri(root)
    train = generate(15_000, 1)
    model = classifier(seed=1).fit(train[FEATURES], train[LABEL])
    register_version(
        MODEL, model, generate(max(rows * 4 // 5, 200), 2), generate(rows, 3), label=LABEL, features=FEATURES,
        data_dir=root / "data", tracking_uri=uri,
        model_tags={"owner": "capacity", "use_case": "internal credit scoring benchmark"},
    )  # fmt: skip
    return uri


def assure_once(uri: str, evidence: Path, model: str = MODEL) -> dict[str, float]:
    """One `assurance run` in its own process: CPU seconds, wall seconds, peak resident memory."""
    from tests.integration.servers import base_env

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "assurance.cli", "run", "--model", model, "--version", "1",
         "--tracking-uri", uri, "--evidence", str(evidence), "--quiet"],
        env=base_env(OMP_NUM_THREADS="1"), capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 1 is a hold recommendation, still a complete run
        raise SystemExit(f"assurance run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu, "wall_s": wall, "peak_mb": after.ru_maxrss / 1024}


def measure(rows: int, repeats: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    try:
        uri = register(root, rows)
        runs = [assure_once(uri, root / "evidence") for _ in range(repeats)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    cpu = statistics.median(r["cpu_s"] for r in runs)
    return {
        "rows": rows,
        "cpu_s": cpu,
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "peak_mb": max(r["peak_mb"] for r in runs),
        "per_core_hour": 3600 / cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=list(SIZES), help="current rows per version")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs per size (median)")
    args = parser.parse_args()
    from assurance.registry.client import mlflow_process_defaults

    mlflow_process_defaults()
    print(f"{'current rows':>12} {'CPU s':>7} {'wall s':>7} {'peak MB':>8} {'versions/hour/core':>19}")
    for rows in args.rows:
        row = measure(rows, args.repeats)
        print(
            f"{row['rows']:>12,} {row['cpu_s']:>7.1f} {row['wall_s']:>7.1f} {row['peak_mb']:>8.0f} "
            f"{row['per_core_hour']:>19.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
