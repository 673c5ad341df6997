"""Change control: a version behind a production alias needs an approval record that came before it went live,
and an approval must rest on the evidence it approves.

The record is three tags: `approval.ticket`, `approval.approved_by` and `approval.approved_at` (an ISO
8601 date or timestamp). MLflow keeps no alias timestamps, so every run records which version each
alias pointed to (`change_control.parquet`: alias, version, observed_at); the first run of ours that
saw this version behind a production alias bounds when it went live, and survives later alias moves.
An approval dated after that, or before the version was even registered, does not cover it.

Decision records (`assurance decide`, `assurance.governance.decisions`) are bound to an evidence run. An
approval, recorded either way, is questioned when it predates the version's first published evidence (it
was given without it); a recorded approval when the run it is bound to recommended hold (people may
overrule the product, but that must show), or when a later run brought a material change: new critical
or high findings, or reference or current data with another fingerprint. A run sees its own data's
fingerprints but not yet its own findings, so new findings are flagged by the run after the one that
brought them.
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
from assurance.evidence.history import RunFolder, read_table, run_folders
from assurance.governance.alerts import new_severe_findings
from assurance.governance.decisions import APPROVALS, describe_conditions, read_decisions
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
APPROVAL_BEFORE_EVIDENCE = CheckSpec(
    "change_control.approval_before_evidence",
    "change_control",
    "The approval (decision record or approval.* tags) is dated before the version's first published "
    "evidence, so it was given without the assurance evidence.",
    "low",
)
APPROVAL_OVERRULES_HOLD = CheckSpec(
    "change_control.approval_overrules_hold",
    "change_control",
    "The latest decision approves the version although the evidence run it is bound to recommended hold.",
    "high",
)
APPROVAL_OUTDATED = CheckSpec(
    "change_control.approval_outdated",
    "change_control",
    "The latest decision approves the version on a run older than its latest material change (new "
    "critical or high findings, or changed data).",
    "high",
)
CHECKS: tuple[CheckSpec, ...] = (
    UNAPPROVED,
    APPROVAL_PREDATES_VERSION,
    APPROVED_AFTER_ALIAS,
    APPROVAL_BEFORE_EVIDENCE,
    APPROVAL_OVERRULES_HOLD,
    APPROVAL_OUTDATED,
)
DECISION_SUBJECT = "decision"


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


def first_evidence(runs: list[RunFolder], now: datetime) -> pd.Timestamp:
    """When the version's first published evidence was produced; `now` (this run) when there is none yet."""
    return min([r.at for r in runs], default=pd.Timestamp(now))


def evidence_timing_findings(
    record: VersionRecord, policy: Policy, decision: dict | None, first: pd.Timestamp
) -> list[Finding]:
    """An approval, by tags or by decision record, must not predate the version's first evidence."""
    findings = []
    raw = (record.tags.get("approval.approved_at") or "").strip()
    approved = parse_approval_time(raw)
    severity = policy.severity(APPROVAL_BEFORE_EVIDENCE)
    if approved is not None and approved.before(first):
        findings.append(
            APPROVAL_BEFORE_EVIDENCE.finding(
                "approval.approved_at",
                severity,
                f"The approval tags ({raw[:40]}) predate the first published evidence of version "
                f"{record.version} ({first:%Y-%m-%d %H:%M} UTC): it was approved without the assurance evidence; "
                "review the evidence and record a decision on it (assurance decide).",
                observed=raw[:40],
                threshold=f">= {first.isoformat()}",
                evidence=EVIDENCE,
            )
        )
    if decision is not None and decision["decision"] in APPROVALS and decision["decided_at"] < first:
        findings.append(
            APPROVAL_BEFORE_EVIDENCE.finding(
                DECISION_SUBJECT,
                severity,
                f"The {decision['decision']} recorded by {decision['by']} ({decision['decided_at']:%Y-%m-%d %H:%M} "
                f"UTC) predates the first published evidence of version {record.version} "
                f"({first:%Y-%m-%d %H:%M} UTC): record a decision on the evidence.",
                observed=decision["decided_at"].isoformat(),
                threshold=f">= {first.isoformat()}",
                evidence=EVIDENCE,
            )
        )
    return findings


@dataclass(frozen=True)
class MaterialChange:
    """A run (a published one, or this one) that changed what an approval rests on, and how."""

    run: str
    at: pd.Timestamp
    reasons: list[str]


def _fingerprints(store: EvidenceStore, run: RunFolder) -> dict[str, str]:
    data = store.read_manifest(run.path).get("data") or {}
    return {
        role: d["fingerprint"] for role, d in data.items() if isinstance(d, dict) and d.get("fingerprint")
    }


def _changed_data(base: dict[str, str], data: dict[str, str]) -> list[str]:
    changed = sorted(role for role, fp in data.items() if fp and base.get(role) and fp != base[role])
    return [f"{' and '.join(changed)} data changed (another fingerprint)"] if changed else []


def material_change(
    store: EvidenceStore,
    runs: list[RunFolder],
    bound_run_id: str,
    data_now: dict[str, str],
    now: datetime,
) -> MaterialChange | None:
    """The latest run after `bound_run_id` with critical/high findings the bound run did not have open at
    that severity, or with reference or current data of another fingerprint (`data_now`: this run's); None
    when there is none, or when the bound run is not in the store."""
    bound = next((r for r in runs if r.run_id == bound_run_id), None)
    if bound is None:
        return None
    base_findings, base_data = read_table(store, bound.path, "findings"), _fingerprints(store, bound)
    latest = None
    for run in runs:
        if (run.at, run.run_id) <= (bound.at, bound.run_id):
            continue
        reasons = _changed_data(base_data, _fingerprints(store, run))
        fresh = new_severe_findings(read_table(store, run.path, "findings"), base_findings)
        if len(fresh):
            named = ", ".join(f"{r.check} on {r.subject}" for r in fresh.head(3).itertuples())
            more = ", ..." if len(fresh) > 3 else ""
            reasons.append(f"{len(fresh)} new critical/high findings ({named}{more})")
        if reasons:
            latest = MaterialChange(f"run {run.run_id}", run.at, reasons)
    changed_now = _changed_data(base_data, data_now)
    return MaterialChange("this run", pd.Timestamp(now), changed_now) if changed_now else latest


def decision_findings(
    record: VersionRecord,
    policy: Policy,
    store: EvidenceStore,
    runs: list[RunFolder],
    decision: dict | None,
    data_now: dict[str, str],
    now: datetime,
) -> list[Finding]:
    """A recorded approval must not silently overrule a hold, nor outlive a material change of the evidence."""
    if decision is None or decision["decision"] not in APPROVALS:
        return []
    said = (
        f"The {decision['decision']} of version {record.version} by {decision['by']} "
        f"({decision['decided_at']:%Y-%m-%d %H:%M} UTC)"
    )
    findings = []
    if decision["recommendation"] == "hold":
        findings.append(
            APPROVAL_OVERRULES_HOLD.finding(
                DECISION_SUBJECT,
                policy.severity(APPROVAL_OVERRULES_HOLD),
                f"{said} overrules the hold recommended by run {decision['run_id']}, the evidence it is bound "
                "to: accept this finding with the rationale (assurance accept) or revisit the decision.",
                observed=decision["decision"],
                threshold=f"recommendation of {decision['run_id']}: hold",
                evidence=EVIDENCE,
            )
        )
    change = material_change(store, runs, decision["run_id"], data_now, now)
    if change is not None:
        findings.append(
            APPROVAL_OUTDATED.finding(
                DECISION_SUBJECT,
                policy.severity(APPROVAL_OUTDATED),
                f"{said} rests on run {decision['run_id']}, but {change.run} ({change.at:%Y-%m-%d %H:%M} UTC) "
                f"changed since: {'; '.join(change.reasons)}. Review the latest evidence and record a new "
                "decision (assurance decide).",
                observed=change.run,
                threshold=decision["run_id"],
                evidence=EVIDENCE,
            )
        )
    return findings


def decision_summary(decision: dict | None) -> str:
    if decision is None:
        return "No decision recorded for this version (`assurance decide`)."
    conditions = describe_conditions(decision["conditions"])
    return (
        f"Latest decision: {decision['decision']} by {decision['by']} on {decision['decided_at']:%Y-%m-%d %H:%M} "
        f"UTC, bound to run {decision['run_id']} (which recommended {decision['recommendation']})"
        + (f"; conditions: {conditions}" if conditions else "")
        + "."
    )


def _data_now(inputs: Inputs) -> dict[str, str]:
    """This run's data fingerprints by role, for the datasets that could be read."""
    return {
        d.role: d.fingerprint for d in (inputs.reference, inputs.current) if d is not None and d.fingerprint
    }


def run(inputs: Inputs) -> Section:
    """Record the aliases seen now, check the approval of a version serving in production, and check the
    approvals recorded for it against its evidence."""
    record, policy, store = inputs.record, inputs.policy, inputs.store
    now = datetime.now(UTC)
    section = Section("change_control", "Change control")
    current = alias_table(record, policy, now)
    section.tables[TABLE] = current
    history = alias_history(store, record.name, record.version) if store else current.iloc[0:0]
    runs = run_folders(store, record.name, record.version) if store else []
    decisions = read_decisions(store, record.name, record.version) if store else None
    decision = decisions.iloc[-1].to_dict() if decisions is not None and len(decisions) else None
    if store is None:
        section.skip("No evidence store: the approval is compared with this run's alias sighting only.")
    section.findings = [
        *assess(record, policy, history, now),
        *evidence_timing_findings(record, policy, decision, first_evidence(runs, now)),
        *(decision_findings(record, policy, store, runs, decision, _data_now(inputs), now) if store else []),
    ]
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
        else f"Not behind a production alias (aliases: {', '.join(record.aliases) or 'none'}): no production approval is required."
    )
    section.summary = "\n".join([status, "", table(approval), "", decision_summary(decision)])
    return section
