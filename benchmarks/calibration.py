"""Calibration benchmark: how often each check cries wolf on healthy data, and how often it finds a real problem.

    python -m benchmarks.calibration            # 200 trials per size (about half an hour on 2 cores)
    python -m benchmarks.calibration --quick    # a smoke run: few trials, small sizes

Healthy (A/A) trials draw a reference and a current window of the same size from one population: random
splits of the data sets that ship with scikit-learn (breast_cancer, wine, diabetes, digits, iris; only at
sizes up to half their rows, since windows never share a row) and fresh draws of a synthetic frame with
categorical, skewed, heavy-tailed, integer-valued, mostly-constant and mostly-missing columns. Every
analysis runs on the pair as the product runs it (`run(inputs)` with the default policy, a real model
scoring both windows), and the table counts trials with any finding at medium or above, per check, and
trials whose recommendation is approve. The analyses that rerun the model (leakage, explanations,
robustness) cost most and run on every fourth trial, as do the recommendation counts, which need all. A random `site` column with no bearing on anything is the slice
and protected attribute, so slices and fairness are judged on healthy data too.

Planted trials change one thing by a known amount and count how often the check meant to see it does:
a mean shift of 0.25, 0.5 and 1 sd in one numeric feature, a category share moving by 0.1 and 0.3,
missing values up by 5 and 20 points, a slice whose accuracy is 0.1, 0.2 or 0.3 below the model's at
support 30, 100 and 1,000, and a feature that copies the label.

Drift's effect sizes are computed by numpy here (the product uses Evidently's ValueDrift below 100,000
rows): the formulas are the same, tests pin them to Evidently's values, and numpy is 10x faster.
"""

from __future__ import annotations

import argparse
import os

# Trials run in parallel processes: one thread each, or OpenMP oversubscription makes the models'
# predictions a hundred times slower on two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict
from collections.abc import Callable, Iterator  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (50, 100, 300, 1_000, 10_000, 100_000)
QUICK_SIZES = (50, 300, 1_000)
JUDGED = ("critical", "high", "medium")
# analyses that run the model again (SHAP, perturbations) cost most: they run on every MODEL_EVERY-th
# healthy trial, and the table's brackets say how many trials each row had
MODEL_HEAVY = ("leakage", "explanations", "robustness")
MODEL_EVERY = 4
HEALTHY_ANALYSES = (
    "data_quality",
    "drift",
    "performance",
    "slices",
    "fairness",
    "leakage",
    "explanations",
    "robustness",
)
SITE = "site"


@dataclass
class Source:
    """A population to draw windows from: a fixed frame (real data) or a generator (synthetic)."""

    name: str
    label: str
    features: list[str]
    task: str
    frame: pd.DataFrame | None = None
    draw: Callable[[int, int], pd.DataFrame] | None = None
    model: Any = None
    numeric: str = ""  # the feature planted shifts move
    categorical: str = ""  # the feature planted share moves change

    def max_window(self) -> int:
        return len(self.frame) // 2 if self.frame is not None else SIZES[-1]

    def windows(self, rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        rng = np.random.default_rng(seed)
        if self.frame is not None:
            picked = self.frame.iloc[rng.permutation(len(self.frame))[: 2 * rows]].reset_index(drop=True)
        else:
            picked = self.draw(2 * rows, seed)
        picked[SITE] = rng.choice(["a", "b", "c", "d"], len(picked))
        return picked.iloc[:rows].reset_index(drop=True), picked.iloc[rows:].reset_index(drop=True)


def synthetic(rows: int, seed: int) -> pd.DataFrame:
    """Columns of every awkward kind; the label follows a logistic model of three of them, sharply
    enough that the model is right about nine times in ten (as the models users bring us are)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "balance": rng.normal(0.0, 1.0, rows),
            "income": rng.lognormal(10.5, 0.6, rows),
            "returns": rng.standard_t(2.0, rows),
            "visits": rng.poisson(3.0, rows),
            "rare_flag_amount": np.where(rng.random(rows) < 0.01, rng.exponential(50.0, rows), 0.0),
            "bonus": np.where(rng.random(rows) < 0.9, np.nan, rng.gamma(2.0, 100.0, rows)),
            "channel": rng.choice(["web", "branch", "phone"], rows, p=[0.5, 0.3, 0.2]),
            "segment": rng.choice([f"s{i:02d}" for i in range(12)], rows, p=np.r_[0.45, np.full(11, 0.05)]),
        }
    )
    z = (
        3.5 * frame["balance"]
        + 2.5 * (np.log(frame["income"]) - 10.5) / 0.6
        + 2.0 * (frame["channel"] == "web")
        - 1.0
    )
    frame["target"] = (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(int)
    return frame


def sources() -> list[Source]:
    from sklearn import datasets

    found = []
    for name, loader in (
        ("breast_cancer", datasets.load_breast_cancer),
        ("wine", datasets.load_wine),
        ("diabetes", datasets.load_diabetes),
        ("digits", datasets.load_digits),
        ("iris", datasets.load_iris),
    ):
        bunch = loader(as_frame=True)
        frame = bunch.frame.rename(columns=str)
        features = [str(c) for c in bunch.data.columns]
        task = "regression" if name == "diabetes" else ("binary" if name == "breast_cancer" else "multiclass")
        # planted shifts move the feature with the most distinct values (digits' first pixel is always 0)
        numeric = max(features, key=lambda c: frame[c].nunique())
        found.append(Source(name, "target", features, task, frame=frame, numeric=numeric))
    features = [c for c in synthetic(10, 0).columns if c != "target"]
    found.append(
        Source(
            "synthetic",
            "target",
            features,
            "binary",
            draw=synthetic,
            numeric="balance",
            categorical="channel",
        )
    )
    return found


def fit_model(source: Source, features: list[str] | None = None) -> Any:
    """A gradient-boosting Pipeline fitted once per source (categoricals one-hot, missing values native)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from assurance.scoring.models import from_estimator

    features = features or source.features
    frame = source.frame if source.frame is not None else source.draw(20_000, 10**6)
    if "leak" in features and "leak" not in frame.columns:
        frame = with_leak(frame, source.label, np.random.default_rng(1))
    categorical = [c for c in features if frame[c].dtype == object]
    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)],
        remainder="passthrough",
    )
    final = (
        HistGradientBoostingRegressor(max_iter=60, random_state=0)
        if source.task == "regression"
        else HistGradientBoostingClassifier(max_iter=60, random_state=0)
    )
    estimator = Pipeline([("encode", encode), ("model", final)]).fit(frame[features], frame[source.label])
    return from_estimator(estimator, features, frame[source.label])


def with_leak(frame: pd.DataFrame, label: str, rng: np.random.Generator) -> pd.DataFrame:
    """A feature that is the label plus a little noise: what a leaked outcome column looks like."""
    out = frame.copy()
    out["leak"] = out[label].astype(float) + rng.normal(0.0, 0.15, len(out))
    return out


def policy() -> Any:
    from assurance.policy.model import Policy

    return Policy().with_overrides({"thresholds": {"drift": {"engine": "numpy"}}}, "calibration")


def inputs(source: Source, reference: pd.DataFrame, current: pd.DataFrame, model: Any, policy_: Any) -> Any:
    from assurance.domain.values import Dataset, Inputs, VersionRecord
    from assurance.scoring.predict import predict

    tags = {"assurance.label": source.label, "assurance.slices": SITE, "assurance.protected": SITE}
    record = VersionRecord(
        name=f"calibration_{source.name}",
        version="1",
        tags=tags,
        model_tags={},
        version_tags=tags,
        aliases=[],
        status="READY",
        source="models:/calibration",
        run_id=None,
        model_id=None,
        created_ms=None,
        updated_ms=None,
    )
    ref = Dataset("reference", "memory://reference", frame=reference, label=source.label, fingerprint=None)
    cur = Dataset("current", "memory://current", frame=current, label=source.label, fingerprint=None)
    return Inputs(record, policy_, ref, cur, predict(model, ref, cur), model=model)


def judged_findings(section: Any) -> list[Any]:
    return [f for f in section.findings if f.severity in JUDGED]


# --- trials -----------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts per (row label, size): trials run, and trials where the event happened."""

    trials: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    hits: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, key: str, size: int, hit: bool) -> None:
        self.trials[key, size] += 1
        self.hits[key, size] += int(hit)

    def merge(self, other: Tally) -> None:
        for k, v in other.trials.items():
            self.trials[k] += v
        for k, v in other.hits.items():
            self.hits[k] += v


_SOURCES: dict[str, Source] = {}


def _source(name: str) -> Source:
    if not _SOURCES:
        for source in sources():
            _SOURCES[source.name] = source
    source = _SOURCES[name]
    if source.model is None:
        source.model = fit_model(source)
    return source


def healthy_trials(name: str, size: int, seeds: list[int]) -> Tally:
    """A/A pairs of one source at one size: every analysis, then the recommendation."""
    from assurance.checks.catalog import all_analyses
    from assurance.domain.findings import findings_frame
    from assurance.policy.recommendation import recommend

    source, policy_ = _source(name), policy()
    analyses = [a for a in all_analyses() if a.key in HEALTHY_ANALYSES]
    tally = Tally()
    for seed in seeds:
        reference, current = source.windows(size, seed)
        data = inputs(source, reference, current, source.model, policy_)
        every = []
        for analysis in analyses:
            if analysis.key in MODEL_HEAVY and seed % MODEL_EVERY:
                continue
            found = judged_findings(analysis.run(data))
            tally.add(f"healthy {analysis.key}", size, bool(found))
            every += found
        record = data.record
        frame = findings_frame(every, record, policy_) if every else None
        if seed % MODEL_EVERY == 0:  # every analysis ran
            approve = frame is None or recommend(frame, policy_).decision == "approve"
            tally.add("healthy: recommendation approve", size, approve)
    return tally


def planted_trials(name: str, size: int, seeds: list[int]) -> Tally:
    """One known problem at a time; a hit is the intended check naming the intended subject. Drift is
    judged by the same `compare` its analysis runs (without drawing its plots); the two missing-value
    plants go into two columns of one quality run."""
    from assurance.checks import drift, leakage, quality, slices
    from assurance.domain.values import Section

    source, policy_ = _source(name), policy()
    tally = Tally()
    leak_model = None

    def drifted(reference: pd.DataFrame, current: pd.DataFrame, column: str) -> bool:
        data = inputs(source, reference, current, source.model, policy_)
        table_ = drift.compare(data, Section("drift", "Drift"))[0].set_index("column")
        return bool(table_.loc[column, "drifted"])

    for seed in seeds:
        rng = np.random.default_rng(seed + 7)
        reference, current = source.windows(size, seed)
        column = source.numeric
        for sd in (0.25, 0.5, 1.0):
            moved = current.assign(**{column: current[column] + sd * reference[column].std()})
            tally.add(f"shift {sd:g} sd", size, drifted(reference, moved, column))
        if source.categorical:
            for delta in (0.1, 0.3):
                moved = move_share(current, source.categorical, "web", delta, rng)
                tally.add(f"category share +{delta:g}", size, drifted(reference, moved, source.categorical))
        holed = current.copy()
        for extra, target in zip((0.05, 0.2), source.features[:2], strict=True):
            holed.loc[rng.random(len(holed)) < extra, target] = np.nan
        found = quality.run(inputs(source, reference, holed, source.model, policy_))
        for extra, target in zip((0.05, 0.2), source.features[:2], strict=True):
            tally.add(f"missing +{extra:.0%}", size, _names(found, "quality.missing_values", target))
        if source.task != "regression" and size >= 300:
            if leak_model is None:
                leak_model = fit_model(source, [*source.features, "leak"])
            leaky = [with_leak(w, source.label, rng) for w in (reference, current)]
            found = leakage.run(inputs(source, *leaky, leak_model, policy_))
            tally.add("label proxy", size, _names(found, "leakage.label_proxy", "leak"))
    if name == "synthetic" and size == 5_000:
        tally.merge(slice_trials(source, seeds, policy_, slices))
    return tally


def move_share(
    frame: pd.DataFrame, column: str, value: str, delta: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Relabel other categories as `value` so its share rises by `delta` (of all rows)."""
    out = frame.copy()
    others = np.flatnonzero((out[column] != value).to_numpy())
    moved = rng.choice(others, min(len(others), int(round(delta * len(out)))), replace=False)
    out.loc[out.index[moved], column] = value
    return out


def slice_trials(source: Source, seeds: list[int], policy_: Any, slices: Any) -> Tally:
    """A slice of `support` current rows whose accuracy is `gap` below the model's own accuracy there."""
    tally = Tally()
    for seed in seeds:
        rng = np.random.default_rng(seed + 11)
        reference, current = source.windows(5_000, seed)
        for support in (30, 100, 1_000):
            for gap in (0.1, 0.2, 0.3):
                planted = current.copy()
                rows = rng.choice(len(planted), support, replace=False)
                planted[SITE] = np.where(np.isin(np.arange(len(planted)), rows), "planted", planted[SITE])
                predicted = source.model.predict(planted.loc[rows, source.features])
                correct = rows[np.asarray(predicted) == planted.loc[rows, source.label].to_numpy()]
                flip = rng.choice(correct, min(len(correct), int(round(gap * support))), replace=False)
                planted.loc[flip, source.label] = 1 - planted.loc[flip, source.label]
                found = slices.run(inputs(source, reference, planted, source.model, policy_))
                tally.add(
                    f"slice gap {gap:g}", support, _names(found, "slices.underperforming", f"{SITE}=planted")
                )
    return tally


def _names(section: Any, check: str, subject: str) -> bool:
    return any(f.check == check and f.subject == subject and f.severity in JUDGED for f in section.findings)


# --- running and printing -------------------------------------------------------------------------


def tasks(trials: int, sizes: tuple[int, ...], names: list[str], chunk: int) -> Iterator[tuple]:
    for name in names:
        source_max = None if name == "synthetic" else _source_rows(name) // 2
        for size in sizes:
            if source_max is not None and size > source_max:
                continue
            seeds = list(range(trials))
            for start in range(0, trials, chunk):
                yield healthy_trials, name, size, seeds[start : start + chunk]
                yield planted_trials, name, size, seeds[start : start + chunk]
    if "synthetic" in names:
        seeds = list(range(trials))
        for start in range(0, trials, chunk):
            yield planted_trials, "synthetic", 5_000, seeds[start : start + chunk]


_ROWS = {"breast_cancer": 569, "wine": 178, "diabetes": 442, "digits": 1797, "iris": 150}


def _source_rows(name: str) -> int:
    return _ROWS[name]


def _run(task: tuple) -> Tally:
    function, *args = task
    return function(*args)


def table(tally: Tally, rows: Callable[[str], bool], heading: str) -> str:
    keys = sorted({k for k, _ in tally.trials if rows(k)}, key=lambda k: (not k.startswith("healthy"), k))
    columns = sorted({s for k, s in tally.trials if rows(k)})
    lines = [
        f"| {heading} | " + " | ".join(f"{s:,}" for s in columns) + " | all sizes |",
        "|---" * (len(columns) + 2) + "|",
    ]

    def cell(hits: int, n: int) -> str:
        return f"{hits / n:.1%} ({n})" if n else ""

    for key in keys:
        cells = [cell(tally.hits[key, s], tally.trials.get((key, s), 0)) for s in columns]
        total = sum(tally.trials.get((key, s), 0) for s in columns)
        cells.append(cell(sum(tally.hits[key, s] for s in columns), total))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few trials, small sizes")
    parser.add_argument("--trials", type=int, help="trials per size (default 200; 6 with --quick)")
    parser.add_argument("--sources", help="comma-separated sources (default: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    trials = args.trials or (6 if args.quick else 200)
    sizes = QUICK_SIZES if args.quick else SIZES
    names = args.sources.split(",") if args.sources else [*_ROWS, "synthetic"]
    work = list(tasks(trials, sizes, names, chunk=max(1, min(25, trials))))
    print(
        f"Calibration: {trials} trials per size, sizes {', '.join(map(str, sizes))}, {len(work)} tasks",
        flush=True,
    )
    output = RESULTS / ("calibration-quick.md" if args.quick else "calibration.md")
    started = time.perf_counter()
    total = Tally()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for done, part in enumerate(pool.map(_run, work), start=1):
            total.merge(part)
            if done % max(1, len(work) // 20) == 0:
                print(f"  {done}/{len(work)} tasks, {time.perf_counter() - started:.0f} s", flush=True)
                write(total, f"partial: {done} of {len(work)} tasks", output)
    print(write(total, f"{trials} trials per size, {time.perf_counter() - started:.0f} s", output))
    return 0


def write(total: Tally, note: str, output: Path) -> str:
    """The report as Markdown, also saved to `output` as the run progresses (a long run that is stopped
    still leaves its figures)."""
    text = "\n\n".join(
        [
            "Share of trials with a finding at medium or above (healthy rows: the target is at most 1%), share "
            "of healthy trials recommended approve, and detection rate of planted problems; trials in brackets.",
            table(total, lambda k: not k.startswith("slice"), "window rows per side"),
            table(total, lambda k: k.startswith("slice"), "slice support (5,000 current rows)"),
            f"({note})",
        ]
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text + "\n")
    return text


if __name__ == "__main__":
    sys.exit(main())
