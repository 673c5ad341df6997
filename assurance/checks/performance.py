"""Performance: the model's metrics recomputed from its own predictions, with bootstrap intervals.

Reference (the holdout) says how good the model was when validated; current says how good it is now
when labels have arrived, and is estimated from calibrated scores when they have not (binary
classifiers; see `assurance.estimation`). A worsening of current vs reference is a finding only when
it exceeds the policy's tolerance and is beyond noise: a one-sided test on the bootstrap standard
error of the change, Benjamini-Hochberg over the metrics watched (they move together, and eight 95%
intervals side by side give a false alarm in one run of twenty). A realized value beyond a floor or
ceiling is a finding when its bootstrap interval lies beyond it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from assurance.checks import estimation, metrics, significance
from assurance.checks.metrics import LABELS, Labelled
from assurance.checks.rows import Outcomes, Unavailable, label_issue, labelled_arrays, role_outcomes
from assurance.domain.checks import CheckSpec
from assurance.domain.findings import Finding, milder
from assurance.domain.values import Inputs, Section
from assurance.policy.thresholds import PerformanceThresholds
from assurance.reporting.markdown import table

if TYPE_CHECKING:
    from assurance.policy.model import Policy

EVIDENCE = "performance.parquet"
RELIABILITY = "performance_reliability.parquet"
TABLE_COLUMNS = ["dataset", "metric", "value", "ci_low", "ci_high", "n", "estimated"]
ROLES = ("reference", "current")
# fixed seeds make the evidence repeatable; distinct ones keep the two datasets' resamples independent
SEEDS = {"reference": 0, "current": 1}

DEGRADATION = CheckSpec(
    "performance.degradation",
    "performance",
    "A metric on labelled current data is worse than on reference beyond the policy's tolerance, and significantly so.",
    "high",
)
ESTIMATED_DEGRADATION = CheckSpec(
    "performance.estimated_degradation",
    "performance",
    "A metric estimated without labels (CBPE) on current data is worse than on reference beyond tolerance.",
    "medium",
)
FLOOR = CheckSpec(
    "performance.floor",
    "performance",
    "A metric is below the policy's floor on reference or current data.",
    "high",
)
CEILING = CheckSpec(
    "performance.ceiling",
    "performance",
    "An error metric (log loss, calibration error, ...) is above the policy's ceiling on reference or current data.",
    "medium",
)
LABEL_UNUSABLE = CheckSpec(
    "performance.label_unusable",
    "performance",
    "The label column holds no values, or values of a kind the model does not predict (text for a regression "
    "model, values outside a classifier's classes), so performance on that data cannot be measured. "
    "Current labels that are all missing (not delivered yet) are one severity level lower.",
    "medium",
)
CHECKS: tuple[CheckSpec, ...] = (DEGRADATION, ESTIMATED_DEGRADATION, FLOOR, CEILING, LABEL_UNUSABLE)


@dataclass
class Evaluation:
    """One dataset's metrics: point values, bootstrap replicates, and whether they are estimated."""

    dataset: str
    rows: int
    point: dict[str, float]
    replicates: dict[str, np.ndarray]
    estimated: bool = False
    note: str = ""

    def table_rows(self, confidence: float) -> list[dict]:
        rows = []
        for name, value in self.point.items():
            low, high = metrics.interval(self.replicates.get(name, np.array([])), confidence)
            rows.append(
                dict(
                    dataset=self.dataset,
                    metric=name,
                    value=value,
                    ci_low=low,
                    ci_high=high,
                    n=self.rows,
                    estimated=self.estimated,
                )
            )
        return rows


def evaluate(
    data: Labelled,
    dataset: str,
    limits: PerformanceThresholds,
    estimated: bool = False,
    names: tuple[str, ...] = (),
) -> Evaluation:
    """Point values (all rows) and bootstrap replicates of the task's metrics, or only `names`."""
    point = data.point(limits.calibration_bins)
    if names:
        point = {k: v for k, v in point.items() if k in names}
    replicates = (
        metrics.bootstrap(
            data,
            point,
            limits.bootstrap_samples,
            limits.bootstrap_max_rows,
            SEEDS[dataset],
            limits.calibration_bins,
        )
        if limits.bootstrap_samples
        else {}
    )
    return Evaluation(dataset, data.rows, point, replicates, estimated)


def worsening_pvalue(reference: Evaluation, current: Evaluation, metric: str) -> tuple[float, float, float]:
    """The worsening of `metric`, its one-sided p-value from the bootstrap standard error of the change,
    and the change's replicates' spread (NaN without replicates: the effect size alone then decides)."""
    from scipy import stats

    worse = float(metrics.worsening(metric, reference.point[metric], current.point[metric]))
    change = metrics.worsening(
        metric, reference.replicates.get(metric, np.array([])), current.replicates.get(metric, np.array([]))
    )
    finite = np.asarray(change, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2:
        return worse, float("nan"), float("nan")
    se = float(finite.std(ddof=1))
    p = float(stats.norm.sf(worse / se)) if se > 0 else float(worse <= 0)
    return worse, p, se


def _worsening_finding(
    reference: Evaluation,
    current: Evaluation,
    metric: str,
    q_value: float,
    limits: PerformanceThresholds,
    policy: Policy,
) -> Finding | None:
    before, after = reference.point[metric], current.point[metric]
    if metric in limits.max_drop:
        tolerance = limits.max_drop[metric]
    else:
        tolerance = limits.max_relative_drop[metric] * abs(before)
    worse = float(metrics.worsening(metric, before, after))
    if not worse > tolerance or (np.isfinite(q_value) and q_value > limits.alpha):
        return None
    low, high = metrics.interval(
        metrics.worsening(
            metric,
            reference.replicates.get(metric, np.array([])),
            current.replicates.get(metric, np.array([])),
        ),
        limits.confidence,
    )
    check = ESTIMATED_DEGRADATION if current.estimated else DEGRADATION
    how = " (estimated without labels)" if current.estimated else ""
    interval_text = (
        f"; {limits.confidence:.0%} interval of the change {low:.3f} to {high:.3f}, q = {q_value:.2g}"
        if np.isfinite(low)
        else ""
    )
    limit = before - tolerance if metric in metrics.HIGHER_IS_BETTER else before + tolerance
    return check.finding(
        metric,
        policy.severity(check),
        f"{LABELS.get(metric, metric)} went from {before:.3f} on reference to {after:.3f} on current{how}, "
        f"worse by {worse:.3f}, beyond the tolerance {tolerance:.3f}{interval_text}; investigate input drift "
        "and consider retraining.",
        observed=after,
        threshold=limit,
        evidence=EVIDENCE,
    )


def judged(evaluation: Evaluation, metric: str, limits: PerformanceThresholds) -> bool:
    """Calibration error is biased upward on few rows (each bin's rate is noisy), so it is judged only
    with the policy's `calibration_min_rows`; every other metric is judged whenever it is computed."""
    return metric != "calibration_error" or evaluation.rows >= limits.calibration_min_rows


def degradation_findings(
    reference: Evaluation, current: Evaluation, limits: PerformanceThresholds, policy: Policy
) -> list[Finding]:
    """Findings for metrics that worsened from reference to current beyond tolerance and beyond noise."""
    watched = [
        m
        for m in current.point
        if m in reference.point
        and (m in limits.max_drop or m in limits.max_relative_drop)
        and judged(reference, m, limits)
        and judged(current, m, limits)
    ]
    p = [worsening_pvalue(reference, current, m)[1] for m in watched]
    q = significance.adjust(p)
    found = [
        _worsening_finding(reference, current, m, qm, limits, policy)
        for m, qm in zip(watched, q, strict=True)
    ]
    return [f for f in found if f is not None]


def limit_findings(evaluation: Evaluation, limits: PerformanceThresholds, policy: Policy) -> list[Finding]:
    """Findings for realized metrics below their floor or above their ceiling."""
    findings = []
    for metric, value in evaluation.point.items():
        if not judged(evaluation, metric, limits):
            continue
        floor, ceiling = limits.floors.get(metric), limits.ceilings.get(metric)
        low, high = metrics.interval(evaluation.replicates.get(metric, np.array([])), limits.confidence)
        if floor is not None and value < floor and not high >= floor:
            check, limit, word = FLOOR, floor, "below the floor"
        elif ceiling is not None and value > ceiling and not low <= ceiling:
            check, limit, word = CEILING, ceiling, "above the ceiling"
        else:
            continue
        findings.append(
            check.finding(
                f"{metric} on {evaluation.dataset}",
                policy.severity(check),
                f"{LABELS.get(metric, metric)} on {evaluation.dataset} data is {value:.3f}, {word} of {limit:g} "
                "the policy sets; the model may not be fit for use until this is remedied.",
                observed=value,
                threshold=limit,
                evidence=EVIDENCE,
            )
        )
    return findings


def _estimate_current(
    current: Outcomes, reference: Labelled | None, limits: PerformanceThresholds
) -> Evaluation:
    """CBPE estimate of current performance, calibrated on the labelled reference when there is one."""
    if current.task != "binary" or current.score is None:
        raise Unavailable(
            "current data has no labels, and label-free estimation needs a binary classifier's scores"
        )
    keep = current.score.notna() & current.prediction.notna()
    if int(keep.sum()) < limits.min_rows:
        raise Unavailable(
            f"current data has fewer than {limits.min_rows} scored rows to estimate performance on"
        )
    ref_score = reference.score if reference is not None else None
    calibration = estimation.fit_calibration(ref_score, reference.truth if reference is not None else None)
    data = estimation.expected_outcomes(
        current.positives(current.prediction[keep]), current.score[keep].to_numpy(dtype=float), calibration
    )
    evaluation = evaluate(data, "current", limits, estimated=True, names=estimation.ESTIMATED_METRICS)
    evaluation.note = f"scores calibrated by {calibration.method}"
    return evaluation


def _evaluate_role(
    inputs: Inputs, role: str, reference: Labelled | None, limits: PerformanceThresholds
) -> tuple[Evaluation, Labelled | None]:
    """Realized metrics of one dataset, or the CBPE estimate for current data without labels."""
    out = role_outcomes(inputs, role)
    if out.label is None and role == "current":
        return _estimate_current(out, reference, limits), None
    data = labelled_arrays(out)
    if data.rows < limits.min_rows:
        raise Unavailable(
            f"{role} data has {data.rows} labelled rows, fewer than the policy's {limits.min_rows}"
        )
    return evaluate(data, role, limits), data


def _metric_table(evaluations: list[Evaluation], confidence: float) -> pd.DataFrame:
    rows = [row for e in evaluations for row in e.table_rows(confidence)]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS).astype({"n": int, "estimated": bool})


def _side_by_side(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per metric, one column per dataset, each cell "value [low, high]" for the report."""

    def cell(row: pd.Series) -> str:
        interval = f" [{row.ci_low:.3f}, {row.ci_high:.3f}]" if np.isfinite(row.ci_low) else ""
        return f"{row.value:.3f}{interval}"

    labelled_ = frame.assign(
        column=frame["dataset"] + np.where(frame["estimated"], " (estimated)", ""),
        text=frame.apply(cell, axis=1),
    )
    wide = labelled_.pivot(index="metric", columns="column", values="text").fillna("")
    rows = [m for m in LABELS if m in wide.index]
    return wide.loc[rows, list(dict.fromkeys(labelled_["column"]))].rename(index=LABELS).reset_index()


def _summary(
    findings: list[Finding],
    evaluations: dict[str, Evaluation],
    frame: pd.DataFrame,
    limits: PerformanceThresholds,
    plotted: bool,
) -> str:
    parts = []
    if findings:
        parts.append("**Performance concerns:**\n\n" + "\n".join(f"- {f.message}" for f in findings))
    elif "reference" in evaluations and "current" in evaluations:
        parts.append("No metric worsened from reference to current beyond the policy's tolerance.")
    current = evaluations.get("current")
    if current is not None and current.estimated:
        parts.append(
            "Current data has no labels yet: current performance is **estimated** from the model's scores "
            f"(confidence-based, as NannyML's CBPE; {current.note}). The estimate assumes the inputs moved but "
            "the relation between score and outcome did not; it cannot see concept drift."
        )
    if len(frame):
        parts.append(
            f"Values with {limits.confidence:.0%} bootstrap intervals ({limits.bootstrap_samples} resamples of at most "
            f"{limits.bootstrap_max_rows} rows, scaled to the full size; estimates also draw each label from its "
            "calibrated probability):\n\n" + table(_side_by_side(frame))
        )
    if plotted:
        parts.append("![reliability_diagram](plots/reliability_diagram.png)")
    return "\n\n".join(parts)


def _section_metrics(evaluations: dict[str, Evaluation]) -> dict[str, float]:
    return {
        f"{name}_{e.dataset}{'_estimated' if e.estimated else ''}": value
        for e in evaluations.values()
        for name, value in e.point.items()
        if np.isfinite(value)
    }


def _reliability_plot(frame: pd.DataFrame) -> bytes:
    from assurance.reporting import plots

    shown = frame[frame["count"] > 0]
    series = {
        name: (g["mean_predicted"].to_numpy(), g["observed_rate"].to_numpy())
        for name, g in shown.groupby("dataset", sort=False)
    }
    return plots.lines(
        series, "Reliability diagram", "mean predicted probability", "observed positive rate", diagonal=True
    )


def label_findings(inputs: Inputs) -> list[Finding]:
    """One finding per dataset whose label column cannot measure the model (`rows.label_issue`)."""
    findings = []
    severity = inputs.policy.severity(LABEL_UNUSABLE)
    for role in ROLES:
        dataset = inputs.dataset(role)
        issue = label_issue(dataset, inputs.predictions) if dataset is not None and dataset.ok else None
        if issue is None:
            continue
        undelivered = role == "current" and dataset.frame[dataset.label].isna().all()
        findings.append(
            LABEL_UNUSABLE.finding(
                role,
                milder(severity) if undelivered else severity,
                f"The {role} data's labels cannot be used: {issue}. Performance on {role} data was "
                + (
                    "not measured (only estimated, where the model allows it): deliver usable labels."
                    if role == "current"
                    else "not measured: fix the label column or the `assurance.label` tag."
                ),
                evidence=EVIDENCE,
            )
        )
    return findings


def run(inputs: Inputs) -> Section:
    """Metrics with intervals on reference and current (estimated when unlabelled), findings, tables, plot."""
    section = Section(key="performance", title="Performance")
    limits = inputs.policy.thresholds.performance
    evaluations: dict[str, Evaluation] = {}
    reliability_parts = []
    reference: Labelled | None = None
    for role in ROLES:
        try:
            evaluations[role], data = _evaluate_role(inputs, role, reference, limits)
        except Unavailable as exc:
            section.skip(f"{role} performance: {exc}")
            continue
        if role == "reference":
            reference = data
        if data is not None and data.score is not None:
            part = metrics.reliability(data.score, data.truth, limits.calibration_bins)
            reliability_parts.append(part.assign(dataset=role)[["dataset", *part.columns]])
    for evaluation in evaluations.values():
        if not judged(evaluation, "calibration_error", limits) and "calibration_error" in evaluation.point:
            section.skip(
                f"calibration error on {evaluation.dataset} data is reported, not judged: {evaluation.rows} rows, "
                f"fewer than the {limits.calibration_min_rows} it needs to be unbiased enough"
            )
    findings = label_findings(inputs)
    if "reference" in evaluations and "current" in evaluations:
        findings += degradation_findings(
            evaluations["reference"], evaluations["current"], limits, inputs.policy
        )
    for evaluation in evaluations.values():
        if not evaluation.estimated:
            findings += limit_findings(evaluation, limits, inputs.policy)
    frame = _metric_table(list(evaluations.values()), limits.confidence)
    section.findings = findings
    section.tables["performance"] = frame
    if reliability_parts:
        reliability = pd.concat(reliability_parts, ignore_index=True)
        section.tables["performance_reliability"] = reliability
        section.plots["reliability_diagram"] = _reliability_plot(reliability)
    section.summary = _summary(findings, evaluations, frame, limits, bool(reliability_parts))
    section.metrics = _section_metrics(evaluations)
    return section
