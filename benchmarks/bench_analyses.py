"""Benchmark: slices, fairness, leakage, explanations and robustness on one large model version.

    python -m benchmarks.bench_analyses                # 1,000,000 reference and 1,000,000 current rows
    python -m benchmarks.bench_analyses --rows 20000   # a quick smoke run

Draws the demo's credit domain (`assurance.demo.generate`) at the requested size, scrambles the
labels of one region of current data (a planted slice problem), trains a one-hot + histogram
gradient boosting Pipeline on a 50,000-row sample, scores both datasets, then times each analysis's
`run()` with the default policy in this process. SHAP has to stay within the policy's time budget
whatever the size: the explanations line reports rows explained and seconds against that budget.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable

from assurance.checks import explanations, fairness, leakage, robustness, slices
from assurance.demo import generator as demo
from assurance.domain.values import Dataset, Inputs, Section, VersionRecord
from assurance.policy.model import Policy
from assurance.scoring.models import from_estimator
from assurance.scoring.predict import predict

PLANTED_REGION = "south"
TAGS = {
    "assurance.label": demo.LABEL,
    "assurance.slices": "region,channel,employment_type",
    "assurance.protected": "gender,age_band",
}


def timed(label: str, work: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    print(f"  {label:<28} {seconds:8.2f} s", flush=True)
    return result, seconds


def pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), demo.CATEGORICAL)],
        remainder="passthrough",
    )
    return Pipeline(
        [("encode", encode), ("model", HistGradientBoostingClassifier(max_iter=150, random_state=0))]
    )


def version(rows: int, reference_rows: int, train_rows: int) -> Inputs:
    """A scored, labelled version at the requested size, with one region's current labels scrambled."""
    print(f"Building a version: {reference_rows:,} reference rows, {rows:,} current rows", flush=True)
    train, _ = timed("generate train", lambda: demo.generate(train_rows, 1))
    reference, _ = timed("generate reference", lambda: demo.generate(reference_rows, 2))
    current, _ = timed("generate current", lambda: demo.generate(rows, 3))
    current = demo.scramble_labels(current, demo.LABEL, current["region"] == PLANTED_REGION, seed=4)
    estimator, _ = timed("train", lambda: pipeline().fit(train[demo.FEATURES], train[demo.LABEL]))
    model = from_estimator(estimator, demo.FEATURES)
    ref = Dataset("reference", "memory://reference", frame=reference, label=demo.LABEL)
    cur = Dataset("current", "memory://current", frame=current, label=demo.LABEL)
    predictions, _ = timed("score both datasets", lambda: predict(model, ref, cur))
    record = VersionRecord(
        name="credit_benchmark",
        version="1",
        tags=dict(TAGS),
        model_tags={},
        version_tags=dict(TAGS),
        aliases=[],
        status="READY",
        source="memory",
        run_id=None,
        model_id=None,
        created_ms=None,
        updated_ms=None,
    )
    return Inputs(record, Policy(), ref, cur, predictions, model, store=None)


def describe(section: Section, policy: Policy) -> str:
    """A short line of what each analysis found or how it spent its budget."""
    found = ", ".join(sorted({f"{f.check}:{f.subject}" for f in section.findings})) or "no findings"
    if section.key != "explanations" or "seconds_reference" not in section.metrics:
        return found
    m = section.metrics
    spent = m["seconds_reference"] + m.get("seconds_current", 0.0)
    budget = policy.thresholds.explanations.time_budget_seconds
    rows = int(m["rows_explained_reference"] + m.get("rows_explained_current", 0))
    verdict = "within" if spent <= budget else "OVER"
    return f"{found}; SHAP {rows:,} rows in {spent:.1f} s ({verdict} the {budget:.0f} s budget; setup {m['seconds_setup']:.1f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="current rows (default 1,000,000)")
    parser.add_argument("--reference-rows", type=int, default=None, help="reference rows (default: --rows)")
    parser.add_argument("--train-rows", type=int, default=50_000, help="training rows (default 50,000)")
    args = parser.parse_args()
    inputs = version(args.rows, args.reference_rows or args.rows, min(args.train_rows, args.rows))
    print("Analyses (wall time, default policy):", flush=True)
    results = []
    for module in (slices, fairness, leakage, explanations, robustness):
        section, seconds = timed(module.__name__.rsplit(".", 1)[-1], lambda m=module: m.run(inputs))
        results.append((section, seconds))
    print("\nSummary")
    for section, seconds in results:
        print(f"  {section.key:<13} {seconds:7.2f} s  {describe(section, inputs.policy)}")
        for reason in section.skipped:
            print(f"  {'':<13} skipped: {reason}")
    total = sum(seconds for _, seconds in results)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {'total':<13} {total:7.2f} s  peak memory {peak:,.0f} MB")


if __name__ == "__main__":
    main()
