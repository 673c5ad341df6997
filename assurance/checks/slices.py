"""Slice performance: where does the model do materially and significantly worse than overall?

Every value of each column in the `assurance.slices` tag, and every pair of values of two such
columns (intersectional slices), is a slice. A slice becomes a finding when its gap to the whole
reaches the policy's material gap (accuracy for classifiers, less the error the model's own scores
predict for its rows when there are binary scores; MAE for regressors) and a test excludes gaps below
a share of that material gap, with Benjamini-Hochberg over every slice judged. Classifier slices use
an exact binomial test of their error count, which holds at any size: 27 right answers in a 43-row
slice where the model promises 93% is no accident, while a 5-row slice could never show a material gap
beyond chance and is listed but not judged. Regressor slices use a one-sided Welch test on absolute
errors. There is no fixed row cut-off: a slice is judged when even its worst possible outcome could
reach the policy's confidence (Tarone's rule), so tiny slices do not dilute the correction.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from assurance.checks import significance
from assurance.checks.rows import (
    CLASSIFICATION,
    Z95,
    Outcomes,
    Unavailable,
    group_labels,
    outcomes,
    present_columns,
)
from assurance.domain.checks import CheckSpec
from assurance.domain.findings import Finding
from assurance.domain.values import Inputs, Section
from assurance.policy.thresholds import SlicesThresholds
from assurance.reporting.markdown import table

CHECK = CheckSpec(
    "slices.underperforming",
    "performance",
    "A slice of the data (column=value, or a pair a=x&b=y) where the model performs materially "
    "and significantly worse than on the whole.",
    "medium",
)
TAG_COLUMN = CheckSpec(
    "slices.tag_column_missing",
    "documentation",
    "A column named in assurance.slices is missing from the data.",
    "low",
)
CHECKS: tuple[CheckSpec, ...] = (CHECK, TAG_COLUMN)
EVIDENCE = "slices.parquet"
# share of a flagged parent's excess loss a pair must hold to be named instead of the parent
CONCENTRATION = 0.5


def material_gap(limits: SlicesThresholds, metric: str, overall_loss: float) -> float:
    """The smallest loss gap that matters: absolute for accuracy, relative to the overall MAE."""
    return limits.min_gap_accuracy if metric == "accuracy" else limits.min_relative_gap_mae * overall_loss


def slice_name(columns: list[str], values: tuple) -> str:
    return "&".join(f"{c}={v}" for c, v in zip(columns, values, strict=True))


@dataclass
class Losses:
    """Per-row losses. `shown` averages to the reported error (1 - accuracy, or the MAE); `judged` is
    what slices are compared on: `shown` less the error the model's own scores predict for the row when
    it has binary scores, so a slice of cases the model already scores as hard (a base rate nearer
    one half, scores nearer 0.5) is not mistaken for one where it stopped working."""

    metric: str
    shown: pd.Series
    judged: pd.Series
    expected: pd.Series | None = None


def row_losses(data: Outcomes) -> Losses:
    if data.task in CLASSIFICATION:
        wrong = data.prediction.astype(object).to_numpy() != data.label.astype(object).to_numpy()
        shown = pd.Series(wrong.astype(float), index=data.frame.index)
        if data.task != "binary" or data.score is None:
            return Losses("accuracy", shown, shown)
        confidence = np.where(data.positives(data.prediction), data.score, 1 - data.score)
        expected = pd.Series(1 - confidence, index=data.frame.index)
        return Losses("accuracy", shown, shown - expected, expected)
    error = pd.to_numeric(data.prediction, errors="coerce") - pd.to_numeric(data.label, errors="coerce")
    shown = error.abs().astype(float)
    return Losses("mae", shown, shown)


def group_stats(losses: Losses, keys: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per slice of `columns`: support and sums (and sums of squares) of the shown, judged and expected
    losses, with the single-column parents of pair slices."""
    parts = pd.DataFrame(
        {
            "shown": losses.shown,
            "shown2": losses.shown**2,
            "judged": losses.judged,
            "judged2": losses.judged**2,
            "expected": losses.expected if losses.expected is not None else 0.0,
        }
    ).dropna()
    grouped = parts.groupby([keys.loc[parts.index, c] for c in columns], observed=True)
    stats = grouped.sum().join(grouped.size().rename("support")).reset_index()
    values = list(stats[columns].itertuples(index=False, name=None))
    stats["slice"] = [slice_name(columns, v) for v in values]
    stats["parents"] = [
        [slice_name([c], (x,)) for c, x in zip(columns, v, strict=True)] if len(columns) > 1 else []
        for v in values
    ]
    stats["columns"] = "&".join(columns)
    return stats.drop(columns=columns)


def welch_worse(
    n1: np.ndarray, s1: np.ndarray, q1: np.ndarray, n: float, s: float, q: float, margin: float = 0.0
) -> np.ndarray:
    """One-sided Welch p-value that a slice's mean loss exceeds the whole's by more than `margin`,
    from counts, sums and sums of squares (the slice is tested against the rest of the data: a gap
    of `margin` to the whole is a gap of margin * n / n_rest to the rest)."""
    from scipy import stats

    n2, s2, q2 = n - n1, s - s1, q - q1
    with np.errstate(divide="ignore", invalid="ignore"):
        m1, m2 = s1 / n1, s2 / n2
        shift = m1 - m2 - margin * n / n2
        v1 = np.clip((q1 - n1 * m1**2) / (n1 - 1), 0, None) / n1
        v2 = np.clip((q2 - n2 * m2**2) / (n2 - 1), 0, None) / n2
        se = np.sqrt(v1 + v2)
        df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
        p = stats.t.sf(shift / se, np.where(np.isfinite(df) & (df > 0), df, 1.0))
    p = np.where(se > 0, p, np.where(shift > 0, 0.0, 1.0))
    return np.where((n1 > 1) & (n2 > 1), p, 1.0)


def binomial_worse(
    errors: np.ndarray, support: np.ndarray, baseline: np.ndarray, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact one-sided p-values that each slice's error rate exceeds its baseline error rate by more than
    `margin`, and the smallest p-value its size allows (every row wrong), which decides whether it is judged.

    The baseline is the error the slice should have: the rate on all the data (classifiers without
    scores) or what the model's scores predict for the slice's rows plus the whole's shortfall from
    its scores. Including the slice in "all the data" errs on the side of quiet.
    """
    from scipy import stats

    rate = np.clip(baseline + margin, 1e-12, 1 - 1e-12)
    k, n = errors.round().astype(int), support.astype(int)
    return stats.binom.sf(k - 1, n, rate), rate**n


def intervals(n: np.ndarray, s: np.ndarray, q: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """95% interval of each slice's metric: Wilson for accuracy, normal approximation for the MAE."""
    mean_loss = s / n
    if metric == "accuracy":
        p = 1 - mean_loss
        centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
        half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
        return centre - half, centre + half
    with np.errstate(invalid="ignore", divide="ignore"):
        half = Z95 * np.sqrt(np.clip((q - n * mean_loss**2) / (n - 1), 0, None) / n)
    return mean_loss - half, mean_loss + half


def slice_auc(data: Outcomes, keys: pd.DataFrame, columns: list[str], min_class: int) -> pd.Series:
    """AUC per slice from within-slice score ranks (Mann-Whitney), where both classes have `min_class` rows."""
    positive = pd.Series(data.positives(data.label), index=data.frame.index)
    groups = [keys[c] for c in columns]
    ranks = data.score.groupby(groups, observed=True).rank()
    per = pd.DataFrame({"pos": positive, "rank_pos": ranks.where(positive, 0.0)}).groupby(
        groups, observed=True
    )
    n1, n = per["pos"].sum(), per["pos"].size()
    n0 = n - n1
    auc = ((per["rank_pos"].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)).where(
        (n1 >= min_class) & (n0 >= min_class)
    )
    names = [slice_name(columns, idx if isinstance(idx, tuple) else (idx,)) for idx in auc.index]
    return pd.Series(auc.to_numpy(dtype=float), index=names)


def slice_table(data: Outcomes, columns: list[str], limits: SlicesThresholds) -> pd.DataFrame:
    """Every single-column and pair slice: support, metric with interval, the model's expected accuracy,
    gap to overall, adjusted p-value, and whether it is flagged; worst first."""
    keys = group_labels(data.frame, columns, limits.max_values, limits.numeric_bins)
    losses = row_losses(data)
    valid = pd.DataFrame({"shown": losses.shown, "judged": losses.judged}).dropna()
    n, j, jq = float(len(valid)), float(valid["judged"].sum()), float((valid["judged"] ** 2).sum())
    overall_shown, overall_judged = float(valid["shown"].mean()), j / n
    groupings = [[c] for c in columns] + [list(pair) for pair in combinations(columns, 2)]
    stats = pd.concat([group_stats(losses, keys, g) for g in groupings], ignore_index=True)
    n1 = stats["support"].to_numpy(float)
    low, high = intervals(n1, stats["shown"].to_numpy(float), stats["shown2"].to_numpy(float), losses.metric)
    to_metric = (lambda x: 1 - x) if losses.metric == "accuracy" else (lambda x: x)
    stats["metric"] = losses.metric
    stats["value"] = to_metric(stats["shown"] / n1)
    stats["ci_low"], stats["ci_high"] = low, high
    stats["expected_sum"] = stats["expected"]
    stats["expected"] = to_metric(stats["expected"] / n1) if losses.expected is not None else np.nan
    stats["overall"] = to_metric(overall_shown)
    stats["overall_shortfall"] = overall_judged if losses.expected is not None else np.nan
    stats["gap"] = stats["judged"] / n1 - overall_judged
    min_gap = material_gap(limits, losses.metric, overall_shown)
    margin = limits.test_margin_share * min_gap
    if losses.metric == "accuracy":
        expected_error = (
            stats["expected_sum"].to_numpy(float) / n1 + overall_judged
            if losses.expected is not None
            else np.full(len(stats), overall_shown)
        )
        p, best = binomial_worse(stats["shown"].to_numpy(float), n1, expected_error, margin)
        stats["tested"] = (best <= limits.alpha) & (n1 < n)
    else:
        judged, judged2 = stats["judged"].to_numpy(float), stats["judged2"].to_numpy(float)
        p = welch_worse(n1, judged, judged2, n, j, jq, margin=margin)
        stats["tested"] = (n1 >= 2) & (n - n1 >= 2)
    tested = stats["tested"].to_numpy()
    stats["p_value"] = np.where(tested, p, np.nan)
    stats["q_value"] = significance.adjust(stats["p_value"].to_numpy(float))
    stats["flagged"] = stats["tested"] & (stats["gap"] >= min_gap) & (stats["q_value"] <= limits.alpha)
    stats["flagged"] = most_specific(stats, min_gap)
    stats["min_gap"] = min_gap
    stats["auc"] = np.nan
    if data.task == "binary" and data.score is not None:
        auc = pd.concat([slice_auc(data, keys, g, limits.auc_min_class_rows) for g in groupings])
        stats["auc"] = stats["slice"].map(auc)
    stats["role"] = data.role
    ordered = stats.sort_values(["flagged", "gap"], ascending=[False, False], kind="stable")
    dropped = ["shown", "shown2", "judged", "judged2", "expected_sum", "parents"]
    return ordered.drop(columns=dropped).reset_index(drop=True)


def most_specific(stats: pd.DataFrame, min_gap: float) -> pd.Series:
    """Flags that name the slice which best explains each problem.

    A pair under a flagged single-column slice stays flagged only when the problem is the
    intersection: the pair is worse than that parent by at least `min_gap` and holds at least
    CONCENTRATION of the parent's excess loss (gap x support). Then the pair is named and the parents
    it explains are not; otherwise the parent is named, and its pairs, which merely inherit its
    problem, stay in the table for drilling down."""
    excess = stats["gap"] * stats["support"]
    single = stats["parents"].str.len() == 0
    chosen = stats["flagged"] & single
    parent_gap = dict(zip(stats.loc[chosen, "slice"], stats.loc[chosen, "gap"], strict=True))
    parent_excess = dict(zip(stats.loc[chosen, "slice"], excess[chosen], strict=True))
    keep, explained = pd.Series(True, index=stats.index), set()
    for i in stats.index[stats["flagged"] & ~single]:
        parents = [p for p in stats.at[i, "parents"] if p in parent_gap]
        if all(
            stats.at[i, "gap"] >= parent_gap[p] + min_gap and excess[i] >= CONCENTRATION * parent_excess[p]
            for p in parents
        ):
            explained.update(parents)
        else:
            keep[i] = False
    return stats["flagged"] & keep & ~stats["slice"].isin(explained)


def finding_message(row) -> str:
    """What the slice scored, against what was expected of it, and what to do."""
    name = "Accuracy" if row.metric == "accuracy" else "MAE"
    head = (
        f"{name} is {row.value:.3f} (95% CI {row.ci_low:.3f}-{row.ci_high:.3f}) on {row.slice} "
        f"({row.support:,} rows of {row.role} data)"
    )
    if np.isfinite(row.expected):
        against = (
            f", where the model's own scores promise {row.expected:.3f}: a shortfall {row.gap:.3f} larger "
            f"than on the data as a whole (overall accuracy {row.overall:.3f})"
        )
    else:
        against = f" against {row.overall:.3f} overall"
    return f"{head}{against}: investigate this segment before relying on the model there."


def findings(frame: pd.DataFrame, limits: SlicesThresholds, severity: str) -> list[Finding]:
    """One performance finding per flagged slice, worst first, at most `max_findings`; observed is the
    slice's gap in loss to the whole, the threshold the policy's material gap."""
    return [
        CHECK.finding(
            row.slice,
            severity,
            finding_message(row),
            observed=float(row.gap),
            threshold=float(row.min_gap),
            evidence=EVIDENCE,
        )
        for row in frame[frame["flagged"]].head(limits.max_findings).itertuples(index=False)
    ]


def summary(frame: pd.DataFrame, data: Outcomes, limits: SlicesThresholds, shown: int = 10) -> str:
    """Worst slices first, with what was evaluated and how slices were judged."""
    metric = frame["metric"].iloc[0]
    calibrated = frame["expected"].notna().any()
    basis = (
        "its accuracy falls short of what the model's own scores promise for its rows by at least "
        f"{limits.min_gap_accuracy} more than overall"
        if calibrated
        else (
            f"its accuracy is at least {limits.min_gap_accuracy} below overall"
            if metric == "accuracy"
            else f"its MAE is at least {limits.min_relative_gap_mae:.0%} above overall"
        )
    )
    test = (
        "an exact binomial test of its error count"
        if metric == "accuracy"
        else "a one-sided Welch test against the rest of the data"
    )
    head = (
        f"**{int(frame['flagged'].sum())} slice(s) flagged** of {int(frame['tested'].sum())} judged "
        f"on {data.role} data ({data.rows:,} labelled rows); {metric} "
        f"overall {frame['overall'].iloc[0]:.3f}. A slice is flagged when {basis}, and {test} excludes gaps "
        f"below {limits.test_margin_share:.0%} of that (Benjamini-Hochberg q <= {limits.alpha} over the judged "
        "slices); a slice is judged when its size could show such a gap at all. A pair is "
        "named instead of its single-column parents only when it holds most of their shortfall."
    )
    cols = ["slice", "support", "value", "ci_low", "ci_high", "expected", "gap", "q_value", "auc", "flagged"]
    worst = frame[frame["tested"]].head(shown)[[c for c in cols if c != "expected" or calibrated]]
    return f"{head}\n\nWorst slices:\n\n{table(worst.rename(columns={'value': metric}))}"


def run(inputs: Inputs) -> Section:
    """Slice performance on current data when labelled, else reference."""
    section = Section("slices", "Slice performance")
    requested = inputs.record.tag_list("assurance.slices")
    if not requested:
        return section.skip("no slice columns: the version has no assurance.slices tag")
    try:
        data = outcomes(inputs, labelled=True)
    except Unavailable as exc:
        return section.skip(f"slice performance needs labelled, scored data: {exc}")
    if not data.rows:
        return section.skip(f"{data.role} data has no rows with both a label and a prediction")
    columns = present_columns(
        section,
        requested,
        data.frame,
        "assurance.slices",
        TAG_COLUMN,
        inputs.policy.severity(TAG_COLUMN),
    )
    if not columns:
        return section
    limits = inputs.policy.thresholds.slices
    frame = slice_table(data, columns, limits)
    section.tables["slices"] = frame
    section.findings += findings(frame, limits, inputs.policy.severity(CHECK))
    section.summary = summary(frame, data, limits)
    section.metrics = {
        "slices_tested": int(frame["tested"].sum()),
        "slices_flagged": int(frame["flagged"].sum()),
        "overall": float(frame["overall"].iloc[0]),
        "worst_gap": float(frame.loc[frame["tested"], "gap"].max()) if frame["tested"].any() else 0.0,
        "rows": data.rows,
    }
    return section
