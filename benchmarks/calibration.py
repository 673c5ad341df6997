"""Calibration benchmark: how often each check cries wolf on healthy data, and how often it finds a real problem.

    python -m benchmarks.calibration            # 200 trials per size (--trials 20 took 13.5 minutes on 2 cores)
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

Checks that need more than the two windows get what they need, healthy and planted, on every trial:
- `challenger.worse`: the model fitted the same way on two other samples (halves of a scikit-learn frame,
  fresh synthetic draws), one the challenger, one the champion; planted, the challenger lacks the two
  features that predict the label best on their own.
- `performance.overfitting`: the metrics MLflow's autolog logs, at the model's value on the rows it was
  fitted on; planted (classifiers), the holdout's accuracy 0.2 below that, by relabelling correctly
  predicted rows (a good model's training accuracy cannot rise 0.2). The scikit-learn models are fitted on
  the whole frame, so their reference windows are not held out: there only noise is calibrated, the
  synthetic model's fresh draws also test honest optimism.
- `leakage.train_holdout_overlap`: training data (an in-memory Parquet file named by `assurance.training`)
  split cleanly from the reference window (the frame's other rows, the synthetic model's own training draw);
  planted, 30% of reference rows are training rows.
- fairness over two protected attributes and their pairs (binary models): `site` and a random `band`;
  planted, the model misses extra positives in four of the eight site x band cells, chosen so that every
  site and every band holds as many as any other (tests/checks/test_fairness.py's intersection case).
The recommendation counts only the analyses of the two windows above.

Drift's effect sizes are computed by numpy here (the product uses Evidently's ValueDrift below 100,000
rows): the formulas are the same, tests pin them to Evidently's values, and numpy is 10x faster.
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
from dataclasses import replace

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
BAND = "band"  # the second protected attribute, random too
# an intersection-only disparity: these site x band cells miss extra positives, every site and band holds two
PLANTED_CELLS = tuple(f"{SITE}={s} & {BAND}={b}" for s, b in (("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")))
# canonical metric -> the name MLflow's sklearn autolog logs its training value under
AUTOLOG = {
    "accuracy": "training_accuracy_score",
    "precision": "training_precision_score",
    "recall": "training_recall_score",
    "f1": "training_f1_score",
    "roc_auc": "training_roc_auc",
    "log_loss": "training_log_loss",
    "mae": "training_mean_absolute_error",
    "mse": "training_mean_squared_error",
    "rmse": "training_root_mean_squared_error",
    "r2": "training_r2_score",
}
SYNTHETIC_TRAINING_ROWS = 20_000


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
    fitted: dict[Any, Any] = field(default_factory=dict)  # models and values made once per process

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

    def training(self, rows: int, seed: int) -> pd.DataFrame:
        """Training data split cleanly from the reference window of `windows(rows, seed)`: the frame's other
        rows (the permutation `windows` draws first), or the synthetic model's own training draw."""
        if self.frame is None:
            return training_frame(self, 0)
        order = np.random.default_rng(seed).permutation(len(self.frame))
        return self.frame.iloc[np.sort(order[rows:])].reset_index(drop=True)

    def once(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self.fitted:
            self.fitted[key] = make()
        return self.fitted[key]


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


def training_frame(source: Source, sample: int) -> pd.DataFrame:
    """The rows a model is fitted on. Sample 0, the version's model: the whole frame, or a synthetic draw.
    Samples 1 and 2, the challenger and its champion: the frame's two halves, or two other draws."""
    if source.frame is None:
        return source.draw(SYNTHETIC_TRAINING_ROWS, 10**6 + sample)
    if sample == 0:
        return source.frame
    halves = np.array_split(np.random.default_rng(5).permutation(len(source.frame)), 2)
    return source.frame.iloc[np.sort(halves[sample - 1])].reset_index(drop=True)


def fit_model(source: Source, features: list[str] | None = None, sample: int = 0) -> Any:
    """A gradient-boosting Pipeline fitted once per source (categoricals one-hot, missing values native)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from assurance.scoring.models import from_estimator

    features = features or source.features
    frame = training_frame(source, sample)
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


def inputs(
    source: Source,
    reference: pd.DataFrame | None,
    current: pd.DataFrame | None,
    model: Any,
    policy_: Any,
    champion: Any = None,
) -> Any:
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
    ref, cur = (
        Dataset(role, f"memory://{role}", frame=frame, label=source.label) if frame is not None else None
        for role, frame in (("reference", reference), ("current", current))
    )
    return Inputs(record, policy_, ref, cur, predict(model, ref, cur), model=model, champion=champion)


def judged_findings(section: Any) -> list[Any]:
    return [f for f in section.findings if f.severity in JUDGED]


# --- trials -----------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts per (row label, size): trials run, and trials where the event happened."""

    trials: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    hits: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    notes: dict[str, str] = field(default_factory=dict)  # table rows that are not counts

    def add(self, key: str, size: int, hit: bool) -> None:
        self.trials[key, size] += 1
        self.hits[key, size] += int(hit)

    def merge(self, other: Tally) -> None:
        for k, v in other.trials.items():
            self.trials[k] += v
        for k, v in other.hits.items():
            self.hits[k] += v
        self.notes.update(other.notes)


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
        for key, hit in healthy_context(source, size, seed, data):
            tally.add(f"healthy {key}", size, hit)
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
        for key, hit in planted_context(
            source, size, seed, inputs(source, reference, current, source.model, policy_)
        ):
            tally.add(key, size, hit)
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


def _raises(findings: list[Any], check: str) -> bool:
    return any(f.check == check and f.severity in JUDGED for f in findings)


# --- a version in context: its champion, its training metrics, its training data, two protected attributes


def healthy_context(source: Source, size: int, seed: int, data: Any) -> Iterator[tuple[str, bool]]:
    """The checks that need more than two windows, each given what a healthy version would give it."""
    challenger, champion = pair_models(source)
    found = compared(source, data.current.frame, challenger, champion, data.policy).findings
    yield "challenger.worse", _raises(found, "challenger.worse")
    overfit = with_training_metrics(data, honest_training_metrics(source, data.policy))
    yield "performance.overfitting", _raises(overfit.findings, "performance.overfitting")
    overlap = train_holdout(data, source.training(size, seed))
    yield "leakage.train_holdout_overlap", _raises(overlap, "leakage.train_holdout_overlap")
    if source.task == "binary":
        banded = with_band(data.current.frame, np.random.default_rng(seed + 13))
        yield "fairness, two attributes", bool(judged_findings(two_attributes(data, banded)))


def planted_context(source: Source, size: int, seed: int, data: Any) -> Iterator[tuple[str, bool]]:
    """One problem each for the checks that need more than two windows; a hit is the check finding it."""
    rng = np.random.default_rng(seed + 17)
    champion = pair_models(source)[1]
    found = compared(source, data.current.frame, weaker_model(source), champion, data.policy).findings
    yield "challenger missing 2 informative features", _raises(found, "challenger.worse")
    reference = data.reference.frame
    if source.task != "regression":
        predicted = data.predictions.reference.frame["prediction"].to_numpy()
        lowered = accuracy_lowered(reference, source.label, predicted, data.predictions.classes, 0.2, rng)
        overfit = with_training_metrics(
            replace(data, reference=replace(data.reference, frame=lowered)),
            honest_training_metrics(source, data.policy),
        )
        yield "holdout accuracy 0.2 below training", _names(overfit, "performance.overfitting", "accuracy")
    training = source.training(size, seed)
    copied = copied_from(reference, training, [*source.features, source.label], 0.3, rng)
    found = train_holdout(replace(data, reference=replace(data.reference, frame=copied)), training)
    yield "holdout 30% copied from training", _raises(found, "leakage.train_holdout_overlap")
    if source.task == "binary":
        planted = intersection_disparity(
            with_band(data.current.frame, rng),
            data.predictions.current.frame["prediction"],
            source.label,
            data.predictions.positive,
            rng,
        )
        yield (
            "intersection-only disparity",
            any(
                f.subject in PLANTED_CELLS and f.severity in JUDGED
                for f in two_attributes(data, planted).findings
            ),
        )


def pair_models(source: Source) -> tuple[Any, Any]:
    """A challenger and its champion: the version's recipe fitted on two other samples (`training_frame`)."""
    return tuple(source.once(("pair", k), lambda k=k: fit_model(source, sample=k)) for k in (1, 2))


def weaker_model(source: Source) -> Any:
    """The challenger fitted without the two features that predict the label best on their own."""
    return source.once("weaker", lambda: fit_model(source, without_best_two(source), sample=1))


def compared(
    source: Source, current: pd.DataFrame, challenger_model: Any, champion_model: Any, policy_: Any
) -> Any:
    """The challenger analysis of `challenger_model` against `champion_model` on `current`."""
    from assurance.checks import challenger
    from assurance.domain.values import Champion

    champion = Champion("0", "champion", model=champion_model)
    return challenger.run(inputs(source, None, current, challenger_model, policy_, champion))


def pair_gaps(name: str) -> Tally:
    """What the challenger rows can find: both pairs' judged metrics on the whole population (the frame, or
    a fresh 20,000-row draw) against the policy's materiality."""
    source = _source(name)
    population = source.frame if source.frame is not None else source.draw(SYNTHETIC_TRAINING_ROWS, 10**6 + 9)
    champion = pair_models(source)[1]
    tally = Tally()
    for pair, challenger_model in (
        ("equivalent", pair_models(source)[0]),
        ("missing 2 informative features", weaker_model(source)),
    ):
        metrics = compared(source, population, challenger_model, champion, policy()).tables["challenger"]
        tally.notes[f"| {name} | {pair} |"] = "; ".join(
            f"{m.metric} {m.champion:.3f} -> {m.challenger:.3f} (material {m.tolerance:.3g})"
            for m in metrics[metrics["judged"]].itertuples()
        )
    return tally


def without_best_two(source: Source) -> list[str]:
    """The features but the two that predict the label best on their own (the product's label strength)."""
    from assurance.checks.leakage import label_strength

    frame = training_frame(source, 0)
    strength = {f: label_strength(frame[f], frame[source.label], source.task) for f in source.features}
    best = sorted(strength, key=strength.get)[-2:]
    return [f for f in source.features if f not in best]


def honest_training_metrics(source: Source, policy_: Any) -> dict[str, float]:
    """What autolog logs for the version's model: its metrics on the rows it was fitted on."""
    from assurance.checks.rows import labelled_arrays, role_outcomes

    def measure() -> dict[str, float]:
        on_training = inputs(source, training_frame(source, 0), None, source.model, policy_)
        point = labelled_arrays(role_outcomes(on_training, "reference")).point(
            policy_.thresholds.performance.calibration_bins
        )
        return {AUTOLOG[m]: value for m, value in point.items() if m in AUTOLOG}

    return source.once("training metrics", measure)


def with_training_metrics(data: Any, logged: dict[str, float]) -> Any:
    """The reproducibility analysis of a version whose source run logged `logged`."""
    from assurance.checks import reproducibility

    return reproducibility.run(replace(data, record=replace(data.record, logged_metrics=logged)))


def accuracy_lowered(
    frame: pd.DataFrame,
    label: str,
    predicted: np.ndarray,
    classes: list[Any],
    drop: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """`drop` of the rows, each one the model predicts right, relabelled as another class: accuracy falls by
    `drop`."""
    correct = np.flatnonzero(predicted == frame[label].to_numpy())
    flip = rng.choice(correct, min(len(correct), int(round(drop * len(frame)))), replace=False)
    out = frame.copy()
    out.loc[flip, label] = [rng.choice([c for c in classes if c != y]) for y in out.loc[flip, label]]
    return out


@contextmanager
def stored(frame: pd.DataFrame) -> Iterator[str]:
    """`frame` as a Parquet file on fsspec's in-memory file system, for the product to read by URI."""
    import fsspec

    memory, path = fsspec.filesystem("memory"), f"/calibration/{os.getpid()}/training.parquet"
    with memory.open(path, "wb") as handle:
        frame.to_parquet(handle)
    try:
        yield f"memory://{path}"
    finally:
        memory.rm(path)


def train_holdout(data: Any, training: pd.DataFrame) -> list[Any]:
    """`leakage.train_holdout_overlap` findings for the reference window against `training`, read from the
    URI in the version's `assurance.training` tag as the leakage analysis reads it."""
    from assurance.checks import leakage
    from assurance.checks.rows import feature_columns
    from assurance.domain.values import Section

    section = Section("leakage", "Leakage")
    with stored(training) as uri:
        tagged = replace(
            data, record=replace(data.record, tags={**data.record.tags, "assurance.training": uri})
        )
        overlap = leakage.training_overlap(tagged, feature_columns(tagged, data.reference.frame), section)
    if overlap is None:
        raise RuntimeError(f"train/holdout overlap did not run: {section.skipped}")
    return leakage.train_holdout_finding(*overlap, data.policy.thresholds.leakage, data.policy)


def copied_from(
    frame: pd.DataFrame, donors: pd.DataFrame, columns: list[str], share: float, rng: np.random.Generator
) -> pd.DataFrame:
    """`share` of `frame`'s rows overwritten, column by column (dtypes kept), with rows of `donors` (some
    twice when `donors` has fewer: the synthetic model's 20,000 training rows against a 100,000-row window)."""
    rows = rng.choice(len(frame), int(round(share * len(frame))), replace=False)
    picked = donors.iloc[rng.choice(len(donors), len(rows), replace=len(rows) > len(donors))]
    out = frame.copy()
    for column in columns:
        out.loc[rows, column] = picked[column].to_numpy()
    return out


def with_band(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return frame.assign(**{BAND: rng.choice(["x", "y"], len(frame))})


def intersection_disparity(
    frame: pd.DataFrame, predicted: pd.Series, label: str, positive: Any, rng: np.random.Generator
) -> pd.DataFrame:
    """Half the rows of the planted cells that the model predicts negative become positives it missed."""
    cells = f"{SITE}=" + frame[SITE] + f" & {BAND}=" + frame[BAND]
    planted = cells.isin(PLANTED_CELLS).to_numpy()
    missed = planted & (predicted.to_numpy() != positive) & (rng.random(len(frame)) < 0.5)
    out = frame.copy()
    out.loc[missed, label] = positive
    return out


def two_attributes(data: Any, current: pd.DataFrame) -> Any:
    """The fairness analysis with `site` and `band` protected, on `current` (the same rows, relabelled)."""
    from assurance.checks import fairness

    tags = {**data.record.tags, "assurance.protected": f"{SITE},{BAND}"}
    return fairness.run(
        replace(data, record=replace(data.record, tags=tags), current=replace(data.current, frame=current))
    )


# --- running and printing -------------------------------------------------------------------------


def tasks(trials: int, sizes: tuple[int, ...], names: list[str], chunk: int) -> Iterator[tuple]:
    for name in names:
        yield pair_gaps, name
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
    by_source: dict[str, Tally] = defaultdict(Tally)
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for done, (task, part) in enumerate(zip(work, pool.map(_run, work), strict=True), start=1):
            by_source[task[1]].merge(part)
            if done % max(1, len(work) // 20) == 0:
                print(f"  {done}/{len(work)} tasks, {time.perf_counter() - started:.0f} s", flush=True)
                write(by_source, f"partial: {done} of {len(work)} tasks", output)
    print(write(by_source, f"{trials} trials per size, {time.perf_counter() - started:.0f} s", output))
    return 0


def pairs_table(notes: dict[str, str]) -> str:
    lines = [f"{row} {metrics} |" for row, metrics in sorted(notes.items())]
    return (
        "Challenger pairs on the whole population (a scikit-learn frame, of which each model saw one half; a "
        "fresh synthetic draw), champion -> challenger:\n\n| source | challenger | judged metrics |\n|---|---|---|\n"
        + "\n".join(lines)
    )


def healthy_alarms(by_source: dict[str, Tally]) -> str:
    """Every healthy cell with a finding, by source: the first place to look when a row is above target."""
    cells = [
        f"- {key} at {size:,} rows: {name}, {tally.hits[key, size]} of {trials}"
        for name, tally in sorted(by_source.items())
        for (key, size), trials in sorted(tally.trials.items())
        if key.startswith("healthy ") and tally.hits[key, size]
    ]
    return "Healthy trials with a finding, by source:\n\n" + ("\n".join(cells) or "- none")


def write(by_source: dict[str, Tally], note: str, output: Path) -> str:
    """The report as Markdown, also saved to `output` as the run progresses (a long run that is stopped
    still leaves its figures): all sources together, then each source's own table."""
    total = Tally()
    for part in by_source.values():
        total.merge(part)
    own = [
        table(tally, lambda k: not k.startswith("slice"), f"{name}: window rows per side")
        for name, tally in sorted(by_source.items())
        if len(by_source) > 1
    ]
    text = "\n\n".join(
        [
            "Share of trials with a finding at medium or above (healthy rows: the target is at most 1%), share "
            "of healthy trials recommended approve, and detection rate of planted problems; trials in brackets.",
            table(total, lambda k: not k.startswith("slice"), "window rows per side"),
            table(total, lambda k: k.startswith("slice"), "slice support (5,000 current rows)"),
            healthy_alarms(by_source),
            pairs_table(total.notes),
            *own,
            f"({note})",
        ]
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text + "\n")
    return text


if __name__ == "__main__":
    sys.exit(main())
