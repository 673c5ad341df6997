"""Change control: a version behind a production alias needs an approval record that came before it went live.

The record is three tags: `approval.ticket`, `approval.approved_by` and `approval.approved_at` (an ISO
8601 date or timestamp). MLflow keeps no alias timestamps, so every run records which version each
alias pointed to (`change_control.parquet`: alias, version, observed_at); the first run of ours that
saw this version behind a production alias bounds when it went live, and survives later alias moves.
An approval dated after that, or before the version was even registered, does not cover it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from assurance.domain.checks import CheckSpec
from assurance.domain.findings import Finding
from assurance.domain.values import Inputs, Section, VersionRecord
from assurance.evidence.history import read_table
from assurance.reporting.markdown import table

if TYPE_CHECKING:
    from assurance.evidence.store import EvidenceStore
    from assurance.policy.model import Policy

EVIDENCE = "change_control.parquet"
TABLE = "change_control"
TABLE_COLUMNS = ["alias", "version", "production", "observed_at"]
APPROVAL_TAGS = ("approval.ticket", "approval.approved_by", "approval.approved_at")

UNAPPROVED = CheckSpec(
    "change_control.unapproved",
    "change_control",
    "A version behind a production alias has no complete, valid approval record.",
    "critical",
)
APPROVAL_PREDATES_VERSION = CheckSpec(
    "change_control.approval_predates_version",
    "change_control",
    "The approval is dated before the version was registered, so it cannot cover it.",
    "high",
)
APPROVED_AFTER_ALIAS = CheckSpec(
    "change_control.approved_after_alias",
    "change_control",
    "The approval is dated after the version was first seen behind a production alias.",
    "high",
)
CHECKS: tuple[CheckSpec, ...] = (UNAPPROVED, APPROVAL_PREDATES_VERSION, APPROVED_AFTER_ALIAS)


@dataclass(frozen=True)
class ApprovalTime:
    """A parsed `approval.approved_at`, compared at the precision it was written with: an approval dated
    2024-03-01 (or 10:15, or 10:15:30) is not "before" a registration later that same day (minute, second)."""

    at: pd.Timestamp
    resolution: str | None  # pandas frequency ("D", "h", "min", "s"), None for sub-second timestamps

    def _coarse(self, other: pd.Timestamp) -> pd.Timestamp:
        return other.floor(self.resolution) if self.resolution else other

    def before(self, other: pd.Timestamp) -> bool:
        return self.at < self._coarse(other)

    def after(self, other: pd.Timestamp) -> bool:
        return self.at > self._coarse(other)


def production_aliases(policy: Policy) -> set[str]:
    """Alias names (lower case) that mean "serving in production" under this policy."""
    return {str(a).strip().lower() for a in policy.change_control.production_aliases}


def live_aliases(record: VersionRecord, policy: Policy) -> list[str]:
    """The version's aliases that put it in production."""
    wanted = production_aliases(policy)
    return [a for a in record.aliases if a.lower() in wanted]


def _resolution(text: str) -> str | None:
    """The finest unit an ISO 8601 text states: a date, or a time to the hour, minute, second or finer."""
    parts = re.split(r"[T ]", text, maxsplit=1)
    if len(parts) == 1:
        return "D"
    clock = re.split(r"[Zz+-]", parts[1], maxsplit=1)[0]
    if re.search(r"[.,]", clock):
        return None
    return {2: "h", 4: "min", 6: "s"}.get(len(clock.replace(":", "")))


def parse_approval_time(value: str | None) -> ApprovalTime | None:
    """ISO 8601 date or timestamp (naive means UTC); None when absent or not a date."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    at = pd.Timestamp(parsed)
    at = at.tz_localize(UTC) if at.tzinfo is None else at.tz_convert(UTC)
    return ApprovalTime(at, _resolution(text))


def alias_table(record: VersionRecord, policy: Policy, observed_at: datetime) -> pd.DataFrame:
    """Which alias points at this version now: one row per alias, the history the next runs read."""
    live = production_aliases(policy)
    rows = [(a, str(record.version), a.lower() in live, observed_at) for a in sorted(record.aliases)]
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    frame["production"] = frame["production"].astype(bool)
    frame["observed_at"] = pd.to_datetime(frame["observed_at"], utc=True)
    return frame


def alias_history(store: EvidenceStore, model: str, version: str) -> pd.DataFrame:
    """Every alias observation recorded by this version's published runs, oldest first."""
    base = store.version_path(model, version)
    frames = [read_table(store, f"{base}/{run_id}", TABLE) for run_id in store.runs(model, version)]
    frames = [f for f in frames if f is not None]
    if not frames:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    history = pd.concat(frames, ignore_index=True)
    history["observed_at"] = pd.to_datetime(history["observed_at"], utc=True)
    return history.sort_values("observed_at", kind="stable").reset_index(drop=True)


def first_live(history: pd.DataFrame, version: str, now: datetime) -> pd.Timestamp:
    """When this version was first seen behind a production alias: the earliest run that saw it, else `now` (UTC-aware)."""
    seen = history[(history["version"].astype(str) == str(version)) & history["production"].astype(bool)]
    now_ts = pd.Timestamp(now)
    return min(seen["observed_at"].min(), now_ts) if len(seen) else now_ts


def approval_problems(record: VersionRecord) -> list[str]:
    """What is missing or invalid in the approval record (empty when it is complete)."""
    problems = [f"{tag} is not set" for tag in APPROVAL_TAGS if not (record.tags.get(tag) or "").strip()]
    raw = (record.tags.get("approval.approved_at") or "").strip()
    if raw and parse_approval_time(raw) is None:
        problems.append(f"approval.approved_at {raw[:40]!r} is not an ISO 8601 date")
    return problems


def timing_findings(
    record: VersionRecord, policy: Policy, approved: ApprovalTime, live_since: pd.Timestamp, live: list[str]
) -> list[Finding]:
    """An approval must fall between the version's registration and its first sighting in production."""
    findings = []
    raw = record.tags.get("approval.approved_at")
    if record.created_ms is not None:
        created = pd.Timestamp(record.created_ms, unit="ms", tz=UTC)
        if approved.before(created):
            findings.append(
                APPROVAL_PREDATES_VERSION.finding(
                    "approval.approved_at",
                    policy.severity(APPROVAL_PREDATES_VERSION),
                    f"The approval ({raw}) predates the registration of version {record.version} "
                    f"({created:%Y-%m-%d %H:%M} UTC), so it approved something else: record this version's approval.",
                    observed=raw,
                    threshold=f">= {created.isoformat()}",
                    evidence=EVIDENCE,
                )
            )
    if approved.after(live_since):
        findings.append(
            APPROVED_AFTER_ALIAS.finding(
                "approval.approved_at",
                policy.severity(APPROVED_AFTER_ALIAS),
                f"The approval ({raw}) is dated after version {record.version} was first seen behind "
                f"{', '.join(live)} ({live_since:%Y-%m-%d %H:%M} UTC): it went live before it was approved.",
                observed=raw,
                threshold=f"<= {live_since.isoformat()}",
                evidence=EVIDENCE,
            )
        )
    return findings


def assess(record: VersionRecord, policy: Policy, history: pd.DataFrame, now: datetime) -> list[Finding]:
    """Change-control findings for a version, given the alias observations of earlier runs."""
    live = live_aliases(record, policy)
    if not live:
        return []
    problems = approval_problems(record)
    if problems:
        return [
            UNAPPROVED.finding(
                "approval",
                policy.severity(UNAPPROVED),
                f"Version {record.version} is behind {', '.join(live)} without a valid approval record "
                f"({'; '.join(problems)}): record the approval or move the alias off this version.",
                observed="; ".join(problems),
                threshold=", ".join(APPROVAL_TAGS),
                evidence=EVIDENCE,
            )
        ]
    approved = parse_approval_time(record.tags["approval.approved_at"])
    return timing_findings(record, policy, approved, first_live(history, record.version, now), live)


def run(inputs: Inputs) -> Section:
    """Record the aliases seen now, and check the approval of a version serving in production."""
    record, policy = inputs.record, inputs.policy
    now = datetime.now(UTC)
    section = Section("change_control", "Change control")
    current = alias_table(record, policy, now)
    section.tables[TABLE] = current
    history = alias_history(inputs.store, record.name, record.version) if inputs.store else current.iloc[0:0]
    if inputs.store is None:
        section.skip("No evidence store: the approval is compared with this run's alias sighting only.")
    section.findings = assess(record, policy, history, now)
    live = live_aliases(record, policy)
    section.metrics = {
        "production_aliases": float(len(live)),
        "runs_with_alias_history": float(history["observed_at"].nunique()),
    }
    approval = pd.DataFrame(
        [(t, record.tags.get(t) or "(not set)") for t in APPROVAL_TAGS], columns=["tag", "value"]
    )
    status = (
        f"Behind production alias(es) {', '.join(live)}: change control applies."
        if live
        else f"Not behind a production alias (aliases: {', '.join(record.aliases) or 'none'}): change control does not apply."
    )
    section.summary = "\n".join([status, "", table(approval)])
    return section
