"""Findings: what every check reports, in the stable schema analysts and tools rely on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from assurance.domain.values import VersionRecord
    from assurance.policy.model import Policy

SEVERITIES = ("critical", "high", "medium", "low", "info")
STATUSES = ("open", "closed", "accepted")
CATEGORIES = (
    "documentation",
    "change_control",
    "data_quality",
    "schema",
    "drift",
    "performance",
    "reproducibility",
    "fairness",
    "explainability",
    "robustness",
    "leakage",
    "monitoring",
)
COLUMNS = [
    "finding_id",
    "model",
    "version",
    "category",
    "check",
    "subject",
    "severity",
    "status",
    "message",
    "observed",
    "threshold",
    "evidence",
    "owner",
    "first_seen",
    "last_seen",
    "due",
]


def finding_id(model: str, check: str, subject: str) -> str:
    """Hash of model, check and subject: the same problem keeps its id across runs and versions."""
    return hashlib.sha256(f"{model}\x1f{check}\x1f{subject}".encode()).hexdigest()[:16]


def fmt(value: object) -> str | None:
    """Observed and threshold values are stored as short text so one column holds any kind of value."""
    if value is None:
        return None
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass(frozen=True)
class Finding:
    """One problem a check found, before it is stamped with model, version, id and dates."""

    category: str
    check: str
    subject: str
    severity: str
    message: str
    observed: object = None
    threshold: object = None
    evidence: str = ""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown finding category {self.category!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")


def severity_rank(severity: str) -> int:
    """0 for critical up to 4 for info: lower is worse."""
    return SEVERITIES.index(severity)


def milder(severity: str) -> str:
    """One level less severe (info stays info)."""
    return SEVERITIES[min(severity_rank(severity) + 1, len(SEVERITIES) - 1)]


def findings_frame(
    findings: list[Finding], record: VersionRecord, policy: Policy, now: datetime | None = None
) -> pd.DataFrame:
    """Stamp findings with the version, a stable id, the owner and the due date from the policy's SLA."""
    import pandas as pd

    now = now or datetime.now(UTC)
    owner = record.tags.get("owner") or ""
    rows = []
    for f in findings:
        sla = policy.sla_days(f.severity)
        rows.append(
            {
                "finding_id": finding_id(record.name, f.check, f.subject),
                "model": record.name,
                "version": str(record.version),
                "category": f.category,
                "check": f.check,
                "subject": f.subject,
                "severity": f.severity,
                "status": "open",
                "message": f.message,
                "observed": fmt(f.observed),
                "threshold": fmt(f.threshold),
                "evidence": f.evidence,
                "owner": owner,
                "first_seen": now,
                "last_seen": now,
                "due": (now + timedelta(days=sla)) if sla is not None else pd.NaT,
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("first_seen", "last_seen", "due"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    frame["_rank"] = frame["severity"].map(severity_rank)
    frame = frame.sort_values(["_rank", "category", "check", "subject"], kind="stable").drop(columns="_rank")
    return frame.drop_duplicates("finding_id").reset_index(drop=True)


def counts_by_severity(frame: pd.DataFrame) -> dict[str, int]:
    """Open findings per severity, every severity present (zero when none)."""
    open_ = frame[frame["status"] == "open"] if len(frame) else frame
    return {s: int((open_["severity"] == s).sum()) if len(open_) else 0 for s in SEVERITIES}
