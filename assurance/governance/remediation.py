"""The remediation workflow: who fixes a finding, by when and how (`assign`), and that it was fixed (`close`).

Each command writes one create-only object of the journal `_portfolio/remediation/` holding one record
per version concerned (`action` is "assign" or "close"), so records are never lost to concurrent writers
nor changed afterwards; the ledger shows the latest of each kind (`assurance.governance.ledger`).

A manual closure is a claim with its evidence (a ticket, a merge request, a report): the ledger counts
the finding closed, unverified, until the next run of that version confirms it by not reporting it, or
reopens it by reporting it again. An assignment's due date, when given, becomes the finding's `due`, so
overdue alerts follow the agreed plan; the policy's SLA due date stays in the ledger as `sla_due`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import pandas as pd

from assurance.domain.errors import InputError
from assurance.evidence import journal
from assurance.governance.ledger import ASSIGN, CLOSE, REMEDIATION, parse_expiry, unresolved_rows

if TYPE_CHECKING:
    from assurance.evidence.store import EvidenceStore


def _required(value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InputError(what)
    return text


def _records(rows: pd.DataFrame, finding_id: str, action: str, now: datetime, **fields: object) -> list[dict]:
    """One record per version the finding is unresolved in, stamped with the action and its time."""
    at = pd.Timestamp(now).tz_convert(UTC).isoformat()
    return [
        {
            "action": action,
            "finding_id": finding_id,
            "model": row.model,
            "version": str(row.version),
            "at": at,
        }
        | fields
        for row in rows.itertuples()
    ]


def assign(
    store: EvidenceStore,
    finding_id: str,
    to: str,
    plan: str,
    by: str,
    due: str | date | datetime | None = None,
    version: str | None = None,
    now: datetime | None = None,
) -> list[dict]:
    """Assign a finding not yet closed in `version` (default: every such version) to someone with a plan.

    Returns the records written. Raises InputError on an empty assignee, plan or name, a due date not in
    the future, an unknown finding, or one closed in the versions asked for.
    """
    now = now or datetime.now(UTC)
    finding_id = (finding_id or "").strip()
    to = _required(to, "an assignment needs who remediates the finding (--to)")
    plan = _required(plan, "an assignment needs the remediation plan (--plan)")
    by = _required(by, "an assignment needs the name of who assigns it (--by)")
    until = parse_expiry(due) if due else None
    if until is not None and until <= pd.Timestamp(now):
        raise InputError(
            f"due date {until:%Y-%m-%d %H:%M} UTC is not in the future: give the plan's target date"
        )
    rows = unresolved_rows(store, finding_id, version, now, "assign")
    records = _records(
        rows,
        finding_id,
        ASSIGN,
        now,
        to=to,
        plan=plan,
        by=by,
        due=until.isoformat() if until is not None else None,
    )
    journal.append(store, REMEDIATION, records)
    return records


def close(
    store: EvidenceStore,
    finding_id: str,
    evidence: str,
    by: str,
    note: str | None = None,
    version: str | None = None,
    now: datetime | None = None,
) -> list[dict]:
    """Close a finding by hand in `version` (default: every version it is not closed in), with the evidence
    of its fix; the next run of each version confirms or reopens it.

    Returns the records written. Raises InputError on empty evidence or name, an unknown finding, or one
    already closed in the versions asked for.
    """
    now = now or datetime.now(UTC)
    finding_id = (finding_id or "").strip()
    evidence = _required(
        evidence, "a closure needs the evidence of the fix (--evidence URI: ticket, change, report)"
    )
    by = _required(by, "a closure needs the name of who closes it (--by)")
    rows = unresolved_rows(store, finding_id, version, now, "close")
    records = _records(
        rows, finding_id, CLOSE, now, evidence=evidence, by=by, note=(note or "").strip() or None
    )
    journal.append(store, REMEDIATION, records)
    return records
