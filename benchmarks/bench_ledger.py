"""History cost of one version's run: the findings ledger read from every run vs from its snapshot plus the tail.

    python -m benchmarks.bench_ledger              # 1,000 published runs of one version
    python -m benchmarks.bench_ledger --runs 8760  # an hourly monitored version after a year

The store is local: one version with `--runs` published runs an hour apart, each with a findings table
drawn from 40 possible findings that come and go (so findings close, reopen and persist) and the
manifest the ledger reads. "Full read" is the ledger with no snapshot: every run's manifest and findings
are read (what every run paid before snapshots). "Snapshot + tail" is the next run's ledger: the snapshot
the previous build left, plus the one run published since.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

MODEL, VERSION = "bench_credit", "1"
CANDIDATES = 40
CHURN = 0.1  # chance per run that a finding appears or goes away


def findings_per_run(runs: int, seed: int = 0):
    """Which of the candidate findings each run reports: each one flips with probability CHURN per run."""
    rng = random.Random(seed)
    present = [rng.random() < 0.5 for _ in range(CANDIDATES)]
    for _ in range(runs):
        present = [p != (rng.random() < CHURN) for p in present]
        yield [i for i, p in enumerate(present) if p]


def build_store(root: Path, runs: int) -> None:
    from assurance.domain.findings import Finding, findings_frame
    from assurance.evidence.store import EvidenceStore, new_run_id, parquet_bytes
    from assurance.policy.model import Policy
    from tests.support import make_record

    store, policy = EvidenceStore(str(root)), Policy()
    record = make_record(name=MODEL, version=VERSION, model_tags={"owner": "risk"})
    severities = ["critical", "high", "medium", "low"]
    candidates = [
        Finding(
            "drift", "drift.feature", f"feature_{i}", severities[i % 4], f"Feature {i} drifted.", 0.3, 0.1
        )
        for i in range(CANDIDATES)
    ]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for hour, chosen in enumerate(findings_per_run(runs)):
        at = start + timedelta(hours=hour)
        frame = findings_frame([candidates[i] for i in chosen], record, policy, now=at)
        files = {"findings.parquet": parquet_bytes(frame), "report.md": b"# report\n"}
        store.publish_run(MODEL, VERSION, new_run_id(at), files, {"finished_at": at.isoformat()})


def measure(runs: int) -> dict[str, float]:
    from assurance.evidence.store import EvidenceStore
    from assurance.governance import ledger_snapshot
    from assurance.governance.ledger import build_ledger
    from assurance.policy.model import Policy

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "evidence"
        started = time.perf_counter()
        build_store(root, runs + 1)
        built_s = time.perf_counter() - started
        store = EvidenceStore(str(root))
        folder = root / store.version_path(MODEL, VERSION)
        newest = sorted(p for p in folder.iterdir() if not p.name.startswith("."))[-1]
        aside = Path(tmp) / newest.name
        shutil.move(newest, aside)  # the run that will arrive after the snapshot

        now, policy = datetime.now(UTC), Policy()
        started = time.perf_counter()
        full = build_ledger(store, policy, now, MODEL, VERSION)
        full_s = time.perf_counter() - started
        (snapshot,) = (folder / ledger_snapshot.FOLDER).iterdir()
        snapshot_bytes = snapshot.stat().st_size

        shutil.move(aside, newest)
        started = time.perf_counter()
        tail = build_ledger(store, policy, now, MODEL, VERSION)
        tail_s = time.perf_counter() - started

        shutil.rmtree(folder / ledger_snapshot.FOLDER)
        same = tail.equals(build_ledger(store, policy, now, MODEL, VERSION))
        return {
            "runs": runs,
            "built_s": built_s,
            "full_s": full_s,
            "tail_s": tail_s,
            "snapshot_bytes": snapshot_bytes,
            "findings": len(full),
            "same": same,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000, help="published runs of the version")
    args = parser.parse_args()
    row = measure(args.runs)
    print(
        f"ledger of one version at {row['runs']:,} runs ({row['findings']} findings in its history; store "
        f"built in {row['built_s']:.0f} s):"
    )
    print(f"  full read {row['full_s']:.2f} s, snapshot + 1 new run {row['tail_s']:.3f} s", end="")
    print(f" ({row['full_s'] / row['tail_s']:.0f}x less); snapshot {row['snapshot_bytes']:,} bytes")
    print(f"  snapshot + tail ledger identical to a full read: {'yes' if row['same'] else 'NO'}")
    if not row["same"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
