"""Check declarations: every kind of finding is declared once, where the code that raises it lives.

A `CheckSpec` names the check (its name feeds finding ids and the Dagster asset check, so it never
changes), the finding category, what it means, and its default severity. The policy's `severity:`
blocks override that default, policy-wide or per tier; nothing else sets a severity.
"""

from __future__ import annotations

from dataclasses import dataclass

from assurance.domain.findings import CATEGORIES, SEVERITIES, Finding


@dataclass(frozen=True)
class CheckSpec:
    """One kind of finding: `name` (e.g. `drift.feature`), `category`, `description` and default `severity`."""

    name: str
    category: str
    description: str
    severity: str

    def __post_init__(self) -> None:
        if "." not in self.name or self.name != self.name.strip():
            raise ValueError(f"check name {self.name!r} must read `<area>.<what>`")
        if self.category not in CATEGORIES:
            raise ValueError(f"check {self.name}: unknown finding category {self.category!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"check {self.name}: unknown severity {self.severity!r}")

    def finding(
        self,
        subject: str,
        severity: str,
        message: str,
        observed: object = None,
        threshold: object = None,
        evidence: str = "",
    ) -> Finding:
        """A finding of this check; `severity` is the policy's, from `Policy.severity(spec)`."""
        return Finding(self.category, self.name, subject, severity, message, observed, threshold, evidence)
