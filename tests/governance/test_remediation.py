"""The remediation workflow on the ledger: assignments, manual closures, and the next run confirming or reopening."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from assurance.domain.errors import InputError
from assurance.domain.findings import Finding, findings_frame
from assurance.evidence.store import EvidenceStore, new_run_id, parquet_bytes
from assurance.governance.ledger import REMEDIATION, build_ledger
from assurance.governance.remediation import assign, close
from assurance.policy.model import Policy
from tests.support import make_record

T0 = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = Policy()
HIGH = Finding("drift", "drift.feature", "amount", "high", "Amount drifted.")  # 30-day SLA
MEDIUM = Finding("drift", "drift.feature", "tenure", "medium", "Tenure drifted.")


@pytest.fixture
def store(tmp_path):
    return EvidenceStore(str(tmp_path / "evidence"))


def publish(store, findings, at, version="1"):
    frame = findings_frame(findings, make_record(version=version), POLICY, now=at)
    run_id = new_run_id(at)
    files = {"findings.parquet": parquet_bytes(frame)}
    store.publish_run("credit", version, run_id, files, {"finished_at": at.isoformat()})
    return run_id, frame


def fid(finding) -> str:
    return findings_frame([finding], make_record(), POLICY)["finding_id"].item()


def sla(row) -> bool | None:
    """`within_sla` as a plain value: None while the finding can still make its SLA."""
    return None if pd.isna(row["within_sla"]) else bool(row["within_sla"])


def ledger_row(store, finding, days, version="1"):
    ledger = build_ledger(store, POLICY, now=T0 + timedelta(days=days))
    return ledger[(ledger["finding_id"] == fid(finding)) & (ledger["version"] == version)].iloc[0]


def test_an_assignment_shows_in_the_ledger_and_its_due_date_sets_when_it_is_overdue(store):
    publish(store, [HIGH, MEDIUM], T0)
    (record,) = assign(
        store, fid(HIGH), "bo", "refit on 2025 data", "ana", due="2025-03-15", now=T0 + timedelta(days=1)
    )
    assert (record["version"], record["to"], record["due"]) == ("1", "bo", "2025-03-16T00:00:00+00:00")
    row = ledger_row(store, HIGH, 40)
    assert (row["assignee"], row["plan"], row["assigned_by"]) == ("bo", "refit on 2025 data", "ana")
    assert row["sla_due"] == pd.Timestamp(T0 + timedelta(days=30))
    assert row["due"] == row["plan_due"] == pd.Timestamp("2025-03-16", tz=UTC)
    assert not row["overdue"] and sla(row) is False  # within the plan, but past the policy's SLA
    assert ledger_row(store, HIGH, 80)["overdue"]
    unplanned = ledger_row(store, MEDIUM, 40)
    assert pd.isna(unplanned["assignee"]) and unplanned["due"] == unplanned["sla_due"]
    # a later assignment replaces the plan; every record stays in the journal
    assign(store, fid(HIGH), "cy", "replace the feature", "ana", now=T0 + timedelta(days=2))
    row = ledger_row(store, HIGH, 40)
    assert (row["assignee"], row["due"]) == ("cy", row["sla_due"]) and row["overdue"]
    assert len(store.read_folder(REMEDIATION)) == 2


def test_a_manual_closure_is_confirmed_by_the_next_run_that_does_not_reproduce_it(store):
    publish(store, [HIGH, MEDIUM], T0)
    (record,) = close(
        store, fid(HIGH), "https://jira.example.com/RISK-7", "bo", note="refit", now=T0 + timedelta(days=3)
    )
    assert record["evidence"] == "https://jira.example.com/RISK-7"
    claimed = ledger_row(store, HIGH, 4)
    assert (claimed["status"], claimed["verified"], claimed["closed_manually_by"]) == ("closed", False, "bo")
    assert pd.isna(claimed["closed_by"]) and claimed["resolved_at"] == pd.Timestamp(T0 + timedelta(days=3))
    assert sla(claimed) is True and not claimed["overdue"]
    confirming, _ = publish(store, [MEDIUM], T0 + timedelta(days=5))
    confirmed = ledger_row(store, HIGH, 6)
    assert (confirmed["status"], confirmed["verified"], confirmed["closed_by"]) == (
        "closed",
        True,
        confirming,
    )
    assert confirmed["resolved_at"] == pd.Timestamp(T0 + timedelta(days=3)) and pd.isna(confirmed["note"])


def test_a_manual_closure_the_next_run_reproduces_is_reopened_with_a_note(store):
    publish(store, [HIGH], T0)
    close(store, fid(HIGH), "https://jira.example.com/RISK-8", "bo", now=T0 + timedelta(days=3))
    reproducing, _ = publish(store, [HIGH], T0 + timedelta(days=5))
    row = ledger_row(store, HIGH, 6)
    assert (row["status"], row["verified"]) == ("open", False)
    assert row["note"].startswith("Closed by bo on 2025-01-04 00:00 UTC (https://jira.example.com/RISK-8)")
    assert f"run {reproducing} reproduced it on 2025-01-06" in row["note"]
    assert sla(row) is None  # still open, not yet past its SLA
    assert sla(ledger_row(store, HIGH, 31)) is False


def test_closing_applies_to_every_open_version_unless_one_is_named(store):
    publish(store, [HIGH], T0, version="1")
    publish(store, [HIGH], T0, version="2")
    later = T0 + timedelta(days=1)
    assert [r["version"] for r in close(store, fid(HIGH), "t-1", "bo", version="2", now=later)] == ["2"]
    assert [r["version"] for r in close(store, fid(HIGH), "t-2", "bo", now=later)] == ["1"]  # 2 is closed
    with pytest.raises(InputError, match="nothing to close"):
        close(store, fid(HIGH), "t-3", "bo", now=later)
    with pytest.raises(InputError, match="nothing to assign"):
        assign(store, fid(HIGH), "cy", "plan", "ana", version="1", now=later)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, f: assign(s, f, " ", "plan", "ana", now=T0), "who remediates"),
        (lambda s, f: assign(s, f, "bo", "", "ana", now=T0), "remediation plan"),
        (lambda s, f: assign(s, f, "bo", "plan", "", now=T0), "who assigns"),
        (lambda s, f: assign(s, f, "bo", "plan", "ana", due="2024-12-01", now=T0), "not in the future"),
        (lambda s, f: assign(s, f, "bo", "plan", "ana", due="next week", now=T0), "not an ISO 8601"),
        (lambda s, f: assign(s, "feedfacefeedface", "bo", "plan", "ana", now=T0), "unknown finding id"),
        (lambda s, f: close(s, f, "", "bo", now=T0), "evidence of the fix"),
        (lambda s, f: close(s, f, "t-1", " ", now=T0), "who closes"),
        (lambda s, f: close(s, f, "t-1", "bo", version="9", now=T0), "never reported for version 9"),
    ],
)
def test_bad_remediation_records_are_refused_and_nothing_is_written(store, call, message):
    publish(store, [HIGH], T0)
    with pytest.raises(InputError, match=message):
        call(store, fid(HIGH))
    assert store.read_folder(REMEDIATION) == {}
