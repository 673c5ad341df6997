"""The explanations section of the report, its plot and its metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from assurance.checks.explanations.attributions import attribution_drift
from assurance.checks.explanations.explainers import Attributions, Explainer
from assurance.policy.thresholds import ExplanationsThresholds
from assurance.reporting.markdown import table

PLOT = "shap_importance"


def importance_plot(importance: pd.Series, title: str) -> bytes:
    from assurance.reporting.plots import bars

    top = importance.sort_values(ascending=False).head(20)
    return bars(list(top.index), list(top.to_numpy()), title, ylabel="mean |SHAP|")


def report(
    table_: pd.DataFrame,
    explainer: Explainer,
    attributions: dict[str, Attributions],
    local: pd.DataFrame | None,
) -> str:
    """Which explainer ran on how many rows, the SHAP plot, the drift table, then the local explanations."""
    lines = [explainer.note] if explainer.note else []
    lines.append(f"Explainer setup took {explainer.setup_seconds:.1f} s (outside the time budget)")
    lines += [
        f"Mean |SHAP| per feature on {role} data: {att.kind} explainer, {len(att.values):,} rows in "
        f"{att.seconds:.1f} s"
        + (
            f" (the time budget ran out after {len(att.values):,} of {att.requested:,} sampled rows)"
            if len(att.values) < att.requested
            else ""
        )
        for role, att in attributions.items()
    ]
    body = "\n".join(f"- {line}" for line in lines)
    shown = [c for c in table_.columns if c.startswith(("feature", "mean_abs_shap", "rank"))]
    parts = [
        body,
        f"![{PLOT}](plots/{PLOT}.png)",
        "Attribution drift (rank 1 = most important):",
        table(table_[shown].head(25)),
    ]
    if local is not None and len(local):
        head = local.groupby("row_rank").head(3)[["row_rank", "row", "score", "feature", "value", "shap"]]
        parts += ["Highest-scoring rows, top three features each:", table(head)]
    return "\n\n".join(parts)


def metrics(
    table_: pd.DataFrame,
    explainer: Explainer,
    attributions: dict[str, Attributions],
    limits: ExplanationsThresholds,
) -> dict[str, float]:
    out: dict[str, float] = {"seconds_setup": round(explainer.setup_seconds, 2)}
    for role, att in attributions.items():
        out[f"rows_explained_{role}"] = len(att.values)
        out[f"seconds_{role}"] = round(att.seconds, 2)
    if "current" in attributions:
        rho = attribution_drift(table_, "reference", "current", limits)[0]
        if np.isfinite(rho):
            out["rank_correlation_current"] = rho
    return out
