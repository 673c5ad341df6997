"""Attribution tables (global and local) and attribution drift between two sets of importances."""

from __future__ import annotations

import numpy as np
import pandas as pd

from assurance.domain.checks import CheckSpec
from assurance.domain.findings import Finding, fmt
from assurance.domain.values import Inputs
from assurance.policy.thresholds import ExplanationsThresholds

CHECK = CheckSpec(
    "explainability.attribution_drift",
    "explainability",
    "Feature attributions (mean |SHAP|) rank the features very differently between reference and "
    "current data, or against the previous version of the model.",
    "medium",
)
CHECKS: tuple[CheckSpec, ...] = (CHECK,)
EVIDENCE = "explanations.parquet"


def ranked(importance: pd.Series) -> pd.DataFrame:
    """Mean |SHAP|, share of the total and rank (1 = most important) per feature."""
    total = importance.sum()
    return pd.DataFrame(
        {
            "mean_abs_shap": importance,
            "share": importance / total if total > 0 else 0.0,
            "rank": importance.rank(ascending=False, method="min").astype(int),
        }
    )


def importance_table(
    reference: pd.Series, current: pd.Series | None, previous: pd.Series | None
) -> pd.DataFrame:
    """explanations.parquet: one row per feature, most important (on reference) first."""
    out = pd.DataFrame(index=reference.index)
    for role, series in (("reference", reference), ("current", current), ("previous", previous)):
        if series is None:
            continue
        part = ranked(series.reindex(reference.index.union(series.index)).fillna(0.0))
        out = out.join(part.add_suffix(f"_{role}"), how="outer")
    out.index.name = "feature"
    return out.sort_values("rank_reference").reset_index()


def attribution_drift(
    table_: pd.DataFrame, base: str, other: str, limits: ExplanationsThresholds
) -> tuple[float, list[str]]:
    """Spearman correlation of importances between two columns, and the top-k features that moved far
    (at least `max_rank_move` places and `min_share_change` of attribution)."""
    a, b = table_[f"mean_abs_shap_{base}"], table_[f"mean_abs_shap_{other}"]
    comparable = len(table_) >= 4 and a.nunique() > 1 and b.nunique() > 1
    rho = float(a.corr(b, method="spearman")) if comparable else np.nan
    top = (table_[f"rank_{base}"] <= limits.top_k) | (table_[f"rank_{other}"] <= limits.top_k)
    moved = (table_[f"rank_{other}"] - table_[f"rank_{base}"]).abs() >= limits.max_rank_move
    shifted = (table_[f"share_{other}"] - table_[f"share_{base}"]).abs() >= limits.min_share_change
    return rho, table_.loc[top & moved & shifted, "feature"].tolist()


def attribution_drift_findings(
    table_: pd.DataFrame,
    base: str,
    other: str,
    label: str,
    prefix: str,
    limits: ExplanationsThresholds,
    severity: str,
) -> list[Finding]:
    """Attribution-drift findings from the `base` to the `other` importances: one per top feature that
    moved far, and one for the whole ranking when its correlation is too low."""
    rho, moved = attribution_drift(table_, base, other, limits)
    rows = table_.set_index("feature")
    out = []
    for feature in moved:
        r = rows.loc[feature]
        was, now = int(r[f"rank_{base}"]), int(r[f"rank_{other}"])
        out.append(
            CHECK.finding(
                f"{prefix}{feature}",
                severity,
                (
                    f"{feature} moved from rank {was} to {now} in attribution ({r[f'share_{base}']:.0%} to "
                    f"{r[f'share_{other}']:.0%} of mean |SHAP|) {label}: check whether and why the model now "
                    "relies on it differently."
                ),
                observed=abs(now - was),
                threshold=limits.max_rank_move,
                evidence=EVIDENCE,
            )
        )
    if np.isfinite(rho) and rho < limits.min_rank_correlation:
        out.append(
            CHECK.finding(
                f"{prefix}ranking",
                severity,
                (
                    f"The feature importance ranking {label} has a Spearman correlation of {rho:.2f} "
                    f"(limit {limits.min_rank_correlation}): the model's reasoning has shifted."
                ),
                observed=rho,
                threshold=limits.min_rank_correlation,
                evidence=EVIDENCE,
            )
        )
    return out


def previous_importance(inputs: Inputs, lookback: int) -> tuple[str, pd.Series] | None:
    """The newest earlier version's reference importances from the evidence store, if any was published."""
    try:
        version = int(inputs.record.version)
    except ValueError:
        return None
    for earlier in range(version - 1, max(version - 1 - lookback, 0), -1):
        frame = inputs.store.latest_table(inputs.record.name, str(earlier), "explanations")
        if frame is not None and {"feature", "mean_abs_shap_reference"} <= set(frame.columns):
            return str(earlier), frame.set_index("feature")["mean_abs_shap_reference"].astype(float)
    return None


def top_scores(inputs: Inputs, frame: pd.DataFrame, role: str, k: int) -> pd.Series:
    """Scores of the `k` highest-scoring rows: P(positive), or the predicted value for regressors
    (multiclass models have no single score, so no rows)."""
    scores = inputs.predictions.for_role(role) if inputs.predictions is not None else None
    if scores is None or not scores.ok or len(scores.frame) != len(frame) or k <= 0:
        return pd.Series(dtype=float)
    column = "score" if "score" in scores.frame.columns else "prediction"
    if column == "prediction" and inputs.predictions.task != "regression":
        return pd.Series(dtype=float)
    values = pd.to_numeric(pd.Series(scores.frame[column].to_numpy(), index=frame.index), errors="coerce")
    return values.nlargest(k)


def local_table(values: pd.DataFrame, frame: pd.DataFrame, scores: pd.Series) -> pd.DataFrame:
    """explanations_local.parquet: for each top row, every feature's value and SHAP, largest |SHAP| first."""
    long = values.rename_axis("row").reset_index().melt(id_vars="row", var_name="feature", value_name="shap")
    long["value"] = [
        fmt(frame.at[r, f]) if f in frame.columns else ""
        for r, f in zip(long["row"], long["feature"], strict=True)
    ]
    long["score"] = long["row"].map(scores)
    long["row_rank"] = long["row"].map({r: i + 1 for i, r in enumerate(values.index)})
    long["row"] = long["row"].astype(str)
    long = long.assign(_abs=long["shap"].abs()).sort_values(["row_rank", "_abs"], ascending=[True, False])
    return long.drop(columns="_abs")[["row_rank", "row", "score", "feature", "value", "shap"]].reset_index(
        drop=True
    )
