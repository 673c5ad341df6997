"""What the quality suite is made of: the checks it reports, expectations learned from reference
data, and their results."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from assurance.domain.checks import CheckSpec

EVIDENCE = "quality.parquet"
ROLES = ("reference", "current")
ALL_COLUMNS = "*"
DUPLICATES = "expect_no_duplicate_rows"  # counted with pandas on the rows read, not the suite's sample

UNAVAILABLE = CheckSpec(
    "data.unavailable",
    "data_quality",
    "Reference or current data could not be loaded, so the checks that need it did not run.",
    "high",
)
LABEL_MISSING = CheckSpec(
    "data.label_missing",
    "data_quality",
    "The `assurance.label` tag is absent or names a column the reference data lacks.",
    "medium",
)
MISSING_COLUMN = CheckSpec(
    "schema.missing_column",
    "schema",
    "A model input (from the signature, else the reference columns) is missing from a dataset.",
    "high",
)
TYPE_MISMATCH = CheckSpec(
    "schema.type_mismatch",
    "schema",
    "A column's values do not fit the type the model signature declares.",
    "medium",
)
MISSING_VALUES = CheckSpec(
    "quality.missing_values",
    "data_quality",
    "A feature is missing in current data more often than in reference, beyond the policy's margin and "
    "beyond sampling noise.",
    "medium",
)
OUT_OF_RANGE = CheckSpec(
    "quality.out_of_range",
    "data_quality",
    "More current values of a numeric feature fall outside the reference range than the policy allows "
    "and than values of one population would.",
    "medium",
)
UNSEEN_CATEGORIES = CheckSpec(
    "quality.unseen_categories",
    "data_quality",
    "More current values of a categorical feature are categories the reference never had than the policy "
    "allows and than values of one population would.",
    "medium",
)
DUPLICATE_ROWS = CheckSpec(
    "quality.duplicates",
    "data_quality",
    "A dataset holds more exact duplicate rows than the policy allows.",
    "low",
)
CHECKS: tuple[CheckSpec, ...] = (
    UNAVAILABLE,
    LABEL_MISSING,
    MISSING_COLUMN,
    TYPE_MISMATCH,
    MISSING_VALUES,
    OUT_OF_RANGE,
    UNSEEN_CATEGORIES,
    DUPLICATE_ROWS,
)


@dataclass(frozen=True)
class Expectation:
    """One expectation learned from the reference data; `name` is the GX expectation's snake_case name.

    `threshold` is the largest acceptable rate; `baseline` is the reference's own rate, so the
    policy's tolerance is `threshold - baseline`. `reference_rows` is what the baseline was measured on
    (rows, or non-missing values), `reference_hits` how many of them counted (missing values, repeats)
    and `reference_counts` the count of each known category: what the noise tests need.
    """

    column: str
    name: str
    check: CheckSpec
    threshold: float = 0.0
    baseline: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    learned: str = ""
    reference_rows: int = 0
    reference_hits: int = 0
    reference_counts: dict[Any, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation evaluated on one dataset. `observed` is a rate (share of rows or values), NaN if it
    could not run: `hits` of `rows` (for categories, `pooled_counts` holds each category's count in
    reference and current together). A rate on current data also gets the p-value of its noise test and
    the q-value over the run's tests; `success` is False only when the rate is both beyond the threshold
    and, where a noise test applies, beyond noise."""

    role: str
    expectation: Expectation
    success: bool
    observed: float
    note: str = ""
    examples: str = ""
    hits: int = 0
    rows: int = 0
    pooled_counts: tuple[int, ...] = ()
    p_value: float = math.nan
    q_value: float = math.nan

    @property
    def details(self) -> str:
        """What was learned, what was seen, and a few offending values."""
        parts = [self.expectation.learned, self.note, f"e.g. {self.examples}" if self.examples else ""]
        return "; ".join(p for p in parts if p)
