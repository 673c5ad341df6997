import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from assurance.domain.errors import InputError
from assurance.domain.findings import Finding, findings_frame
from assurance.evidence.store import EvidenceStore, new_run_id, parquet_bytes
from assurance.governance.ledger import (
    ACCEPTANCES,
    LEGACY_ACCEPTANCES,
    accept,
    apply_ledger,
    build_ledger,
    read_acceptances,
)
from assurance.policy.model import Policy
from assurance.policy.recommendation import recommend
from tests.support import accept_concurrently, make_record

T0 = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = Policy()
CRITICAL = Finding("change_control", "change_control.unapproved", "approval", "critical", "No approval.")
MEDIUM = Finding("drift", "drift.feature", "amount", "medium", "Amount drifted.", observed=0.3, threshold=0.1)


def publish(store, findings, at, version="1", with_findings=True):
    """One published run of `credit` at time `at` reporting `findings`."""
    record = make_record(version=version, model_tags={"owner": "ana"})
    frame = findings_frame(findings, record, POLICY, now=at)
    run_id = new_run_id(at)
    files = {"findings.parquet": parquet_bytes(frame)} if with_findings else {"report.md": b"partial"}
    store.publish_run("credit", version, run_id, files, {"finished_at": at.isoformat()})
    return run_id, frame


@pytest.fixture
def store(tmp_path):
    return EvidenceStore(str(tmp_path / "evidence"))


def row(ledger, finding, version="1"):
    frame = findings_frame([finding], make_record(version=version), POLICY)
    fid = frame["finding_id"].item()
    return ledger[(ledger["finding_id"] == fid) & (ledger["version"] == version)].iloc[0]


def test_same_findings_twice_keep_ids_and_one_history(store):
    r1, f1 = publish(store, [CRITICAL, MEDIUM], T0)
    r2, f2 = publish(store, [CRITICAL, MEDIUM], T0 + timedelta(days=1))
    assert sorted(f1["finding_id"]) == sorted(f2["finding_id"])
    ledger = build_ledger(store, POLICY, now=T0 + timedelta(days=2))
    assert len(ledger) == 2
    assert ledger["finding_id"].is_unique
    crit = row(ledger, CRITICAL)
    assert (crit["first_run"], crit["last_run"], crit["runs_seen"]) == (r1, r2, 2)
    assert crit["first_seen"] == pd.Timestamp(T0) and crit["status"] == "open"
    assert crit["due"] == pd.Timestamp(T0 + timedelta(days=7))


def test_later_run_without_finding_closes_it(store):
    publish(store, [CRITICAL, MEDIUM], T0)
    r2, _ = publish(store, [MEDIUM], T0 + timedelta(days=1))
    publish(store, [MEDIUM], T0 + timedelta(days=2))
    ledger = build_ledger(store, POLICY, now=T0 + timedelta(days=3))
    crit = row(ledger, CRITICAL)
    assert crit["status"] == "closed"
    assert crit["closed_by"] == r2 and crit["closed_at"] == pd.Timestamp(T0 + timedelta(days=1))
    assert row(ledger, MEDIUM)["status"] == "open"


def test_other_versions_and_partial_runs_do_not_close(store):
    publish(store, [CRITICAL], T0)
    publish(store, [], T0 + timedelta(days=1), version="2")
    publish(store, [], T0 + timedelta(days=2), with_findings=False)
    ledger = build_ledger(store, POLICY, now=T0 + timedelta(days=3))
    assert len(ledger) == 1
    assert row(ledger, CRITICAL)["status"] == "open"


def test_reopened_finding_keeps_one_history(store):
    publish(store, [CRITICAL], T0)
    publish(store, [], T0 + timedelta(days=1))
    r3, _ = publish(store, [CRITICAL], T0 + timedelta(days=2))
    crit = row(build_ledger(store, POLICY, now=T0 + timedelta(days=3)), CRITICAL)
    assert crit["status"] == "open" and pd.isna(crit["closed_by"])
    assert crit["first_seen"] == pd.Timestamp(T0) and crit["last_run"] == r3 and crit["runs_seen"] == 2


def test_overdue_after_sla(store):
    publish(store, [CRITICAL, MEDIUM], T0)
    ledger = build_ledger(store, POLICY, now=T0 + timedelta(days=8))
    assert bool(row(ledger, CRITICAL)["overdue"]) is True
    assert bool(row(ledger, MEDIUM)["overdue"]) is False


def test_accepted_finding_stops_counting_as_open_until_expiry(store):
    publish(store, [CRITICAL], T0)
    fid = row(build_ledger(store, POLICY, now=T0), CRITICAL)["finding_id"]
    now = T0 + timedelta(days=1)
    (record,) = accept(store, fid, "compensating manual review", "2025-01-10", "ana", now=now)
    assert record["version"] == "1" and record["expires"].startswith("2025-01-11T00:00")

    ledger = build_ledger(store, POLICY, now=T0 + timedelta(days=8))
    crit = row(ledger, CRITICAL)
    assert (crit["status"], crit["accepted_by"], crit["accepted_reason"]) == (
        "accepted",
        "ana",
        "compensating manual review",
    )
    assert bool(crit["overdue"]) is False

    # the next run reports it again: it no longer holds the version
    _, current = publish(store, [CRITICAL], T0 + timedelta(days=9))
    applied = apply_ledger(current, ledger, now=T0 + timedelta(days=9))
    assert applied["status"].tolist() == ["accepted"]
    assert recommend(applied, POLICY).decision == "approve"

    # after expiry it is open and holds again
    expired = build_ledger(store, POLICY, now=T0 + timedelta(days=11))
    assert row(expired, CRITICAL)["status"] == "open"
    assert recommend(apply_ledger(current, expired, now=T0 + timedelta(days=11)), POLICY).decision == "hold"


def test_apply_ledger_takes_first_seen_from_history(store):
    publish(store, [CRITICAL], T0)
    ledger = build_ledger(store, POLICY, now=T0 + timedelta(days=5))
    current = findings_frame([CRITICAL, MEDIUM], make_record(), POLICY, now=T0 + timedelta(days=5))
    applied = apply_ledger(current, ledger, now=T0 + timedelta(days=5))
    assert list(applied.columns) == list(current.columns)
    applied = applied.set_index("check")
    assert applied.loc["change_control.unapproved", "first_seen"] == pd.Timestamp(T0)
    assert applied.loc["change_control.unapproved", "due"] == pd.Timestamp(T0 + timedelta(days=7))
    assert applied.loc["drift.feature", "first_seen"] == pd.Timestamp(T0 + timedelta(days=5))


def test_latest_acceptance_wins_and_each_accept_is_its_own_object(store, tmp_path):
    publish(store, [CRITICAL], T0)
    fid = row(build_ledger(store, POLICY, now=T0), CRITICAL)["finding_id"]
    accept(store, fid, "first", "2025-02-01", "ana", now=T0)
    accept(store, fid, "extended", "2025-03-01", "bo", now=T0 + timedelta(days=1))
    objects = sorted((tmp_path / "evidence" / ACCEPTANCES).iterdir())
    assert [json.loads(p.read_text())["reason"] for p in objects] == ["first", "extended"]
    crit = row(build_ledger(store, POLICY, now=T0 + timedelta(days=40)), CRITICAL)
    assert (crit["status"], crit["accepted_by"]) == ("accepted", "bo")


def test_concurrent_accepts_lose_nothing(store):
    publish(store, [CRITICAL], T0)
    fid = row(build_ledger(store, POLICY, now=T0), CRITICAL)["finding_id"]
    written = accept_concurrently(store.root, fid, 20, now=T0 + timedelta(days=1))
    saved = read_acceptances(store)
    assert len(written) == 20 and sorted(saved["by"]) == sorted(r["by"] for r in written)
    assert saved["by"].nunique() == 20


def test_acceptances_recorded_before_the_journal_still_count(store, tmp_path):
    """Evidence roots from before the journal hold `_portfolio/acceptances.jsonl`; it is read first."""
    publish(store, [CRITICAL, MEDIUM], T0)
    ledger = build_ledger(store, POLICY, now=T0)
    crit, med = row(ledger, CRITICAL)["finding_id"], row(ledger, MEDIUM)["finding_id"]
    old = [
        {"finding_id": f, "model": "credit", "version": "1", "reason": "old", "by": "cy"}
        | {"accepted_at": T0.isoformat(), "expires": (T0 + timedelta(days=90)).isoformat()}
        for f in (crit, med)
    ]
    legacy = tmp_path / "evidence" / LEGACY_ACCEPTANCES
    legacy.parent.mkdir(parents=True)
    legacy.write_text("".join(json.dumps(r) + "\n" for r in old) + "not json\n")
    accept(store, crit, "renewed", "2025-02-01", "bo", now=T0 + timedelta(days=1))
    assert read_acceptances(store)["reason"].tolist() == ["old", "old", "renewed"]
    ledger = build_ledger(store, POLICY, now=T0 + timedelta(days=2))
    assert row(ledger, CRITICAL)["accepted_by"] == "bo" and row(ledger, MEDIUM)["accepted_by"] == "cy"


def test_accept_only_open_versions_by_default(store):
    publish(store, [CRITICAL], T0, version="1")
    publish(store, [CRITICAL], T0, version="2")
    publish(store, [], T0 + timedelta(days=1), version="2")
    fid = row(build_ledger(store, POLICY, now=T0), CRITICAL)["finding_id"]
    records = accept(store, fid, "ok", "2025-06-01", "ana", now=T0 + timedelta(days=2))
    assert [r["version"] for r in records] == ["1"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"finding_id": "0000000000000000"}, "unknown finding id"),
        ({"reason": "  "}, "needs a reason"),
        ({"by": ""}, "who accepts"),
        ({"expires": "2024-12-31"}, "not in the future"),
        ({"expires": "next week"}, "not an ISO 8601"),
        ({"version": "7"}, "never reported for version 7"),
    ],
)
def test_accept_rejects_bad_input(store, kwargs, message):
    publish(store, [CRITICAL], T0)
    fid = row(build_ledger(store, POLICY, now=T0), CRITICAL)["finding_id"]
    args = {"finding_id": fid, "reason": "ok", "expires": "2025-06-01", "by": "ana", **kwargs}
    with pytest.raises(InputError, match=message):
        accept(store, now=T0 + timedelta(days=1), **args)
    assert not store.fs.exists(f"{store.base}/{ACCEPTANCES}")


def test_closed_finding_cannot_be_accepted(store):
    publish(store, [CRITICAL], T0)
    publish(store, [], T0 + timedelta(days=1))
    fid = row(build_ledger(store, POLICY, now=T0), CRITICAL)["finding_id"]
    with pytest.raises(InputError, match="closed"):
        accept(store, fid, "ok", "2025-06-01", "ana", now=T0 + timedelta(days=2))


def test_empty_store_gives_empty_ledger(store):
    ledger = build_ledger(store, POLICY)
    assert ledger.empty and "status" in ledger.columns


def test_evidence_points_into_the_run_folder(store):
    run_id, _ = publish(store, [replace(MEDIUM, evidence="drift.parquet")], T0)
    ledger = build_ledger(store, POLICY, now=T0)
    assert ledger["evidence"].tolist() == [f"credit/1/{run_id}/drift.parquet"]


def test_ledger_of_one_model(store):
    publish(store, [CRITICAL], T0)
    record = make_record(name="other")
    frame = findings_frame([MEDIUM], record, POLICY, now=T0)
    store.publish_run("other", "1", new_run_id(T0), {"findings.parquet": parquet_bytes(frame)}, {})
    assert len(build_ledger(store, POLICY, now=T0)) == 2
    assert build_ledger(store, POLICY, now=T0, model="other")["model"].tolist() == ["other"]
    assert build_ledger(store, POLICY, now=T0, model="absent").empty
    assert len(build_ledger(store, POLICY, now=T0, model="credit", version="1")) == 1
    assert build_ledger(store, POLICY, now=T0, model="credit", version="2").empty


def test_first_seen_is_what_the_first_run_recorded(store):
    at = T0 + timedelta(seconds=1)  # the run publishes a moment after it stamped its findings
    record = make_record(model_tags={"owner": "ana"})
    frame = findings_frame([CRITICAL], record, POLICY, now=T0)
    store.publish_run(
        "credit",
        "1",
        new_run_id(at),
        {"findings.parquet": parquet_bytes(frame)},
        {"finished_at": at.isoformat()},
    )
    ledger = build_ledger(store, POLICY, now=at)
    assert ledger["first_seen"].item() == pd.Timestamp(T0) and ledger["last_seen"].item() == pd.Timestamp(at)
    later = findings_frame([CRITICAL], record, POLICY, now=at + timedelta(days=1))
    assert apply_ledger(later, ledger)["first_seen"].item() == frame["first_seen"].item()
