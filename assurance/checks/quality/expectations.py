"""What the quality suite is made of: expectations learned from reference data, and their results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVIDENCE = "quality.parquet"
ROLES = ("reference", "current")
ALL_COLUMNS = "*"
DUPLICATES = "expect_no_duplicate_rows"  # computed with pandas on the full dataset, not sampled


@dataclass(frozen=True)
class Limits:
    """The policy's quality thresholds, read once."""

    missing_rate_increase: float
    out_of_range_rate: float
    range_margin: float
    unseen_category_rate: float
    duplicate_rate: float
    max_categories: int
    max_category_share: float
    sample_rows: int
    escalation_factor: float

    @classmethod
    def from_policy(cls, policy: Any) -> Limits:
        q = {name: policy.threshold(f"quality.{name}") for name in cls.__dataclass_fields__}
        return cls(**q)


@dataclass(frozen=True)
class Expectation:
    """One expectation learned from the reference data; `name` is the GX expectation's snake_case name.

    `threshold` is the largest acceptable rate; `baseline` is the reference's own rate, so the
    policy's tolerance is `threshold - baseline` (it is 0 except for missingness and duplicates).
    """

    column: str
    name: str
    check: str
    threshold: float = 0.0
    baseline: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    learned: str = ""


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation evaluated on one dataset. `observed` is a rate (share of rows or values), NaN if it could not run."""

    role: str
    expectation: Expectation
    success: bool
    observed: float
    note: str = ""
    examples: str = ""

    @property
    def details(self) -> str:
        """What was learned, what was seen, and a few offending values."""
        parts = [self.expectation.learned, self.note, f"e.g. {self.examples}" if self.examples else ""]
        return "; ".join(p for p in parts if p)
