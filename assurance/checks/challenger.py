"""Challenger comparison: is this version materially and significantly worse than the champion it would replace?

A version's own metrics say how good it is; whether it should replace the model in service needs the two
side by side on the same rows, or a harder window of data would pass for a worse model. The champion is
the version behind the policy's champion alias (`thresholds.challenger.champion_aliases`, in order), else
the newest earlier version behind a production alias. Both models score the same labelled rows (current
data when labelled, else reference). Every metric's difference gets a paired bootstrap interval: each
resample draws the same rows for both models, so the rows' own difficulty cancels and the interval is as
narrow as the models' disagreement allows (independent intervals overlap long after the gap is real).
The challenger is worse on a metric when the gap reaches the policy's materiality and a one-sided test on
the paired bootstrap standard error puts it beyond noise, Benjamini-Hochberg over the metrics compared.
Slice metrics, calibration and how often the two agree are shown side by side and not judged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from assurance.checks import metrics, performance, significance
from assurance.checks.change_control import production_aliases
from assurance.checks.metrics import LABELS, Labelled
from assurance.checks.rows import Outcomes, Unavailable, group_labels, labelled_arrays, outcomes
from assurance.checks.slices import row_losses, slice_auc, slice_name
from assurance.domain.checks import CheckSpec
from assurance.domain.errors import describe_error
from assurance.domain.findings import Finding
from assurance.domain.values import Champion, Dataset, Inputs, Predictions, Scores, Section, VersionRecord
from assurance.reporting.markdown import table

if TYPE_CHECKING:
    from assurance.policy.model import Policy
    from assurance.policy.thresholds import ChallengerThresholds, PerformanceThresholds, SlicesThresholds
    from assurance.registry.client import Registry

EVIDENCE = "challenger.parquet"
PLOT = "challenger_reliability"
SEED = 2  # fixed: the evidence repeats; the same resamples serve both models

WORSE = CheckSpec(
    "challenger.worse",
    "performance",
    "The version is materially and significantly worse than its champion (the version behind the policy's "
    "champion alias, else the newest earlier version in production) on the same labelled rows.",
    "high",
)
CHECKS: tuple[CheckSpec, ...] = (WORSE,)


def _order(version: str) -> tuple[int, str]:
    """Registry versions are integers; any that is not sorts before them, by its text."""
    return (int(version), "") if version.isdigit() else (-1, version)


def choose_champion(record: VersionRecord, policy: Policy) -> Champion:
    """The version this one is compared with, or the reason there is none (`Champion.reason`)."""
    by_name = {alias.lower(): (alias, str(v)) for alias, v in record.model_aliases.items()}
    named = policy.thresholds.challenger.champion_aliases
    for wanted in named:
        if wanted.strip().lower() in by_name:
            alias, version = by_name[wanted.strip().lower()]
            if version == str(record.version):
                return Champion(
                    version, alias, reason=f"version {version} is the champion itself (alias '{alias}')"
                )
            return Champion(version, alias)
    live = production_aliases(policy)
    earlier = [
        (version, alias)
        for alias, version in by_name.values()
        if alias.lower() in live and _order(version) < _order(str(record.version))
    ]
    if not earlier:
        return Champion(
            reason=f"no champion: no version is behind {' or '.join(repr(a) for a in named) or 'a champion alias'} "
            "and no earlier version is behind a production alias"
        )
    version, alias = max(earlier, key=lambda hit: (_order(hit[0]), hit[1]))
    return Champion(version, alias)


def find_champion(
    registry: Registry, record: VersionRecord, policy: Policy, reference: Dataset | None
) -> Champion:
    """The champion with its record and model loaded, or the reason it cannot be compared with."""
    from assurance.scoring.predict import load_version_model

    champion = choose_champion(record, policy)
    if champion.reason:
        return champion
    try:
        champion.record = registry.version_record(record.name, champion.version)
        champion.model = load_version_model(registry, champion.record, reference)
    except Exception as exc:  # noqa: BLE001 - an unloadable champion is a skipped comparison, not a failed run
        champion.model = None
        champion.reason = (
            f"the champion, version {champion.version} behind '{champion.alias}', could not be loaded: "
            f"{describe_error(exc)}"
        )
    return champion


@dataclass
class Pair:
    """Both models' outputs on the same labelled rows, in the same order."""

    challenger: Outcomes
    champion: Outcomes

    @property
    def role(self) -> str:
        return self.challenger.role


def _scored(frame: pd.DataFrame) -> np.ndarray:
    keep = frame["prediction"].notna()
    if "score" in frame.columns:
        keep &= frame["score"].notna()
    return keep.to_numpy(dtype=bool)


def _narrowed(inputs: Inputs, role: str, keep: np.ndarray, predictions: Predictions) -> Outcomes:
    """The role's rows where `keep` holds, aligned with `predictions` there (the other dataset left out)."""
    dataset, scores = inputs.dataset(role), predictions.for_role(role)
    other = "reference" if role == "current" else "current"
    narrowed = replace(
        inputs,
        **{role: replace(dataset, frame=dataset.frame[keep]), other: None},
        predictions=replace(predictions, **{role: replace(scores, frame=scores.frame[keep])}),
    )
    return outcomes(narrowed, labelled=True)


def paired_outcomes(inputs: Inputs, champion: Champion) -> Pair:
    """Both models on the rows of the labelled dataset (current, else reference) that both could score."""
    from assurance.scoring.predict import score_dataset

    role = outcomes(inputs, labelled=True).role
    task, model = inputs.predictions.task, champion.model
    if model.task != task:
        raise Unavailable(f"the champion is a {model.task} model and this version a {task} one")
    theirs = score_dataset(model, inputs.dataset(role))
    if not theirs.ok:
        raise Unavailable(f"the champion could not score the {role} data: {theirs.error}")
    champion_predictions = Predictions(
        task, Scores(), Scores(), positive=model.positive, classes=list(model.classes), loader=model.flavor
    )
    champion_predictions = replace(champion_predictions, **{role: theirs})
    keep = _scored(inputs.predictions.for_role(role).frame) & _scored(theirs.frame)
    pair = Pair(
        _narrowed(inputs, role, keep, inputs.predictions),
        _narrowed(inputs, role, keep, champion_predictions),
    )
    if task == "binary" and pair.challenger.positive != pair.champion.positive:
        raise Unavailable(
            f"the champion scores class {pair.champion.positive!r} as positive and this version "
            f"{pair.challenger.positive!r}"
        )
    return pair


@dataclass
class Comparison:
    """Both models' metrics on the same rows, with paired bootstrap replicates."""

    champion: performance.Evaluation
    challenger: performance.Evaluation
    challenger_data: Labelled
    champion_data: Labelled


def compare(pair: Pair, limits: PerformanceThresholds) -> Comparison:
    """Metrics of both models and their paired replicates (the same resampled rows for both)."""
    challenger, champion = labelled_arrays(pair.challenger), labelled_arrays(pair.champion)
    if challenger.rows < limits.min_rows:
        raise Unavailable(
            f"{pair.role} data has {challenger.rows} rows both models scored and labelled, fewer than "
            f"the policy's {limits.min_rows}"
        )
    points = [data.point(limits.calibration_bins) for data in (champion, challenger)]
    replicates = (
        metrics.paired_bootstrap(
            [champion, challenger],
            points,
            limits.bootstrap_samples,
            limits.bootstrap_max_rows,
            SEED,
            limits.calibration_bins,
        )
        if limits.bootstrap_samples
        else [{}, {}]
    )
    evaluations = [
        performance.Evaluation(name, challenger.rows, point, reps)
        for name, point, reps in zip(("champion", "challenger"), points, replicates, strict=True)
    ]
    return Comparison(*evaluations, challenger_data=challenger, champion_data=champion)


def tolerance(metric: str, champion_value: float, limits: ChallengerThresholds) -> float:
    if metric in limits.max_drop:
        return limits.max_drop[metric]
    return limits.max_relative_drop[metric] * abs(champion_value)


def metric_table(
    comparison: Comparison, limits: ChallengerThresholds, perf: PerformanceThresholds
) -> pd.DataFrame:
    """One row per metric: both values with intervals, the paired interval of the difference (challenger
    minus champion), the worsening, its materiality, p and q values, and whether the challenger is worse."""
    champion, challenger = comparison.champion, comparison.challenger
    rows = []
    for metric in (m for m in LABELS if m in champion.point and m in challenger.point):
        empty = np.array([])
        mine, theirs = challenger.replicates.get(metric, empty), champion.replicates.get(metric, empty)
        watched = (metric in limits.max_drop or metric in limits.max_relative_drop) and performance.judged(
            champion, metric, perf
        )
        worse, p, _ = performance.worsening_pvalue(champion, challenger, metric)
        rows.append(
            dict(
                metric=metric,
                champion=champion.point[metric],
                champion_ci=metrics.interval(theirs, perf.confidence),
                challenger=challenger.point[metric],
                challenger_ci=metrics.interval(mine, perf.confidence),
                difference=challenger.point[metric] - champion.point[metric],
                difference_ci=metrics.interval(mine - theirs if mine.size else empty, perf.confidence),
                worsening=worse,
                tolerance=tolerance(metric, champion.point[metric], limits) if watched else np.nan,
                p_value=p if watched else np.nan,
                n=challenger.rows,
            )
        )
    frame = pd.DataFrame(rows)
    for name in ("champion", "challenger", "difference"):
        frame[[f"{name}_ci_low", f"{name}_ci_high"]] = pd.DataFrame(frame.pop(f"{name}_ci").tolist())
    frame["judged"] = frame["tolerance"].notna()
    frame["q_value"] = significance.adjust(frame["p_value"].where(frame["judged"]).to_numpy(float))
    beyond_noise = frame["q_value"].isna() | (frame["q_value"] <= limits.alpha)
    frame["worse"] = frame["judged"] & (frame["worsening"] >= frame["tolerance"]) & beyond_noise
    return frame


def _names(record: VersionRecord, champion: Champion) -> dict[str, str]:
    """Column and legend names that say which version is which."""
    return {"champion": f"champion v{champion.version}", "challenger": f"challenger v{record.version}"}


def findings(
    frame: pd.DataFrame,
    record: VersionRecord,
    champion: Champion,
    role: str,
    perf: PerformanceThresholds,
    policy: Policy,
) -> list[Finding]:
    """One finding per metric on which the challenger is materially and significantly worse."""
    out = []
    for row in frame[frame["worse"]].itertuples(index=False):
        limit = (
            row.champion - row.tolerance
            if row.metric in metrics.HIGHER_IS_BETTER
            else row.champion + row.tolerance
        )
        interval = (
            f"; {perf.confidence:.0%} paired interval of the difference {row.difference_ci_low:.3f} to "
            f"{row.difference_ci_high:.3f}, q = {row.q_value:.2g}"
            if np.isfinite(row.difference_ci_low)
            else ""
        )
        out.append(
            WORSE.finding(
                row.metric,
                policy.severity(WORSE),
                f"{_capital(LABELS[row.metric])} of version {record.version} is {row.challenger:.3f} against "
                f"{row.champion:.3f} for the champion, version {champion.version} behind '{champion.alias}', "
                f"on the same {row.n:,} labelled {role} rows: worse by {row.worsening:.3f}, at least the "
                f"policy's {row.tolerance:.3f}{interval}; keep the champion in service until the shortfall "
                "is explained or fixed.",
                observed=float(row.challenger),
                threshold=float(limit),
                evidence=EVIDENCE,
            )
        )
    return out


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def slice_table(pair: Pair, columns: list[str], limits: SlicesThresholds) -> pd.DataFrame:
    """Per value of each slice column: support and both models' accuracy (and AUC) or MAE, side by side."""
    keys = group_labels(pair.challenger.frame, columns, limits.max_values, limits.numeric_bins)
    mine, theirs = row_losses(pair.challenger), row_losses(pair.champion)
    to_metric = (lambda x: 1 - x) if mine.metric == "accuracy" else (lambda x: x)
    binary_scores = pair.challenger.task == "binary" and pair.challenger.score is not None
    parts = []
    for column in columns:
        grouped = pd.DataFrame({"challenger": mine.shown, "champion": theirs.shown}).groupby(
            keys[column], observed=True
        )
        part = to_metric(grouped.mean()).join(grouped.size().rename("support")).reset_index()
        part.insert(0, "slice", [slice_name([column], (value,)) for value in part.pop(column)])
        part["difference"] = part["challenger"] - part["champion"]
        if binary_scores:
            for name, data in (("champion", pair.champion), ("challenger", pair.challenger)):
                part[f"{name}_auc"] = part["slice"].map(
                    slice_auc(data, keys, [column], limits.auc_min_class_rows)
                )
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(1, "metric", mine.metric)
    leading = ["slice", "metric", "support", "champion", "challenger", "difference"]
    return frame[[*leading, *(c for c in frame.columns if c not in leading)]]


def reliability_table(comparison: Comparison, bins: int) -> pd.DataFrame | None:
    """Both models' reliability tables, when they give binary scores."""
    parts = [
        metrics.reliability(data.score, data.truth, bins).assign(model=name)
        for name, data in (("champion", comparison.champion_data), ("challenger", comparison.challenger_data))
        if data.score is not None
    ]
    return pd.concat(parts, ignore_index=True) if parts else None


def agreement(pair: Pair) -> dict[str, float]:
    """How alike the two models decide: the share of rows given the same class (classifiers) and the
    correlation of their scores (binary) or predictions (regression)."""
    mine, theirs = pair.challenger, pair.champion
    out: dict[str, float] = {}
    if mine.task in ("binary", "multiclass"):
        same = mine.prediction.astype(object).to_numpy() == theirs.prediction.astype(object).to_numpy()
        out["same_decision"] = float(same.mean()) if same.size else float("nan")
    if mine.task == "binary" and mine.score is not None and theirs.score is not None:
        out["score_correlation"] = float(np.corrcoef(mine.score, theirs.score)[0, 1])
    if mine.task == "regression":
        a, b = (pd.to_numeric(o.prediction, errors="coerce").to_numpy(float) for o in (mine, theirs))
        out["prediction_correlation"] = float(np.corrcoef(a, b)[0, 1])
    return out


def _reliability_plot(frame: pd.DataFrame, record: VersionRecord, champion: Champion) -> bytes:
    from assurance.reporting import plots

    names = _names(record, champion)
    shown = frame[frame["count"] > 0]
    series = {
        names[model]: (g["mean_predicted"].to_numpy(), g["observed_rate"].to_numpy())
        for model, g in shown.groupby("model", sort=False)
    }
    return plots.lines(
        series,
        "Reliability: champion and challenger",
        "mean predicted probability",
        "observed positive rate",
        diagonal=True,
    )


def _cell(value: float, low: float, high: float) -> str:
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if np.isfinite(low) else f"{value:.3f}"


def summary(
    frame: pd.DataFrame,
    found: list[Finding],
    pair: Pair,
    record: VersionRecord,
    champion: Champion,
    agreed: dict[str, float],
    slices: pd.DataFrame | None,
    limits: ChallengerThresholds,
    perf: PerformanceThresholds,
    plotted: bool,
) -> str:
    names = _names(record, champion)
    parts = [
        f"Version {record.version} (challenger) against version {champion.version}, the champion behind alias "
        f"'{champion.alias}', on the same {int(frame['n'].iloc[0]):,} labelled "
        f"{pair.role} rows (both models scored)."
    ]
    if found:
        parts.append(
            "**The challenger is worse than the champion:**\n\n" + "\n".join(f"- {f.message}" for f in found)
        )
    else:
        parts.append(
            "The challenger is not materially and significantly worse than the champion on any metric judged."
        )
    shown = pd.DataFrame(
        {
            "metric": frame["metric"].map(LABELS),
            names["champion"]: [
                _cell(r.champion, r.champion_ci_low, r.champion_ci_high) for r in frame.itertuples()
            ],
            names["challenger"]: [
                _cell(r.challenger, r.challenger_ci_low, r.challenger_ci_high) for r in frame.itertuples()
            ],
            "difference [paired interval]": [
                _cell(r.difference, r.difference_ci_low, r.difference_ci_high) for r in frame.itertuples()
            ],
            "material at": frame["tolerance"],
            "q": frame["q_value"],
            "worse": np.where(frame["worse"], "**yes**", np.where(frame["judged"], "no", "")),
        }
    )
    parts.append(
        f"Values with {perf.confidence:.0%} bootstrap intervals; the difference (challenger minus champion) has a "
        f"paired interval ({perf.bootstrap_samples} resamples drawing the same rows for both models). A metric "
        f"with a materiality is judged: worse when the gap reaches it and Benjamini-Hochberg q <= {limits.alpha}."
        "\n\n" + table(shown)
    )
    described = {
        "same_decision": "same decision on {:.1%} of rows",
        "score_correlation": "score correlation {:.3f}",
        "prediction_correlation": "prediction correlation {:.3f}",
    }
    if agreed:
        parts.append("Agreement: " + "; ".join(described[k].format(v) for k, v in agreed.items()) + ".")
    if slices is not None and len(slices):
        named = slices.drop(columns="metric").rename(
            columns={**names, **{f"{k}_auc": f"{v} AUC" for k, v in names.items()}}
        )
        parts.append(
            f"By slice ({slices['metric'].iloc[0]}; AUC where both classes have enough rows), shown, not "
            "judged here (see Slice performance):\n\n" + table(named)
        )
    if plotted:
        parts.append(f"![{PLOT}](plots/{PLOT}.png)")
    return "\n\n".join(parts)


def _champion_of(inputs: Inputs) -> Champion:
    """The champion the graph loaded; without one, why there is none, or that it was not loaded."""
    if inputs.champion is not None:
        return inputs.champion
    chosen = choose_champion(inputs.record, inputs.policy)
    if not chosen.reason:
        chosen.reason = f"the champion, version {chosen.version} behind '{chosen.alias}', was not loaded"
    return chosen


def run(inputs: Inputs) -> Section:
    """Both models' metrics on the same labelled rows, paired intervals of the differences, slices,
    calibration and agreement; a finding per metric on which the challenger is materially worse."""
    section = Section("challenger", "Challenger comparison")
    champion = _champion_of(inputs)
    if not champion.ok:
        return section.skip(f"no challenger comparison: {champion.reason}")
    record, policy = inputs.record, inputs.policy
    limits, perf = policy.thresholds.challenger, policy.thresholds.performance
    try:
        pair = paired_outcomes(inputs, champion)
        comparison = compare(pair, perf)
    except Unavailable as exc:
        return section.skip(f"no challenger comparison with version {champion.version}: {exc}")
    frame = metric_table(comparison, limits, perf)
    section.findings = findings(frame, record, champion, pair.role, perf, policy)
    section.tables["challenger"] = frame.assign(champion_version=str(champion.version), role=pair.role)
    columns = [c for c in record.tag_list("assurance.slices") if c in pair.challenger.frame.columns]
    slices = slice_table(pair, columns, policy.thresholds.slices) if columns else None
    if slices is not None:
        section.tables["challenger_slices"] = slices
    reliability = reliability_table(comparison, perf.calibration_bins)
    if reliability is not None:
        section.tables["challenger_reliability"] = reliability
        section.plots[PLOT] = _reliability_plot(reliability, record, champion)
    agreed = agreement(pair)
    section.summary = summary(
        frame, section.findings, pair, record, champion, agreed, slices, limits, perf, reliability is not None
    )
    section.metrics = {
        "rows": float(comparison.challenger.rows),
        "metrics_worse": float(frame["worse"].sum()),
        **{k: v for k, v in agreed.items() if np.isfinite(v)},
        **{
            f"{name}_{m}": float(v)
            for name in ("champion", "challenger")
            for m, v in zip(frame["metric"], frame[name], strict=True)
            if np.isfinite(v)
        },
    }
    return section
