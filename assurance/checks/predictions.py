"""The model's own outputs: a model that cannot be loaded or cannot score a dataset blocks most checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assurance.domain.checks import CheckSpec

if TYPE_CHECKING:
    from assurance.domain.findings import Finding
    from assurance.domain.values import Predictions
    from assurance.policy.model import Policy

EVIDENCE = "findings.parquet"
FAILED = CheckSpec(
    "predictions.failed",
    "performance",
    "The model could not be loaded or could not score a dataset, so the checks that need its outputs did not run.",
    "high",
)
PARTIAL = CheckSpec(
    "predictions.partial",
    "performance",
    "The model could not score some rows of a dataset (missing feature values it cannot take).",
    "medium",
)
CHECKS: tuple[CheckSpec, ...] = (FAILED, PARTIAL)


def prediction_findings(predictions: Predictions | None, policy: Policy) -> list[Finding]:
    """A model that cannot be loaded or cannot score a dataset blocks most checks: say so once per dataset."""
    if predictions is None:
        return []
    out = []
    for role in ("reference", "current"):
        scores = predictions.for_role(role)
        if scores.unscored:
            share = scores.unscored / len(scores.frame)
            out.append(
                PARTIAL.finding(
                    role,
                    policy.severity(PARTIAL),
                    f"The model could not score {scores.unscored} of {len(scores.frame)} {role} rows ({share:.1%}), "
                    f"those with missing feature values ({scores.unscored_reason}); checks used the other rows: "
                    "fix the data feed or make the model handle missing values.",
                    observed=share,
                    evidence=EVIDENCE,
                )
            )
        if scores.error and not scores.error.startswith("no "):
            out.append(
                FAILED.finding(
                    role,
                    policy.severity(FAILED),
                    f"Predictions on {role} data failed, so checks that need them did not run: {scores.error}.",
                    evidence=EVIDENCE,
                )
            )
    return out
