"""The policy's `thresholds:` as typed models, one per analysis: each analysis reads `policy.thresholds.<group>`.

The values live in `default_policy.yaml` only; these models say what each key means and which values
it takes, and refuse unknown keys. Adding a threshold is adding it to the YAML and a field here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    field_validator,
)

Share = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(gt=0)]


class PolicyPart(BaseModel):
    """A part of the policy: unknown keys are errors, values are checked at load and frozen after it."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_metrics(names: Iterable[str]) -> None:
    """Metric names the package computes; a misspelled one would otherwise never be judged."""
    from assurance.checks.metrics import HIGHER_IS_BETTER, LOWER_IS_BETTER

    known = (*HIGHER_IS_BETTER, *LOWER_IS_BETTER)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; known: {', '.join(known)}")


class DocumentationThresholds(PolicyPart):
    min_words: NonNegativeInt = Field(
        description="A required document with fewer words (outside headings, code and comments) is not written yet."
    )


class QualityThresholds(PolicyPart):
    missing_rate_increase: Share = Field(
        description="Share of rows missing a value, above the reference's own share, that is a finding."
    )
    out_of_range_rate: Share = Field(
        description="Share of numeric values outside the reference range [min, max] widened by range_margin."
    )
    range_margin: NonNegativeFloat = Field(
        description="Widening of the reference range on each side, as a share of its width."
    )
    unseen_category_rate: Share = Field(description="Share of categorical values never seen in reference.")
    duplicate_rate: Share = Field(description="Share of exact duplicate rows.")
    max_categories: PositiveInt = Field(
        description="Columns with at most this many distinct values (or non-numeric) are categorical."
    )
    sample_rows: PositiveInt = Field(
        description="Above this many rows, quality checks run on a seeded sample of this size."
    )
    max_category_share: Share = Field(
        description="Text columns with more distinct values than max_categories are still categorical when "
        "their distinct values are at most this share of their values (ids and free text are not)."
    )
    escalation_factor: Annotated[float, Field(gt=0)] = Field(
        description="A rate finding is one severity level worse when its excess is this many times the tolerance."
    )
    alpha: Share = Field(
        description="False discovery rate of the noise tests over every rate measured on current data in one "
        "run (Benjamini-Hochberg): a rate beyond its tolerance is a finding only when values of one "
        "population would rarely show it at these sizes."
    )


class DriftThresholds(PolicyPart):
    numeric_method: str = Field(
        description="Evidently's drift method for numeric columns (effect size, e.g. wasserstein: the "
        "shift in reference standard deviations)."
    )
    numeric_threshold: NonNegativeFloat = Field(
        description="A numeric column drifts when its statistic is at least this."
    )
    categorical_method: str = Field(
        description="Evidently's drift method for categorical columns (e.g. jensenshannon distance, natural log)."
    )
    categorical_threshold: NonNegativeFloat = Field(
        description="A categorical column drifts when its statistic is at least this."
    )
    categorical_max_distinct: NonNegativeInt = Field(
        description="Numeric columns with at most this many distinct values are compared as categories."
    )
    share_threshold: Share = Field(
        description="Dataset drift when more than this share of the model's features drifted."
    )
    alpha: Share = Field(
        description="False discovery rate of the noise tests (Cramér-von Mises for numbers, chi-square for "
        "categories) over every column of one run (Benjamini-Hochberg): a column drifts only when its move "
        "is both material and beyond sampling noise."
    )
    engine: Literal["auto", "evidently", "numpy"] = Field(
        description="auto: Evidently's ValueDrift up to evidently_max_rows rows (reference + current), the "
        "same formulas in numpy above; or force evidently / numpy. Methods numpy lacks always use Evidently."
    )
    evidently_max_rows: NonNegativeInt = Field(
        description="With engine auto, the most rows (reference + current) Evidently computes."
    )


class PerformanceThresholds(PolicyPart):
    alpha: Share = Field(
        description="False discovery rate of the worsening tests (one-sided, bootstrap standard error of the "
        "change) over the metrics of one run (Benjamini-Hochberg)."
    )
    bootstrap_samples: NonNegativeInt = Field(
        description="Bootstrap resamples for intervals (0: no intervals)."
    )
    bootstrap_max_rows: PositiveInt = Field(
        description="Bootstrap resamples draw at most this many rows (intervals scaled to full size)."
    )
    confidence: Annotated[float, Field(gt=0, lt=1)] = Field(description="Confidence level of the intervals.")
    calibration_bins: PositiveInt = Field(
        description="Equal-width score bins of the reliability table and expected calibration error."
    )
    calibration_min_rows: NonNegativeInt = Field(
        description="Calibration error is biased upward on few rows: it is judged only with this many."
    )
    min_rows: NonNegativeInt = Field(description="With fewer labelled rows, metrics are not computed.")
    max_drop: dict[str, float | None] = Field(
        description="Absolute worsening of current vs reference, per metric (a drop, or a rise for error "
        "metrics), that is a finding when its interval also excludes zero; null drops a metric."
    )
    max_relative_drop: dict[str, float | None] = Field(
        description="Worsening relative to the reference value, for scale-dependent errors; null drops a metric."
    )
    floors: dict[str, float | None] = Field(
        description="Realized values below a floor, on reference or current, are findings; null drops a floor."
    )
    ceilings: dict[str, float | None] = Field(
        description="Realized values above a ceiling, on reference or current, are findings; null drops a ceiling."
    )

    @field_validator("max_drop", "max_relative_drop", "floors", "ceilings", mode="after")
    @classmethod
    def _set_limits(cls, limits: dict[str, float | None]) -> dict[str, float]:
        _known_metrics(limits)
        return {metric: float(value) for metric, value in limits.items() if value is not None}


class ChallengerThresholds(PolicyPart):
    champion_aliases: list[str] = Field(
        description="Aliases (case-insensitive, in order) naming the champion a version is compared with; "
        "without one, the newest earlier version behind a production alias (change_control) is."
    )
    alpha: Share = Field(
        description="False discovery rate of the one-sided tests (paired bootstrap standard error of the "
        "difference) over the metrics compared in one run (Benjamini-Hochberg)."
    )
    max_drop: dict[str, float | None] = Field(
        description="Absolute worsening of the challenger against the champion, per metric (a drop, or a rise "
        "for error metrics), that is material; null drops a metric."
    )
    max_relative_drop: dict[str, float | None] = Field(
        description="Worsening relative to the champion's value, for scale-dependent errors; null drops a metric."
    )

    @field_validator("max_drop", "max_relative_drop", mode="after")
    @classmethod
    def _set_limits(cls, limits: dict[str, float | None]) -> dict[str, float]:
        _known_metrics(limits)
        return {metric: float(value) for metric, value in limits.items() if value is not None}


class ReproducibilityThresholds(PolicyPart):
    tolerance: NonNegativeFloat = Field(description="|logged - recomputed| beyond this is a mismatch ...")
    relative_tolerance: NonNegativeFloat = Field(
        description="... relative to the recomputed value for the metrics in relative_for."
    )
    relative_for: list[str] = Field(description="Scale-dependent metrics judged with relative_tolerance.")
    overfit_gap: NonNegativeFloat = Field(
        description="A holdout metric worse than the same metric logged on training data (training_/train_ "
        "names) by more than this is overfitting, when the holdout's bootstrap error also puts the gap beyond "
        "noise (one-sided, Benjamini-Hochberg at the performance alpha) ..."
    )
    overfit_relative_gap: NonNegativeFloat = Field(
        description="... relative to the training value for the metrics in relative_for."
    )
    overfit_margin_share: Share = Field(
        description="The overfitting test must exclude gaps below this share of the limit: healthy models "
        "score somewhat better on the rows they learned from."
    )

    @field_validator("relative_for", mode="after")
    @classmethod
    def _metrics(cls, names: list[str]) -> list[str]:
        _known_metrics(names)
        return names


class SlicesThresholds(PolicyPart):
    alpha: Share = Field(
        description="False discovery rate over all slices judged (Benjamini-Hochberg); a slice is judged when "
        "its size could show the material gap beyond noise, whatever its row count."
    )
    min_gap_accuracy: NonNegativeFloat = Field(
        description="A flagged slice is at least this much less accurate than overall (classifiers) ..."
    )
    min_relative_gap_mae: NonNegativeFloat = Field(
        description="... or has an MAE at least this share above the overall MAE (regressors)."
    )
    test_margin_share: Share = Field(
        description="The significance test must exclude gaps below this share of the material gap."
    )
    max_values: PositiveInt = Field(
        description="Columns with more values are cut into quantile bins (numbers) or top values plus "
        '"(other)" (text).'
    )
    numeric_bins: PositiveInt = Field(description="Quantile bins of a many-valued numeric slice column.")
    auc_min_class_rows: NonNegativeInt = Field(
        description="AUC per slice only where both classes have this many rows."
    )
    max_findings: NonNegativeInt = Field(description="At most this many slice findings, worst first.")


class FairnessThresholds(PolicyPart):
    alpha: Share = Field(
        description="False discovery rate over every group comparison of one run (Benjamini-Hochberg): a "
        "material disparity is a finding only when a Fisher exact (calibration: z) test puts it beyond chance."
    )
    min_demographic_parity_ratio: Share = Field(
        description="Lowest / highest selection rate below this is a finding (the four-fifths rule)."
    )
    max_equalized_odds_difference: Share = Field(
        description="Largest gap in TPR or FPR between groups above this is a finding."
    )
    max_calibration_difference: Share = Field(
        description="Calibration gaps (mean score - observed rate) differing between groups by more than this."
    )


class LeakageThresholds(PolicyPart):
    sample_rows: PositiveInt = Field(
        description="Label-proxy and ID checks run on a seeded sample of this size."
    )
    max_single_feature_auc: Share = Field(
        description="One feature alone separating the label this well (AUC, classifiers) is strong: information, "
        "or a label proxy when it does as well as the whole model."
    )
    max_single_feature_correlation: Share = Field(
        description="The same for regressors: |correlation| (or correlation ratio) with the label."
    )
    near_perfect_auc: Share = Field(
        description="A feature strong beyond noise (its lower 95% bound passes max_single_feature_auc) whose "
        "single-feature AUC reaches this, or the whole model's, is a label proxy."
    )
    near_perfect_correlation: Share = Field(description="The same for regressors, on |correlation|.")
    max_attribution_share: Share = Field(
        description="One feature carrying more than this share of the total mean |SHAP| (needs 3+ features)."
    )
    attribution_sample_rows: PositiveInt = Field(description="Rows explained for the attribution share.")
    attribution_budget_seconds: Seconds = Field(description="Time budget of the attribution share.")
    max_shared_row_excess: Share = Field(
        description="Share of current rows also found in reference, beyond what reference shares with itself."
    )
    alpha: Share = Field(description="Significance of the shared-rows excess (one-sided binomial test).")
    id_unique_ratio: Share = Field(
        description="An integer or text feature with at least this share of distinct values looks like an ID."
    )


class ExplanationsThresholds(PolicyPart):
    sample_rows: PositiveInt = Field(
        description="SHAP runs on a seeded sample of this size of each dataset ..."
    )
    time_budget_seconds: Seconds = Field(description="... within this time budget (the whole analysis).")
    background_rows: PositiveInt = Field(
        description="Rows of reference data the model-agnostic explainer masks with."
    )
    local_rows: NonNegativeInt = Field(
        description="Local explanations for this many highest-scoring current rows."
    )
    top_k: PositiveInt = Field(
        description="Attribution drift: a feature in the top_k that moves at least max_rank_move places ..."
    )
    max_rank_move: PositiveInt = Field(description="... and whose share of attribution changes ...")
    min_share_change: Share = Field(description="... by at least this share is a finding ...")
    min_rank_correlation: Annotated[float, Field(ge=-1, le=1)] = Field(
        description="... or a Spearman correlation of the importance ranking below this (with 4+ features)."
    )
    alpha: Share = Field(
        description="A top feature's share change must also pass a z-test on its bootstrap standard error at "
        "this false discovery rate over the top_k features (Benjamini-Hochberg)."
    )
    previous_lookback: NonNegativeInt = Field(
        description="How many earlier versions to look back through for the previous version's explanations."
    )


class RobustnessThresholds(PolicyPart):
    sample_rows: PositiveInt = Field(description="Perturbations run on a seeded sample of this size.")
    noise_std: NonNegativeFloat = Field(
        description="Numeric noise: normal with this many standard deviations of the feature."
    )
    max_flip_rate: Share = Field(
        description="A judged perturbation of one feature may flip at most this share of predictions ..."
    )
    max_score_change: NonNegativeFloat = Field(
        description="... and move scores (P(positive), or predictions in units of their std) by at most this "
        "on average."
    )
    judged: list[Literal["noise", "missing", "swap"]] = Field(
        description="Perturbations judged against the limits (the others are reported only)."
    )
    alpha: Share = Field(
        description="A limit is passed only beyond sampling noise: binomial (flips) or t-test (score change) "
        "against the limit, at this false discovery rate over the judged perturbations."
    )
    missing_failure_is_finding: bool = Field(
        description="A model that cannot score a missing value is a finding (else it is only recorded)."
    )


class Thresholds(PolicyPart):
    """`thresholds:`, one group per analysis."""

    documentation: DocumentationThresholds
    quality: QualityThresholds
    drift: DriftThresholds
    performance: PerformanceThresholds
    challenger: ChallengerThresholds
    reproducibility: ReproducibilityThresholds
    slices: SlicesThresholds
    fairness: FairnessThresholds
    leakage: LeakageThresholds
    explanations: ExplanationsThresholds
    robustness: RobustnessThresholds
