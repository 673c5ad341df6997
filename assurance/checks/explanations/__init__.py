"""Explanations with SHAP: global importance, local explanations of the highest-scoring rows, and
attribution drift between reference and current data and against the previous version.

Tree models (native sklearn, LightGBM, XGBoost, and the last step of an sklearn Pipeline explained on
its transformed inputs, one-hot columns summed back to their source feature) get the fast
TreeExplainer; anything else, pyfunc models included, gets a PermutationExplainer over integer-coded
features with a small background. Both run in batches on a seeded sample until the policy's time
budget is spent, so cost is bounded whatever the data size.
"""

from __future__ import annotations

import time

import pandas as pd

from assurance.checks.explanations.attributions import (
    CHECK,
    CHECKS,
    AttributionNoise,
    attribution_drift_findings,
    importance_table,
    local_table,
    previous_importance,
    top_scores,
)
from assurance.checks.explanations.explainers import (
    Attributions,
    Explainer,
    NotExplainable,
    explain_within,
    make_explainer,
)
from assurance.checks.explanations.report import PLOT, importance_plot, metrics, report
from assurance.checks.rows import describe_error, feature_columns, sample
from assurance.domain.values import Inputs, Section
from assurance.policy.thresholds import ExplanationsThresholds

__all__ = ["CHECKS", "run"]


def explain_datasets(
    inputs: Inputs, features: list[str], limits: ExplanationsThresholds, section: Section
) -> tuple[Explainer, dict[str, Attributions], pd.Series]:
    """Reference and current attributions within the budget (reference gets half, current what is left),
    the current sample led by its highest-scoring rows so they are always explained. The budget starts
    once the explainer is built and warmed up; that setup is timed separately. Current data that cannot
    be explained is skipped with its reason; reference data that cannot be raises NotExplainable."""
    reference = inputs.reference.frame
    current = inputs.current.frame if inputs.current is not None and inputs.current.ok else None
    if current is not None and not set(features) <= set(current.columns):
        current = None
    rows = {"reference": sample(reference, limits.sample_rows, seed=1)}
    top = pd.Series(dtype=float)
    if current is not None:
        top = top_scores(inputs, current, "current", limits.local_rows)
        rest = sample(current, limits.sample_rows, seed=1).drop(index=top.index, errors="ignore")
        rows["current"] = pd.concat([current.loc[top.index], rest])
    background = sample(reference, limits.background_rows, seed=2)
    started = time.perf_counter()
    explainer = make_explainer(
        model=inputs.model, features=features, background=background, rows=pd.concat(rows.values())
    )
    explainer.setup_seconds = time.perf_counter() - started
    deadline = time.perf_counter() + limits.time_budget_seconds
    attributions = {"reference": explain_within(explainer, rows["reference"], limits.time_budget_seconds / 2)}
    if current is not None:
        try:
            attributions["current"] = explain_within(
                explainer, rows["current"], max(deadline - time.perf_counter(), 0.0)
            )
        except NotExplainable as exc:
            section.skip(f"current data could not be explained: {exc}")
    return explainer, attributions, top


def run(inputs: Inputs) -> Section:
    """Global and local SHAP explanations, and attribution drift, within the policy's time budget."""
    section = Section("explanations", "Explanations")
    if inputs.model is None:
        return section.skip("no loaded model to explain")
    if inputs.reference is None or not inputs.reference.ok:
        return section.skip("explanations need reference data")
    features = feature_columns(inputs, inputs.reference.frame)
    if not features:
        return section.skip("the model's features are not in the reference data")
    limits = inputs.policy.thresholds.explanations
    try:
        explainer, attributions, top = explain_datasets(inputs, features, limits, section)
    except NotExplainable as exc:
        return section.skip(f"the model cannot be explained: {exc}")
    current = attributions["current"].values if "current" in attributions else None
    previous = None
    try:
        previous = previous_importance(inputs, limits.previous_lookback) if inputs.store is not None else None
        if previous is None:
            section.skip("no explanations of an earlier version were found in the evidence store")
    except Exception as exc:  # noqa: BLE001 - unreadable earlier evidence only costs this comparison
        section.skip(f"earlier explanations could not be read: {describe_error(exc)}")
    table_ = importance_table(
        attributions["reference"].mean_abs,
        current.drop(index=top.index, errors="ignore").abs().mean() if current is not None else None,
        previous[1] if previous else None,
    )
    section.tables["explanations"] = table_
    severity = inputs.policy.severity(CHECK)
    noise = AttributionNoise.of(attributions["reference"].values[features])
    local = None
    if current is not None:
        section.findings += attribution_drift_findings(
            table_, "reference", "current", "from reference to current data", "", limits, severity, noise
        )
        local = local_table(current.loc[current.index.intersection(top.index)], inputs.current.frame, top)
        section.tables["explanations_local"] = local
    else:
        section.skip("no usable current data: no reference-vs-current drift and no local explanations")
    if previous is not None:
        label = f"from version {previous[0]} to this version (on reference data)"
        section.findings += attribution_drift_findings(
            table_, "previous", "reference", label, "previous:", limits, severity, noise
        )
    section.plots[PLOT] = importance_plot(
        table_.set_index("feature")["mean_abs_shap_reference"], "Mean |SHAP| on reference data"
    )
    section.summary = report(table_, explainer, attributions, local)
    section.metrics = metrics(table_, explainer, attributions, limits)
    return section
