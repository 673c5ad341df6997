"""Learning the suite: per feature, how often it may be missing and which values it may take."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from assurance.checks.quality.expectations import (
    MISSING_VALUES,
    OUT_OF_RANGE,
    UNSEEN_CATEGORIES,
    Expectation,
)
from assurance.domain.values import Section
from assurance.policy.thresholds import QualityThresholds


def learn_expectations(
    reference: pd.DataFrame, columns: list[str], limits: QualityThresholds, section: Section
) -> list[Expectation]:
    """Missingness, then range or categories, per feature; a column that defeats learning becomes a note."""
    expectations: list[Expectation] = []
    for col in columns:
        series = reference[col]
        expectations.append(missing_expectation(series, col, limits))
        try:
            expectations += value_expectations(series.dropna(), col, limits)
        except Exception as exc:  # noqa: BLE001 - odd data in one column must not stop the others
            section.skip(f"Could not learn the values of '{col}' from reference: {type(exc).__name__}: {exc}")
    return expectations


def missing_expectation(series: pd.Series, col: str, limits: QualityThresholds) -> Expectation:
    """Current may miss a feature as often as reference did, plus the policy's margin."""
    missing = float(series.isna().mean()) if len(series) else 0.0
    threshold = min(1.0, missing + limits.missing_rate_increase)
    return Expectation(
        col,
        "expect_column_values_to_not_be_null",
        MISSING_VALUES,
        threshold=threshold,
        baseline=missing,
        kwargs={"mostly": 1.0 - threshold},
        learned=f"reference missing {missing:.2%}",
        reference_rows=len(series),
        reference_hits=int(series.isna().sum()),
    )


def value_expectations(values: pd.Series, col: str, limits: QualityThresholds) -> list[Expectation]:
    """The reference's range for numeric features, its known values for categorical ones, else nothing."""
    kind = value_kind(values, limits)
    if kind == "numeric":
        return _range_expectation(values, col, limits)
    if kind == "categorical":
        return [_category_expectation(values, col, limits)]
    return []


def value_kind(values: pd.Series, limits: QualityThresholds) -> str:
    """'numeric' (range check), 'categorical' (known-values check) or 'other' (neither is meaningful).

    Booleans and integers with few distinct values are categories; floats are numeric; dates move
    on with time, so their range says nothing; text with mostly distinct values (ids, free text)
    has no category set worth learning.
    """
    if (
        values.empty
        or ptypes.is_datetime64_any_dtype(values.dtype)
        or ptypes.is_timedelta64_dtype(values.dtype)
    ):
        return "other"
    if ptypes.is_bool_dtype(values.dtype):
        return "categorical"
    if ptypes.is_float_dtype(values.dtype):
        return "numeric"
    distinct = values.nunique()
    if ptypes.is_integer_dtype(values.dtype):
        return "categorical" if distinct <= limits.max_categories else "numeric"
    if distinct <= limits.max_categories or distinct <= limits.max_category_share * len(values):
        return "categorical"
    return "other"


def _range_expectation(values: pd.Series, col: str, limits: QualityThresholds) -> list[Expectation]:
    """Reference [min, max] widened by the margin. A fresh sample of the same distribution falls
    outside a sample's extremes 2/(n+1) of the time, so that share is the baseline, not a problem;
    whether more is noise depends on both sizes (`significance.outside_range_pvalue`)."""
    finite = values.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return []
    lo, hi = float(finite.min()), float(finite.max())
    margin = limits.range_margin * (hi - lo)
    baseline = 2.0 / (finite.size + 1)
    threshold = min(1.0, baseline + limits.out_of_range_rate)
    return [
        Expectation(
            col,
            "expect_column_values_to_be_between",
            OUT_OF_RANGE,
            threshold=threshold,
            baseline=baseline,
            kwargs={"min_value": lo - margin, "max_value": hi + margin, "mostly": 1.0 - threshold},
            learned=f"range [{lo - margin:.6g}, {hi + margin:.6g}]",
            reference_rows=int(finite.size),
        )
    ]


def _category_expectation(values: pd.Series, col: str, limits: QualityThresholds) -> Expectation:
    """Known values of a categorical feature. The share of reference values seen only once estimates
    how often a fresh sample shows a value the reference lacks (Good-Turing): that is the baseline."""
    counts = values.value_counts()
    known = [native(v) for v in counts.index]
    baseline = float((counts == 1).sum()) / len(values)
    threshold = min(1.0, baseline + limits.unseen_category_rate)
    shown = ", ".join(map(repr, known[:10])) + (", ..." if len(known) > 10 else "")
    return Expectation(
        col,
        "expect_column_values_to_be_in_set",
        UNSEEN_CATEGORIES,
        threshold=threshold,
        baseline=baseline,
        kwargs={"value_set": known, "mostly": 1.0 - threshold},
        learned=f"{len(known)} known values: {shown}",
        reference_rows=len(values),
        reference_counts={native(v): int(c) for v, c in counts.items()},
    )


def native(value: Any) -> Any:
    """numpy scalars to Python ones, so GX can serialise the value set."""
    return value.item() if isinstance(value, np.generic) else value
