"""Attribution tables (global and local) and attribution drift between two sets of importances.

Importances come from a sample of explained rows, so they move by chance: a top feature's share of
attribution is judged against its bootstrap standard error, and the ranking against the correlation
two halves of the same rows reach, before either can be a finding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from assurance.checks import significance
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


@dataclass(frozen=True)
class AttributionNoise:
    """How much importances move by chance, from the rows that were explained.

    `share_se` is the bootstrap standard error of each feature's share of mean |SHAP| on reference
    rows; `rank_correlation_floor` the lowest Spearman correlation between the importances of two
    random halves of those rows, which is the ranking correlation sampling alone can produce (halves
    are noisier than the full samples compared, so the floor errs on the side of quiet).
    """

    share_se: pd.Series
    rank_correlation_floor: float

    @classmethod
    def of(cls, values: pd.DataFrame, samples: int = 200, seed: int = 0) -> AttributionNoise:
        magnitude = np.abs(values.to_numpy(float))
        rows = len(magnitude)
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(rows, np.full(rows, 1.0 / rows), size=samples) / rows
        shares = _shares(weights @ magnitude)
        floor = np.nan
        if rows >= 8 and values.shape[1] >= 4:
            halves = [rng.permutation(rows) < rows // 2 for _ in range(50)]
            rhos = [
                pd.Series(magnitude[h].mean(axis=0)).corr(
                    pd.Series(magnitude[~h].mean(axis=0)), method="spearman"
                )
                for h in halves
            ]
            floor = float(np.nanmin(rhos)) if np.isfinite(rhos).any() else np.nan
        return cls(pd.Series(shares.std(axis=0, ddof=1), index=values.columns), floor)


def _shares(means: np.ndarray) -> np.ndarray:
    totals = means.sum(axis=1, keepdims=True)
    return np.divide(means, totals, out=np.zeros_like(means), where=totals > 0)


def attribution_drift(
    table_: pd.DataFrame,
    base: str,
    other: str,
    limits: ExplanationsThresholds,
    noise: AttributionNoise | None = None,
) -> tuple[float, list[str]]:
    """Spearman correlation of importances between two columns, and the top-k features that moved far
    (at least `max_rank_move` places and `min_share_change` of attribution) and beyond chance: a z-test
    of the share change on its bootstrap standard error (both sides are samples: sqrt(2) of one side's),
    Benjamini-Hochberg over the top-k features. Without `noise` the effect sizes alone decide."""
    from scipy import stats

    a, b = table_[f"mean_abs_shap_{base}"], table_[f"mean_abs_shap_{other}"]
    comparable = len(table_) >= 4 and a.nunique() > 1 and b.nunique() > 1
    rho = float(a.corr(b, method="spearman")) if comparable else np.nan
    top = (table_[f"rank_{base}"] <= limits.top_k) | (table_[f"rank_{other}"] <= limits.top_k)
    moved = (table_[f"rank_{other}"] - table_[f"rank_{base}"]).abs() >= limits.max_rank_move
    change = (table_[f"share_{other}"] - table_[f"share_{base}"]).abs()
    shifted = change >= limits.min_share_change
    if noise is not None:
        se = table_["feature"].map(noise.share_se).to_numpy(float) * np.sqrt(2)
        moved_by = change.to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(se > 0, 2 * stats.norm.sf(moved_by / se), np.where(moved_by > 0, 0.0, 1.0))
        q = significance.adjust(np.where(top, p, np.nan))
        shifted = shifted & (q <= limits.alpha)
    return rho, table_.loc[top & moved & shifted, "feature"].tolist()


def ranking_shifted(rho: float, limits: ExplanationsThresholds, noise: AttributionNoise | None) -> bool:
    """The ranking correlation is below the policy's limit and below what two halves of one sample show."""
    if not np.isfinite(rho) or rho >= limits.min_rank_correlation:
        return False
    return (
        noise is None or not np.isfinite(noise.rank_correlation_floor) or rho < noise.rank_correlation_floor
    )


def attribution_drift_findings(
    table_: pd.DataFrame,
    base: str,
    other: str,
    label: str,
    prefix: str,
    limits: ExplanationsThresholds,
    severity: str,
    noise: AttributionNoise | None = None,
) -> list[Finding]:
    """Attribution-drift findings from the `base` to the `other` importances: one per top feature that
    moved far beyond chance, and one for the whole ranking when its correlation is too low and lower
    than sampling alone produces."""
    rho, moved = attribution_drift(table_, base, other, limits, noise)
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
                    f"{r[f'share_{other}']:.0%} of mean |SHAP|, beyond sampling noise) {label}: check whether "
                    "and why the model now relies on it differently."
                ),
                observed=abs(now - was),
                threshold=limits.max_rank_move,
                evidence=EVIDENCE,
            )
        )
    if ranking_shifted(rho, limits, noise):
        floor = (
            f"; two halves of the same rows agree at {noise.rank_correlation_floor:.2f} or better"
            if noise
            else ""
        )
        out.append(
            CHECK.finding(
                f"{prefix}ranking",
                severity,
                (
                    f"The feature importance ranking {label} has a Spearman correlation of {rho:.2f} "
                    f"(limit {limits.min_rank_correlation}{floor}): the model's reasoning has shifted."
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
