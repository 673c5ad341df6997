"""Group fairness for each protected attribute: selection rate, TPR, FPR and calibration per group.

A disparity is a finding when it is material and beyond sampling noise (DESIGN, "How a check
decides"). Material: against the group with the best rate, a selection-rate ratio below the policy's
four-fifths rule, a TPR or FPR difference above the equalized-odds limit, or calibration gaps that
differ by more than the limit. Beyond noise: a two-sided Fisher exact test of the two groups' counts
(a z-test of the calibration gaps), with Benjamini-Hochberg over every comparison of the run. The
best group is the one whose rate is highest at its Wilson lower bound, so a three-row group that
happens to score 100% does not become everyone's yardstick. There is no row cut-off: a small group
with a large, certain gap is found; a small group with a large gap chance explains is reported only.
Everything is a pandas groupby: Fairlearn's MetricFrame gives the same numbers (the tests check it)
at 200x the cost.

With two or more protected attributes, each pair is also judged as one attribute (intersectional
fairness: women under 25 can be treated unequally while women and the under-25s each look fine). A pair's
disparity is reported only when neither of its attributes shows the same kind of disparity alone, so one
problem is named once, where it lives.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from assurance.checks import significance
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
MAX_PAIR_VALUES = 10  # per attribute of a pair: at most 100 intersections
PAIR = " & "


TESTS_COLUMNS = [
    "attribute",
    "metric",
    "subject",
    "against",
    "value",
    "against_value",
    "effect",
    "threshold",
    "material",
    "n",
    "against_n",
    "p_value",
    "q_value",
    "flagged",
]
# (metric, the count it is a rate of, the count of hits, whether higher is better)
RATES = (
    ("selection_rate", "support", "selected", True),
    ("tpr", "positives", "tp", True),
    ("fpr", "negatives", "fp", False),
)


def attribute_groups(data: Outcomes, attributes: tuple[str, ...]) -> tuple[str, pd.Series]:
    """The attribute's name and each row's group: the value of one attribute, or `a=x & b=y` for a pair."""
    if len(attributes) == 1:
        return attributes[0], group_labels(data.frame, list(attributes), MAX_GROUPS, 5)[attributes[0]]
    labels = group_labels(data.frame, list(attributes), MAX_PAIR_VALUES, 5)
    combined = [attribute + "=" + labels[attribute].astype(str) for attribute in attributes]
    return PAIR.join(attributes), combined[0].str.cat(combined[1:], sep=PAIR)


def group_rates(data: Outcomes, attributes: tuple[str, ...]) -> pd.DataFrame:
    """One row per group of one attribute or pair: support, counts, selection rate, TPR, FPR, mean score,
    observed rate and calibration gap (mean score - observed rate), with the variance the gap's test needs."""
    attribute, groups = attribute_groups(data, attributes)
    parts = pd.DataFrame({"group": groups, "selected": data.positives(data.prediction)})
    if data.label is not None:
        actual = data.positives(data.label)
        parts["positive"] = actual
        parts["tp"] = parts["selected"] & actual
        parts["fp"] = parts["selected"] & ~actual
    if data.score is not None:
        parts["score"] = data.score
        parts["score_variance"] = data.score * (1 - data.score)
    grouped = parts.groupby("group", observed=True)
    rates = pd.DataFrame({"support": grouped.size(), "selected": grouped["selected"].sum()})
    rates["selection_rate"] = rates["selected"] / rates["support"]
    if data.label is not None:
        sums = grouped[["positive", "tp", "fp"]].sum()
        rates["positives"], rates["tp"], rates["fp"] = sums["positive"], sums["tp"], sums["fp"]
        rates["negatives"] = rates["support"] - rates["positives"]
        rates["tpr"] = rates["tp"] / rates["positives"].where(rates["positives"] > 0)
        rates["fpr"] = rates["fp"] / rates["negatives"].where(rates["negatives"] > 0)
        rates["observed_rate"] = rates["positives"] / rates["support"]
    else:
        for column in ("positives", "tp", "fp", "negatives", "tpr", "fpr", "observed_rate"):
            rates[column] = np.nan
    rates["mean_score"] = grouped["score"].mean() if data.score is not None else np.nan
    rates["score_variance"] = grouped["score_variance"].sum() if data.score is not None else np.nan
    rates["calibration_gap"] = rates["mean_score"] - rates["observed_rate"]
    rates = rates.reset_index()
    rates.insert(0, "attribute", attribute)
    named = (
        rates["group"].astype(str) if len(attributes) > 1 else attribute + "=" + rates["group"].astype(str)
    )
    rates.insert(2, "subject", named)
    rates["group"] = rates["group"].astype(str)
    rates["role"] = data.role
    return rates


def wilson_low(hits: pd.Series, n: pd.Series) -> pd.Series:
    """Lower end of the 95% Wilson interval: a rate that is high for certain, not by luck of a few rows."""
    p = hits / n
    centre = p + Z95**2 / (2 * n)
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2))
    return (centre - half) / (1 + Z95**2 / n)


def rate_tests(rates: pd.DataFrame, limits: FairnessThresholds) -> list[dict]:
    """Each group against the best-placed group, for selection rate (ratio), TPR and FPR (differences)."""
    from scipy import stats

    rows = []
    for metric, of, hits, higher_is_better in RATES:
        usable = rates[rates[of] > 0]
        if len(usable) < 2:
            continue
        low = wilson_low(usable[hits], usable[of])
        best = usable.loc[
            low.idxmax()
            if higher_is_better
            else (1 - wilson_low(usable[of] - usable[hits], usable[of])).idxmin()
        ]
        for _, group in usable.iterrows():
            if group["subject"] == best["subject"]:
                continue
            if metric == "selection_rate":
                effect = group[metric] / best[metric] if best[metric] > 0 else 1.0
                material = effect < limits.min_demographic_parity_ratio
                threshold = limits.min_demographic_parity_ratio
            else:
                effect = abs(group[metric] - best[metric])
                material = effect > limits.max_equalized_odds_difference
                threshold = limits.max_equalized_odds_difference
            counts = [
                [int(group[hits]), int(group[of] - group[hits])],
                [int(best[hits]), int(best[of] - best[hits])],
            ]
            rows.append(
                {
                    "attribute": group["attribute"],
                    "metric": metric,
                    "subject": group["subject"],
                    "against": best["subject"],
                    "value": float(group[metric]),
                    "against_value": float(best[metric]),
                    "effect": float(effect),
                    "threshold": threshold,
                    "material": bool(material),
                    "n": int(group[of]),
                    "against_n": int(best[of]),
                    "p_value": float(stats.fisher_exact(counts).pvalue),
                }
            )
    return rows


def calibration_tests(rates: pd.DataFrame, limits: FairnessThresholds) -> list[dict]:
    """Each group's calibration gap against the best-calibrated group: a two-sided z-test whose variance
    is what the scores themselves imply for the observed rate (sum of s(1-s) over the group's rows)."""
    from scipy import stats

    usable = rates[rates["calibration_gap"].notna() & (rates["support"] > 0)]
    if len(usable) < 2:
        return []
    variance = usable["score_variance"] / usable["support"] ** 2
    best = usable.loc[(usable["calibration_gap"].abs() + Z95 * np.sqrt(variance)).idxmin()]
    best_variance = float(best["score_variance"]) / float(best["support"]) ** 2
    rows = []
    for i, group in usable.iterrows():
        if group["subject"] == best["subject"]:
            continue
        effect = abs(float(group["calibration_gap"]) - float(best["calibration_gap"]))
        se = np.sqrt(float(variance[i]) + best_variance)
        rows.append(
            {
                "attribute": group["attribute"],
                "metric": "calibration_gap",
                "subject": group["subject"],
                "against": best["subject"],
                "value": float(group["calibration_gap"]),
                "against_value": float(best["calibration_gap"]),
                "effect": effect,
                "threshold": limits.max_calibration_difference,
                "material": bool(effect > limits.max_calibration_difference),
                "n": int(group["support"]),
                "against_n": int(best["support"]),
                "p_value": float(2 * stats.norm.sf(effect / se)) if se > 0 else float(effect == 0),
            }
        )
    return rows


def judge(tests: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """q-values over every comparison of the run, and which comparisons are material and beyond noise."""
    out = tests.copy()
    out["q_value"] = significance.adjust(out["p_value"].to_numpy(float))
    out["flagged"] = out["material"].astype(bool) & (out["q_value"] <= alpha)
    return out


def _spread(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.max() - values.min()) if len(values) >= 2 else np.nan


def disparities(rates: pd.DataFrame) -> dict[str, float]:
    """Demographic parity ratio, TPR/FPR gaps, equalized-odds difference and calibration spread over all
    groups, as measured (the findings come from the tested comparisons, not from these)."""
    top = rates["selection_rate"].max() if len(rates) >= 2 else np.nan
    tpr_gap = _spread(rates["tpr"])
    fpr_gap = _spread(rates["fpr"])
    return {
        "groups": len(rates),
        "demographic_parity_ratio": float(rates["selection_rate"].min() / top) if top and top > 0 else np.nan,
        "tpr_difference": tpr_gap,
        "fpr_difference": fpr_gap,
        "equalized_odds_difference": float(np.nanmax([tpr_gap, fpr_gap]))
        if np.isfinite([tpr_gap, fpr_gap]).any()
        else np.nan,
        "calibration_difference": _spread(rates["calibration_gap"]),
    }


_MESSAGES = {
    "selection_rate": (
        "The model selects {subject} at {value:.1%} and {against} at {against_value:.1%} on {role} data "
        "(ratio {effect:.2f}, below {threshold}; q = {q_value:.2g}): review whether {subject} is treated unequally."
    ),
    "tpr": (
        "The true positive rate is {value:.3f} for {subject} against {against_value:.3f} for {against} on {role} "
        "data (difference {effect:.3f}, limit {threshold}; q = {q_value:.2g}): the model misses more of "
        "{subject}'s positives."
    ),
    "fpr": (
        "The false positive rate is {value:.3f} for {subject} against {against_value:.3f} for {against} on "
        "{role} data (difference {effect:.3f}, limit {threshold}; q = {q_value:.2g}): the model's false alarms "
        "fall unequally on {subject}."
    ),
    "calibration_gap": (
        "Scores for {subject} miss the observed rate by {value:+.3f} against {against_value:+.3f} for "
        "{against} (difference {effect:.3f}, limit {threshold}; q = {q_value:.2g}): the same score does not "
        "mean the same risk across groups."
    ),
}
_CHECK_OF = {"selection_rate": "parity", "tpr": "odds", "fpr": "odds", "calibration_gap": "calibration"}


def findings(tests: pd.DataFrame, role: str, policy) -> list[Finding]:
    """Per attribute and kind of disparity, the largest flagged comparison, naming the disadvantaged group;
    a pair only where neither of its attributes has that kind of disparity alone."""
    checks = {"parity": DEMOGRAPHIC_PARITY, "odds": EQUALIZED_ODDS, "calibration": CALIBRATION}
    flagged = tests[tests["flagged"]].copy()
    if flagged.empty:
        return []
    flagged["kind"] = flagged["metric"].map(_CHECK_OF)
    alone = set(zip(flagged["attribute"], flagged["kind"], strict=True))
    explained = flagged.apply(
        lambda t: PAIR in t["attribute"] and any((a, t["kind"]) in alone for a in t["attribute"].split(PAIR)),
        axis=1,
    )
    flagged = flagged[~explained]
    # a ratio is worse when smaller, differences when larger: rank on one scale
    flagged["severity_order"] = np.where(
        flagged["metric"] == "selection_rate", -flagged["effect"], flagged["effect"]
    )
    found = []
    for (_, kind), group in flagged.groupby(["attribute", "kind"], sort=False):
        worst = group.loc[group["severity_order"].idxmax()]
        check = checks[kind]
        found.append(
            check.finding(
                worst["subject"],
                policy.severity(check),
                _MESSAGES[worst["metric"]].format(role=role, **worst.to_dict()),
                observed=float(worst["effect"]),
                threshold=float(worst["threshold"]),
                evidence=EVIDENCE,
            )
        )
    return found


def report(rates: pd.DataFrame, summaries: pd.DataFrame, tests: pd.DataFrame, data: Outcomes) -> str:
    """The per-attribute disparity table first, then the per-group rates."""
    label_note = "" if data.label is not None else " Labels are absent, so only selection rates are shown."
    head = (
        f"Fairness on {data.role} data ({data.rows:,} rows). Each group is compared with the best-placed group; "
        "a disparity is flagged when it passes the policy's limit and a Fisher exact (or z) test puts it beyond "
        f"chance, Benjamini-Hochberg over all comparisons.{label_note}"
    )
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
        ]
    ]
    shown = tests.sort_values(["flagged", "q_value"], ascending=[False, True]).head(15)
    return (
        f"{head}\n\n{table(summaries)}\n\nPer group:\n\n{table(groups)}\n\nComparisons (most certain first):"
        f"\n\n{table(shown[['metric', 'subject', 'against', 'value', 'against_value', 'effect', 'q_value', 'flagged']])}"
    )


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
    all_rates, summaries, comparisons = [], [], []
    for group in [(a,) for a in attributes] + list(combinations(attributes, 2)):
        rates = group_rates(data, group)
        comparisons += rate_tests(rates, limits) + calibration_tests(rates, limits)
        all_rates.append(rates)
        summaries.append({"attribute": PAIR.join(group), **disparities(rates)})
    tests = judge(pd.DataFrame(comparisons, columns=TESTS_COLUMNS[:-2]), limits.alpha)
    section.findings += findings(tests, data.role, inputs.policy)
    rates = pd.concat(all_rates, ignore_index=True)
    summary_frame = pd.DataFrame(summaries)
    section.tables["fairness"] = rates
    section.tables["fairness_summary"] = summary_frame
    section.tables["fairness_tests"] = tests
    section.summary = report(rates, summary_frame, tests, data)
    metrics = {
        "attributes": len(attributes),
        "min_demographic_parity_ratio": summary_frame["demographic_parity_ratio"].min(),
        "max_equalized_odds_difference": summary_frame["equalized_odds_difference"].max(),
        "rows": data.rows,
    }
    section.metrics = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
    return section
