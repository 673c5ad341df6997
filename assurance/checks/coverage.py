"""Coverage: the analyses the version's tier requires actually ran.

An analysis that cannot run says why in its section's skip reasons and reports nothing else, which reads
like a clean result: a high-tier model without `assurance.protected` would pass with fairness never
looked at. The tier's `required_analyses` turn that silence into a finding with the analysis's own reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assurance.checks.catalog import ANALYSIS_FAILED
from assurance.domain.checks import CheckSpec
from assurance.domain.findings import Finding
from assurance.policy.tiers import decide_tier

if TYPE_CHECKING:
    from assurance.domain.values import Section, VersionRecord
    from assurance.policy.model import Policy

REQUIRED_ANALYSIS = CheckSpec(
    "monitoring.required_analysis",
    "monitoring",
    "An analysis the version's risk tier requires could not run (a tag or labels missing, a model type it "
    "does not support), so the evidence lacks what the tier asks for.",
    "medium",
)
CHECKS: tuple[CheckSpec, ...] = (REQUIRED_ANALYSIS,)


def ran(section: Section) -> bool:
    """An analysis ran when it found something or measured something (a table with rows)."""
    return bool(section.findings) or any(len(table) for table in section.tables.values())


def coverage_findings(record: VersionRecord, policy: Policy, sections: list[Section]) -> list[Finding]:
    """One finding per analysis the tier requires that did not run (a failed analysis already has its own)."""
    tier = decide_tier(record, policy).tier
    by_key = {section.key: section for section in sections}
    findings = []
    for key in policy.tier_level(tier).required_analyses:
        section = by_key.get(key)
        if section is None or ran(section) or any(f.check == ANALYSIS_FAILED.name for f in section.findings):
            continue
        reason = "; ".join(section.skipped) or "it produced no result"
        findings.append(
            REQUIRED_ANALYSIS.finding(
                key,
                policy.severity(REQUIRED_ANALYSIS, tier),
                f"The {tier} tier requires the {section.title.lower()} analysis, which could not run: {reason}. "
                "Supply what it needs (tags, labels) or change the tier's required analyses in the policy.",
                observed="not run",
                threshold="required",
            )
        )
    return findings
