"""Group fairness for each protected attribute: selection rate, TPR, FPR and calibration per group.

Disparities are judged as effect sizes against the policy: the demographic parity ratio (lowest over
highest selection rate, the four-fifths rule), the equalized-odds difference (largest gap in TPR or
FPR between groups) and the spread of per-group calibration gaps. Groups too small to estimate a
rate are reported but not judged, so one tiny group cannot raise or hide a finding. Everything is a
pandas groupby: Fairlearn's MetricFrame gives the same numbers (the tests check it) at 200x the cost.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from assurance.checks.rows import Z95, Outcomes, Unavailable, group_labels, outcomes, present_columns
from assurance.domain.checks import CheckSpec
from assurance.domain.findings import Finding
from assurance.domain.values import Inputs, Section
from assurance.policy.thresholds import FairnessThresholds
from assurance.reporting.markdown import table

DEMOGRAPHIC_PARITY = CheckSpec(
    "fairness.demographic_parity",
    "fairness",
    "The lowest group selection rate is below the policy's share of the highest (four-fifths rule).",
    "high",
)
EQUALIZED_ODDS = CheckSpec(
    "fairness.equalized_odds",
    "fairness",
    "True or false positive rates differ between groups by more than the policy allows.",
    "high",
)
CALIBRATION = CheckSpec(
    "fairness.calibration",
    "fairness",
    "Scores over- or under-state the observed rate for some groups more than for others.",
    "medium",
)
TAG_COLUMN = CheckSpec(
    "fairness.tag_column_missing",
    "documentation",
    "A protected attribute named in assurance.protected is missing from the data.",
    "medium",
)
CHECKS: tuple[CheckSpec, ...] = (DEMOGRAPHIC_PARITY, EQUALIZED_ODDS, CALIBRATION, TAG_COLUMN)
EVIDENCE = "fairness.parquet"
MAX_GROUPS = 50


def group_rates(data: Outcomes, attribute: str, limits: FairnessThresholds) -> pd.DataFrame:
    """One row per group of `attribute`: support, selection rate, TPR, FPR, mean score, observed rate,
    calibration gap, and which of them are judged (enough rows, positives and negatives)."""
    groups = group_labels(data.frame, [attribute], MAX_GROUPS, 5)[attribute]
    parts = pd.DataFrame({"group": groups, "selected": data.positives(data.prediction)})
    if data.label is not None:
        actual = data.positives(data.label)
        parts["positive"] = actual
        parts["tp"] = parts["selected"] & actual
        parts["fp"] = parts["selected"] & ~actual
    if data.score is not None:
        parts["score"] = data.score
    grouped = parts.groupby("group", observed=True)
    rates = pd.DataFrame({"support": grouped.size(), "selection_rate": grouped["selected"].mean()})
    if data.label is not None:
        sums = grouped[["positive", "tp", "fp"]].sum()
        rates["positives"] = sums["positive"]
        rates["tpr"] = sums["tp"] / sums["positive"].where(sums["positive"] > 0)
        negatives = rates["support"] - sums["positive"]
        rates["fpr"] = sums["fp"] / negatives.where(negatives > 0)
        rates["observed_rate"] = grouped["positive"].mean()
    else:
        rates["positives"] = rates["tpr"] = rates["fpr"] = rates["observed_rate"] = np.nan
    rates["mean_score"] = grouped["score"].mean() if data.score is not None else np.nan
    rates["calibration_gap"] = rates["mean_score"] - rates["observed_rate"]
    rates["judged"] = rates["support"] >= limits.min_support
    rates["tpr_judged"] = rates["judged"] & (rates["positives"] >= limits.min_class_support)
    rates["fpr_judged"] = rates["judged"] & (
        rates["support"] - rates["positives"] >= limits.min_class_support
    )
    rates = rates.reset_index()
    rates.insert(0, "attribute", attribute)
    rates.insert(2, "subject", attribute + "=" + rates["group"].astype(str))
    rates["group"] = rates["group"].astype(str)
    rates["role"] = data.role
    return rates


def extreme_group(rates: pd.DataFrame, column: str, judged: pd.Series, lowest: bool) -> pd.Series:
    """The judged group with the lowest (or highest) `column`: the four-fifths rule names the group with
    the lowest selection rate, and equalized odds the one with the lowest TPR or the highest FPR."""
    candidates = rates[judged]
    return candidates.loc[candidates[column].idxmin() if lowest else candidates[column].idxmax()]


def _spread(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.max() - values.min()) if len(values) >= 2 else np.nan


def disparities(rates: pd.DataFrame) -> dict[str, float]:
    """Demographic parity ratio, TPR/FPR gaps, equalized-odds difference and calibration spread over judged groups."""
    judged = rates[rates["judged"]]
    top = judged["selection_rate"].max() if len(judged) >= 2 else np.nan
    tpr_gap = _spread(rates.loc[rates["tpr_judged"], "tpr"])
    fpr_gap = _spread(rates.loc[rates["fpr_judged"], "fpr"])
    return {
        "groups": len(rates),
        "groups_judged": len(judged),
        "demographic_parity_ratio": float(judged["selection_rate"].min() / top)
        if top and top > 0
        else np.nan,
        "tpr_difference": tpr_gap,
        "fpr_difference": fpr_gap,
        "equalized_odds_difference": float(np.nanmax([tpr_gap, fpr_gap]))
        if np.isfinite([tpr_gap, fpr_gap]).any()
        else np.nan,
        "calibration_difference": _spread(judged["calibration_gap"]),
    }


def beyond_noise(worst: pd.Series, best: pd.Series, rate: str, count: str) -> bool:
    """Whether two groups' rates differ by more than twice the standard error of their difference, so a
    gap between small groups that chance alone explains raises nothing."""
    p1, p2 = float(worst[rate]), float(best[rate])
    n1, n2 = _count(worst, count), _count(best, count)
    se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return abs(p1 - p2) > Z95 * se


def _count(group: pd.Series, count: str) -> float:
    """Rows a group's rate is estimated on: all rows, its positives or its negatives."""
    if count == "negatives":
        return float(group["support"] - group["positives"])
    return float(group[count])


def parity_finding(
    rates: pd.DataFrame, ratio: float, data: Outcomes, limits: FairnessThresholds, policy
) -> list[Finding]:
    """Demographic parity: the group with the lowest selection rate, when the ratio is below the limit."""
    if not np.isfinite(ratio) or ratio >= limits.min_demographic_parity_ratio:
        return []
    low = extreme_group(rates, "selection_rate", rates["judged"], lowest=True)
    high = extreme_group(rates, "selection_rate", rates["judged"], lowest=False)
    if not beyond_noise(low, high, "selection_rate", "support"):
        return []
    return [
        DEMOGRAPHIC_PARITY.finding(
            low["subject"],
            policy.severity(DEMOGRAPHIC_PARITY),
            (
                f"The model selects {low['subject']} at {low['selection_rate']:.1%} and {high['subject']} at "
                f"{high['selection_rate']:.1%} on {data.role} data (ratio {ratio:.2f}, below "
                f"{limits.min_demographic_parity_ratio}): review whether {low['subject']} is treated unequally."
            ),
            observed=ratio,
            threshold=limits.min_demographic_parity_ratio,
            evidence=EVIDENCE,
        )
    ]


def odds_finding(
    rates: pd.DataFrame, summary: dict[str, float], data: Outcomes, limits: FairnessThresholds, policy
) -> list[Finding]:
    """Equalized odds: of the TPR and FPR gaps over the limit and beyond noise, the larger, naming the
    group with the lowest TPR or the highest FPR."""
    candidates = []
    for rate, count in (("tpr", "positives"), ("fpr", "negatives")):
        spread = summary[f"{rate}_difference"]
        if not np.isfinite(spread) or spread <= limits.max_equalized_odds_difference:
            continue
        worst = extreme_group(rates, rate, rates[f"{rate}_judged"], lowest=rate == "tpr")
        best = extreme_group(rates, rate, rates[f"{rate}_judged"], lowest=rate != "tpr")
        if beyond_noise(worst, best, rate, count):
            candidates.append((spread, rate, worst, best))
    if not candidates:
        return []
    spread, rate, worst, best = max(candidates, key=lambda c: c[0])
    return [
        EQUALIZED_ODDS.finding(
            worst["subject"],
            policy.severity(EQUALIZED_ODDS),
            (
                f"The {'true' if rate == 'tpr' else 'false'} positive rate is {worst[rate]:.3f} for "
                f"{worst['subject']} against {best[rate]:.3f} for {best['subject']} on {data.role} data "
                f"(difference {spread:.3f}, limit {limits.max_equalized_odds_difference}): the model's errors "
                f"fall unequally on {worst['subject']}."
            ),
            observed=spread,
            threshold=limits.max_equalized_odds_difference,
            evidence=EVIDENCE,
        )
    ]


def calibration_finding(
    rates: pd.DataFrame, spread: float, limits: FairnessThresholds, policy
) -> list[Finding]:
    """Calibration: the group whose scores miss its observed rate the most, when gaps differ too much."""
    if not np.isfinite(spread) or spread <= limits.max_calibration_difference:
        return []
    judged = rates[rates["judged"]]
    worst = judged.loc[judged["calibration_gap"].abs().idxmax()]
    subject, gap = worst["subject"], float(worst["calibration_gap"])
    return [
        CALIBRATION.finding(
            subject,
            policy.severity(CALIBRATION),
            (
                f"Scores for {subject} {'over' if gap > 0 else 'under'}state the observed rate by {abs(gap):.3f}, "
                f"and calibration gaps differ between groups by {spread:.3f} (limit "
                f"{limits.max_calibration_difference}): the same score does not mean the same risk across groups."
            ),
            observed=spread,
            threshold=limits.max_calibration_difference,
            evidence=EVIDENCE,
        )
    ]


def findings(
    rates: pd.DataFrame, summary: dict[str, float], data: Outcomes, limits: FairnessThresholds, policy
) -> list[Finding]:
    """Findings for one attribute whose disparities pass the policy's limits, each naming a group."""
    return [
        *parity_finding(rates, summary["demographic_parity_ratio"], data, limits, policy),
        *odds_finding(rates, summary, data, limits, policy),
        *calibration_finding(rates, summary["calibration_difference"], limits, policy),
    ]


def report(rates: pd.DataFrame, summaries: pd.DataFrame, data: Outcomes) -> str:
    """The per-attribute disparity table first, then the per-group rates."""
    label_note = "" if data.label is not None else " Labels are absent, so only selection rates are shown."
    head = f"Fairness on {data.role} data ({data.rows:,} rows); groups below the minimum support are shown but not judged.{label_note}"
    groups = rates[
        [
            "subject",
            "support",
            "selection_rate",
            "tpr",
            "fpr",
            "mean_score",
            "observed_rate",
            "calibration_gap",
            "judged",
        ]
    ]
    return f"{head}\n\n{table(summaries)}\n\nPer group:\n\n{table(groups)}"


def run(inputs: Inputs) -> Section:
    """Fairness per protected attribute, on labelled current data when there is some, else reference."""
    section = Section("fairness", "Fairness")
    requested = inputs.record.tag_list("assurance.protected")
    if not requested:
        return section.skip("no protected attributes: the version has no assurance.protected tag")
    if inputs.predictions is None or inputs.predictions.task != "binary":
        task = inputs.predictions.task if inputs.predictions is not None else "unknown"
        return section.skip(f"fairness metrics need a binary classifier; this model's task is {task}")
    try:
        data = outcomes(inputs, labelled=True)
    except Unavailable as labelled_reason:
        try:
            data = outcomes(inputs, labelled=False)
        except Unavailable as exc:
            return section.skip(f"fairness needs scored data: {exc}")
        section.skip(f"TPR, FPR and calibration need labels ({labelled_reason}); selection rates only")
    attributes = present_columns(
        section,
        requested,
        data.frame,
        "assurance.protected",
        TAG_COLUMN,
        inputs.policy.severity(TAG_COLUMN),
    )
    if not attributes:
        return section
    limits = inputs.policy.thresholds.fairness
    all_rates, summaries = [], []
    for attribute in attributes:
        rates = group_rates(data, attribute, limits)
        summary = disparities(rates)
        section.findings += findings(rates, summary, data, limits, inputs.policy)
        all_rates.append(rates)
        summaries.append({"attribute": attribute, **summary})
    rates = pd.concat(all_rates, ignore_index=True)
    summary_frame = pd.DataFrame(summaries)
    section.tables["fairness"] = rates
    section.tables["fairness_summary"] = summary_frame
    section.summary = report(rates, summary_frame, data)
    metrics = {
        "attributes": len(attributes),
        "min_demographic_parity_ratio": summary_frame["demographic_parity_ratio"].min(),
        "max_equalized_odds_difference": summary_frame["equalized_odds_difference"].max(),
        "rows": data.rows,
    }
    section.metrics = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
    return section
