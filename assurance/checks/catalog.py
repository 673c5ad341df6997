"""The analyses of the per-version graph, in report order.

Each becomes one Dagster asset with one non-blocking asset check per `CheckSpec` it declares.
Adding an analysis means writing a `run(inputs) -> Section` function (heavy imports inside it),
declaring its checks as `CHECKS`, and listing it here; the graph, the findings, the policy's
validation, the report and the evidence pick it up. `needs` names its inputs: the data assets, and
"model" (the version's model) or "champion" (the champion's record and model) which the graph loads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from assurance.domain.checks import CheckSpec
from assurance.domain.errors import describe_error
from assurance.domain.values import Inputs, Section

NEEDS_DATA = ("reference", "current", "predictions")
ANALYSIS_FAILED = CheckSpec(
    "monitoring.analysis_failed",
    "monitoring",
    "The analysis stopped on an unexpected error, so its checks did not run; the rest of the run went on.",
    "high",
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    key: str
    title: str
    description: str
    run: Callable[[Inputs], Section]
    checks: tuple[CheckSpec, ...]
    needs: tuple[str, ...] = NEEDS_DATA
    kinds: tuple[str, ...] = ("pandas",)


def all_analyses() -> list[Analysis]:
    from assurance.checks import (
        challenger,
        change_control,
        documentation,
        drift,
        explanations,
        fairness,
        leakage,
        performance,
        quality,
        reproducibility,
        robustness,
        slices,
    )

    return [
        Analysis(
            key="documentation",
            title="Documentation and tiering",
            description=(
                "Risk tier from the policy (explicit risk_tier tag, else its rules) with the rationale; "
                "the tier's required documents on the source run (present and not a template) and "
                "required tags (owner, use_case, monitoring_url)."
            ),
            run=documentation.run,
            checks=documentation.CHECKS,
            needs=(),
        ),
        Analysis(
            key="change_control",
            title="Change control",
            description=(
                "A version behind a production alias needs approval.ticket, approval.approved_by and "
                "approval.approved_at, dated after its registration and before it was first seen live; "
                "records which version each alias points to at every run. Recorded approvals (assurance "
                "decide) must not predate the evidence, overrule a hold unremarked, or outlive new "
                "critical/high findings or changed data (the data's fingerprints are why it takes them)."
            ),
            run=change_control.run,
            checks=change_control.CHECKS,
            needs=("reference", "current"),
        ),
        Analysis(
            key="data_quality",
            title="Data quality",
            description=(
                "Great Expectations suite learned from the reference data (schema from the model "
                "signature, missingness, numeric ranges, known categories, duplicate rows), run on "
                "both reference and current data."
            ),
            run=quality.run,
            checks=quality.CHECKS,
            needs=("reference", "current"),
            kinds=("great_expectations", "pandas"),
        ),
        Analysis(
            key="drift",
            title="Drift",
            description=(
                "Per-feature drift of current vs reference: a material effect size (normed Wasserstein for "
                "numbers, Jensen-Shannon for categories; Evidently ValueDrift, or the same formulas in numpy at "
                "scale) that is also beyond sampling noise (Cramér-von Mises or chi-square, Benjamini-Hochberg "
                "over the run's columns); dataset drift share, and drift of the model's scores and of the label."
            ),
            run=drift.run,
            checks=drift.CHECKS,
            needs=("reference", "current", "predictions"),
            kinds=("evidently", "pandas"),
        ),
        Analysis(
            key="performance",
            title="Performance",
            description=(
                "Metrics recomputed from the model's predictions on reference and labelled current data "
                "with bootstrap intervals and a reliability table; label-free estimate (CBPE) for current "
                "data without labels; worsening beyond the policy's tolerance, floors and ceilings."
            ),
            run=performance.run,
            checks=performance.CHECKS,
            needs=("reference", "current", "predictions"),
            kinds=("scikit-learn", "pandas"),
        ),
        Analysis(
            key="challenger",
            title="Challenger comparison",
            description=(
                "The version against its champion (behind the policy's champion alias, else the newest earlier "
                "version in production), both scoring the same labelled rows: metrics with paired bootstrap "
                "intervals of the difference, slices, calibration and agreement side by side; worse when a gap "
                "is material and beyond noise (Benjamini-Hochberg over the metrics)."
            ),
            run=challenger.run,
            checks=challenger.CHECKS,
            needs=(*NEEDS_DATA, "champion"),
            kinds=("mlflow", "pandas"),
        ),
        Analysis(
            key="reproducibility",
            title="Reproducibility",
            description=(
                "Every metric logged on the version's source run, recomputed from the model's predictions "
                "on the reference data and compared within the policy's tolerance."
            ),
            run=reproducibility.run,
            checks=reproducibility.CHECKS,
            needs=("reference", "predictions"),
        ),
        Analysis(
            key="slices",
            title="Slice performance",
            description=(
                "Accuracy (and AUC) or MAE per value of each assurance.slices column and per pair of them, "
                "with support and 95% intervals; a slice of any size is flagged when it is worse than the whole "
                "by the policy's material gap and an exact test (Welch for MAE) puts that beyond chance after a "
                "Benjamini-Hochberg correction."
            ),
            run=slices.run,
            checks=slices.CHECKS,
        ),
        Analysis(
            key="fairness",
            title="Fairness",
            description=(
                "Selection rate, TPR, FPR and calibration per group of each assurance.protected column and of "
                "each pair of them (a pair is named only when neither column alone shows the disparity); "
                "each group against the best-placed one on demographic parity ratio, TPR/FPR difference and "
                "calibration gap, flagged when past the policy's limit and beyond chance (Fisher exact or z, "
                "Benjamini-Hochberg over all comparisons)."
            ),
            run=fairness.run,
            checks=fairness.CHECKS,
        ),
        Analysis(
            key="leakage",
            title="Leakage",
            description=(
                "Out-of-fold single-feature AUC or correlation with the label, a feature dominating SHAP "
                "attribution, rows shared between reference and current beyond chance, ID-like features."
            ),
            run=leakage.run,
            checks=leakage.CHECKS,
            needs=(*NEEDS_DATA, "model"),
            kinds=("shap", "pandas"),
        ),
        Analysis(
            key="explanations",
            title="Explanations",
            description=(
                "SHAP global importance (tree explainer, or a budgeted permutation explainer) on sampled "
                "reference and current rows, local explanations of the highest-scoring rows, and attribution "
                "drift against current data and the previous version."
            ),
            run=explanations.run,
            checks=explanations.CHECKS,
            needs=(*NEEDS_DATA, "model"),
            kinds=("shap", "pandas"),
        ),
        Analysis(
            key="robustness",
            title="Robustness",
            description=(
                "Prediction flip rate and score change per feature under small numeric noise, injected "
                "missing values and categories swapped for the most frequent one, on a sample."
            ),
            run=robustness.run,
            checks=robustness.CHECKS,
            needs=(*NEEDS_DATA, "model"),
            kinds=("scikit-learn", "pandas"),
        ),
    ]


def run_isolated(analysis: Analysis, inputs: Inputs) -> Section:
    """The analysis's section, or, when it raises, a section holding one `monitoring.analysis_failed` finding.

    One analysis meeting data it cannot handle must not cost the version its other evidence: the findings,
    the recommendation and the report still come out, and the failure is on the record instead of a
    traceback. The traceback goes to the log for whoever fixes the analysis.
    """
    try:
        return analysis.run(inputs)
    except Exception as exc:  # noqa: BLE001 - isolating every failure is the point
        log.exception("analysis %s failed on %s", analysis.key, inputs.record.key)
        return failed_section(analysis, exc, inputs)


def failed_section(analysis: Analysis, exc: Exception, inputs: Inputs) -> Section:
    error = describe_error(exc)
    section = Section(analysis.key, analysis.title)
    section.findings.append(
        ANALYSIS_FAILED.finding(
            analysis.key,
            inputs.policy.severity(ANALYSIS_FAILED),
            f"The {analysis.title.lower()} analysis stopped on an error ({error}), so its checks did not run "
            "and the version's evidence lacks them: report it with the run's log, which holds the traceback.",
            observed=error,
        )
    )
    section.summary = f"**This analysis did not complete:** {error}. None of its checks ran."
    return section.skip(f"{analysis.title} did not run to completion: {error}")


def all_checks() -> tuple[CheckSpec, ...]:
    """Every declared check: the analyses', the model outputs' (`predictions.*`), the tier's coverage, the
    analysis failure and the MLflow run's (`monitoring.mlflow_run`, raised when the evidence is published),
    each once."""
    from assurance.checks import coverage, predictions
    from assurance.evidence import mlflow_run

    specs = [
        *(spec for analysis in all_analyses() for spec in analysis.checks),
        *predictions.CHECKS,
        *coverage.CHECKS,
        *mlflow_run.CHECKS,
        ANALYSIS_FAILED,
    ]
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"checks declared twice: {', '.join(duplicates)}")
    return tuple(specs)


def check_name(finding_check: str) -> str:
    """Dagster check names allow only letters, digits and underscores."""
    return finding_check.replace(".", "_")
