"""The benchmark harness stays runnable in one command (small sizes here; figures come from full runs)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmarks_run_and_print_their_figures():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "Speed-up, naive / ours cold:" in out and "Drift verdicts agree on 30 of 30 columns" in out
    assert "explanations" in out and "within the 60 s budget" in out
    assert "5,000" in out and "tick, unchanged s" in out
    assert "before, any tick" in out and "after, 50 changed" in out
    assert "ledger of one version at 200 runs" in out and "identical to a full read: yes" in out
    assert (
        "| healthy drift |" in out and "| slice gap 0.3 |" in out and "healthy: recommendation approve" in out
    )
    for row in (
        "healthy challenger.worse",
        "healthy performance.overfitting",
        "healthy leakage.train_holdout_overlap",
        "healthy fairness, two attributes",
        "challenger missing 2 informative features",
        "holdout accuracy 0.2 below training",
        "holdout 30% copied from training",
        "intersection-only disparity",
    ):
        assert f"| {row} |" in out
    assert "| synthetic | missing 2 informative features |" in out and "Healthy trials with a finding" in out
