"""The recommendation rule: from the policy and the open findings to approve, conditions or hold."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from assurance.domain.findings import SEVERITIES, counts_by_severity
from assurance.policy.model import Policy

DECISIONS = ("approve", "approve_with_conditions", "hold")


@dataclass
class Recommendation:
    decision: str
    reasons: list[str]
    open_by_severity: dict[str, int] = field(default_factory=dict)


def _reason(group: pd.DataFrame) -> str:
    """One reason per kind of problem: a metric that dropped on nine measures is one cause, not nine."""
    first = group.iloc[0]
    if len(group) == 1:
        return f"{first.severity}: {first.message}"
    subjects = ", ".join(group["subject"].astype(str).head(6)) + (", ..." if len(group) > 6 else "")
    return f"{first.severity}: {len(group)} {first.check} findings ({subjects}); for example: {first.message}"


def recommend(findings: pd.DataFrame, policy: Policy) -> Recommendation:
    """People decide; this recommends, naming the findings that drove it."""
    counts = counts_by_severity(findings)
    hold_on = policy.recommendation.hold_if_any
    cond_on = policy.recommendation.conditions_if_any
    open_ = findings[findings["status"] == "open"] if len(findings) else findings

    def reasons_for(severities: list[str]) -> list[str]:
        rows = open_[open_["severity"].isin(severities)] if len(open_) else open_
        return (
            [_reason(group) for _, group in rows.groupby(["severity", "check"], sort=False)]
            if len(rows)
            else []
        )

    if any(counts[s] for s in hold_on if s in SEVERITIES):
        return Recommendation("hold", reasons_for(hold_on), counts)
    if any(counts[s] for s in cond_on if s in SEVERITIES):
        return Recommendation("approve_with_conditions", reasons_for(cond_on), counts)
    return Recommendation(
        "approve", ["no open finding at a severity the policy conditions or holds on"], counts
    )
