"""Reproducibility: do the metrics the owner logged on the source run hold on the reference data?

Owners log metrics under many spellings ("val_auc", "test/f1_score", "accuracy_score",
"root_mean_squared_error"). Names are normalised to the metrics this package computes; each one
is recomputed from the model's predictions on the reference (holdout) data and compared within the
policy's tolerance, absolute for bounded metrics and relative for scale-dependent errors. Metrics
that cannot be recomputed are listed as not checked with the reason.

Metrics logged on training data (`training_auc`, `train_accuracy`, MLflow autolog's `training_*`) cannot be
reproduced on a holdout, but they say how much better the model did on the rows it learned from: a holdout
metric worse than its training value by more than the policy's overfitting gap, and beyond the holdout's
bootstrap noise, is overfitting.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from assurance.checks import metrics, significance
from assurance.checks.metrics import Labelled
from assurance.checks.rows import Unavailable, labelled_arrays, role_outcomes
from assurance.domain.checks import CheckSpec
from assurance.domain.findings import Finding
from assurance.domain.values import Inputs, Section
from assurance.reporting.markdown import table

if TYPE_CHECKING:
    from assurance.policy.model import Policy

EVIDENCE = "reproducibility.parquet"
TABLE_COLUMNS = ["metric", "canonical", "logged", "recomputed", "gap", "tolerance", "status", "reason"]
MISMATCH = CheckSpec(
    "reproducibility.metric_mismatch",
    "reproducibility",
    "A metric logged on the version's source run differs from its value recomputed on the reference data "
    "beyond the policy's tolerance.",
    "high",
)
OVERFITTING = CheckSpec(
    "performance.overfitting",
    "performance",
    "A metric on the reference holdout is worse than its value logged on training data by more than the "
    "policy's overfitting gap, beyond the holdout's sampling noise.",
    "medium",
)
CHECKS: tuple[CheckSpec, ...] = (MISMATCH, OVERFITTING)
OVERFITTING_EVIDENCE = "overfitting.parquet"
OVERFITTING_COLUMNS = [
    "metric",
    "training_metric",
    "training",
    "holdout",
    "gap",
    "limit",
    "p_value",
    "q_value",
]
EVALUATION_PREFIXES = ("validation_", "valid_", "val_", "holdout_", "test_", "evaluation_", "eval_")
TRAINING_PREFIXES = ("training_", "train_")
ALIASES = {
    "acc": "accuracy",
    "auc": "roc_auc",
    "rocauc": "roc_auc",
    "auroc": "roc_auc",
    "f_1": "f1",
    "average_precision": "pr_auc",
    "precision_recall_auc": "pr_auc",
    "prauc": "pr_auc",
    "aucpr": "pr_auc",
    "logloss": "log_loss",
    "brier_score_loss": "brier",
    "ece": "calibration_error",
    "expected_calibration_error": "calibration_error",
    "mean_absolute_error": "mae",
    "root_mean_squared_error": "rmse",
    "mean_squared_error": "mse",
    "r_squared": "r2",
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _unprefixed(key: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return ALIASES.get(key.removesuffix("_score"), key.removesuffix("_score"))


def canonical_name(name: str) -> tuple[str | None, str]:
    """The metric a logged name means (or None) and, when None, why it is not checked."""
    key = _key(name)
    if key.startswith(TRAINING_PREFIXES):
        return None, "logged on training data: compared with the holdout for overfitting instead"
    key = _unprefixed(key, EVALUATION_PREFIXES)
    return (key, "") if key else (None, "empty metric name")


def training_metric(name: str) -> str | None:
    """The metric a name logged on training data means, or None when the name is not a training metric."""
    key = _key(name)
    return (_unprefixed(key, TRAINING_PREFIXES) or None) if key.startswith(TRAINING_PREFIXES) else None


def overfitting_table(
    logged: dict[str, float], holdout: dict[str, float], replicates: dict[str, np.ndarray], policy: Policy
) -> pd.DataFrame:
    """One row per training metric the holdout also has: gap (how much worse the holdout is), the material
    limit, and the one-sided p-value, from the holdout's bootstrap standard error, of the gap exceeding the
    policy's share of the limit (some optimism on training rows is normal), BH-adjusted.

    The training value is taken as exact: it rests on the training rows, usually many more than the
    holdout's, and its own noise would only shrink the gap's significance."""
    from scipy import stats

    limits = policy.thresholds.reproducibility
    rows = []
    for name, value in sorted(logged.items()):
        canonical = training_metric(name)
        if canonical not in holdout or not (math.isfinite(value) and math.isfinite(holdout[canonical])):
            continue
        gap = float(metrics.worsening(canonical, float(value), holdout[canonical]))
        relative = canonical in limits.relative_for
        limit = limits.overfit_relative_gap * abs(value) if relative else limits.overfit_gap
        spread = np.asarray(replicates.get(canonical, np.array([])), dtype=float)
        spread = spread[np.isfinite(spread)]
        se = float(spread.std(ddof=1)) if spread.size > 1 else math.nan
        excess = gap - limits.overfit_margin_share * limit
        p = (
            float(stats.norm.sf(excess / se))
            if se > 0
            else (math.nan if math.isnan(se) else float(excess <= 0))
        )
        rows.append((canonical, name, float(value), holdout[canonical], gap, limit, p))
    frame = pd.DataFrame(rows, columns=OVERFITTING_COLUMNS[:-1])
    frame["q_value"] = significance.adjust(frame["p_value"].tolist()) if len(frame) else []
    return frame


def overfitting_findings(frame: pd.DataFrame, policy: Policy) -> list[Finding]:
    alpha = policy.thresholds.performance.alpha
    flagged = frame[(frame["gap"] > frame["limit"]) & ~(frame["q_value"] > alpha)]
    return [
        OVERFITTING.finding(
            str(row.metric),
            policy.severity(OVERFITTING),
            f"{metrics.LABELS.get(row.metric, row.metric)} is {row.training:.3f} on training data (logged as "
            f"{row.training_metric}) but {row.holdout:.3f} on the reference holdout, worse by {row.gap:.3f}, beyond "
            f"the overfitting limit {row.limit:.3f} (q = {row.q_value:.2g}): the model learned its training rows "
            "more than the pattern; regularise, simplify or retrain on more data.",
            observed=float(row.gap),
            threshold=float(row.limit),
            evidence=OVERFITTING_EVIDENCE,
        )
        for row in flagged.itertuples()
    ]


def compare(logged: dict[str, float], recomputed: dict[str, float], policy: Policy) -> pd.DataFrame:
    """One row per logged metric: canonical name, both values, gap, tolerance, status and reason."""
    limits = policy.thresholds.reproducibility
    absolute, relative, relative_for = limits.tolerance, limits.relative_tolerance, set(limits.relative_for)
    rows = []
    for name, value in sorted(logged.items()):
        canonical, reason = canonical_name(name)
        row = dict(
            metric=name,
            canonical=canonical,
            logged=float(value),
            recomputed=math.nan,
            gap=math.nan,
            tolerance=math.nan,
        )
        if canonical is not None and canonical not in recomputed:
            reason = "not a metric this model's task and outputs allow recomputing"
        elif canonical is not None and not (
            math.isfinite(row["logged"]) and math.isfinite(recomputed[canonical])
        ):
            reason = "the logged or the recomputed value is not a number"
        if reason:
            rows.append({**row, "status": "not_checked", "reason": reason})
            continue
        again = recomputed[canonical]
        tolerance = relative * abs(again) if canonical in relative_for else absolute
        gap = abs(row["logged"] - again)
        status = "mismatch" if gap > tolerance else "match"
        rows.append(
            {**row, "recomputed": again, "gap": gap, "tolerance": tolerance, "status": status, "reason": ""}
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _finding(row: tuple, policy: Policy) -> Finding:
    return MISMATCH.finding(
        str(row.metric),
        policy.severity(MISMATCH),
        (
            f"Logged {row.metric} = {row.logged:.4g} on the source run, but the model scores {row.recomputed:.4g} "
            f"on the reference data (gap {row.gap:.3g} > tolerance {row.tolerance:.3g}): the documented "
            "performance does not reproduce; check which data and code produced the logged value."
        ),
        observed=float(row.recomputed),
        threshold=f"{row.logged:.4g} ± {row.tolerance:.3g}",
        evidence=EVIDENCE,
    )


def _summary(frame: pd.DataFrame) -> str:
    checked = frame[frame["status"] != "not_checked"]
    mismatched = frame[frame["status"] == "mismatch"]
    lead = f"**{len(checked) - len(mismatched)} of {len(checked)} checkable logged metrics reproduce** on the reference data"
    lead += (
        (": mismatched " + ", ".join(f"`{m}`" for m in mismatched["metric"]) + ".")
        if len(mismatched)
        else "."
    )
    skipped = frame[frame["status"] == "not_checked"]
    parts = [lead]
    if len(skipped):
        parts.append(
            "Not checked: " + "; ".join(f"`{r.metric}` ({r.reason})" for r in skipped.itertuples()) + "."
        )
    ordered = frame.assign(_o=frame["status"].map({"mismatch": 0, "match": 1, "not_checked": 2})).sort_values(
        ["_o", "metric"]
    )
    parts.append(table(ordered.drop(columns=["_o", "reason"]), digits=4))
    return "\n\n".join(parts)


def _replicates(data: Labelled, point: dict[str, float], policy: Policy) -> dict[str, np.ndarray]:
    limits = policy.thresholds.performance
    return metrics.bootstrap(
        data, point, limits.bootstrap_samples, limits.bootstrap_max_rows, 0, limits.calibration_bins
    )


def run(inputs: Inputs) -> Section:
    """Recompute every logged metric this package knows on the reference data and compare."""
    section = Section(key="reproducibility", title="Reproducibility")
    logged = inputs.record.logged_metrics or {}
    if not logged:
        return section.skip("the version's source run logged no metrics to reproduce")
    try:
        data = labelled_arrays(role_outcomes(inputs, "reference"))
    except Unavailable as exc:
        return section.skip(f"logged metrics cannot be recomputed: {exc}")
    recomputed = data.point(inputs.policy.thresholds.performance.calibration_bins)
    frame = compare(logged, recomputed, inputs.policy)
    section.tables["reproducibility"] = frame
    section.findings = [
        _finding(row, inputs.policy) for row in frame[frame["status"] == "mismatch"].itertuples()
    ]
    section.summary = _summary(frame)
    if any(training_metric(name) for name in logged):
        overfit = overfitting_table(
            logged, recomputed, _replicates(data, recomputed, inputs.policy), inputs.policy
        )
        section.tables["overfitting"] = overfit
        section.findings += overfitting_findings(overfit, inputs.policy)
        section.summary += "\n\n**Training vs holdout** (overfitting):\n\n" + table(overfit, digits=4)
    section.metrics = {
        "metrics_checked": float((frame["status"] != "not_checked").sum()),
        "metrics_mismatched": float((frame["status"] == "mismatch").sum()),
    }
    return section
