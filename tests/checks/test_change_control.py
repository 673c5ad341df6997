from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from assurance.checks import documentation
from assurance.checks.change_control import alias_history, alias_table, assess, parse_approval_time, run
from assurance.domain.findings import findings_frame
from assurance.domain.values import Inputs
from assurance.evidence.store import EvidenceStore, new_run_id, parquet_bytes
from assurance.policy.model import Policy
from assurance.policy.recommendation import recommend
from tests.support import make_record

CREATED = datetime(2024, 3, 1, 12, tzinfo=UTC)
APPROVED = {"approval.ticket": "CHG-1", "approval.approved_by": "ana", "approval.approved_at": "2024-03-02"}
EMPTY = pd.DataFrame(columns=["alias", "version", "production", "observed_at"])


def record(tags=None, aliases=("production",), version="3"):
    return make_record(
        version=version,
        version_tags=tags or {},
        aliases=list(aliases),
        created_ms=int(CREATED.timestamp() * 1000),
    )


def checks(findings):
    return {f.check for f in findings}


def test_unapproved_production_version_is_critical():
    (finding,) = assess(record(), Policy(), EMPTY, datetime.now(UTC))
    assert finding.check == "change_control.unapproved"
    assert finding.severity == "critical"
    assert "approval.ticket is not set" in finding.message


def test_not_in_production_needs_no_approval():
    assert assess(record(aliases=["staging"]), Policy(), EMPTY, datetime.now(UTC)) == []


def test_production_aliases_from_policy_case_insensitive():
    policy = Policy().with_overrides({"change_control": {"production_aliases": ["serving"]}})
    assert checks(assess(record(aliases=["Serving"]), policy, EMPTY, datetime.now(UTC))) == {
        "change_control.unapproved"
    }
    assert assess(record(aliases=["production"]), policy, EMPTY, datetime.now(UTC)) == []


def test_valid_approval_passes_same_day_as_registration():
    tags = {**APPROVED, "approval.approved_at": "2024-03-01"}
    assert assess(record(tags), Policy(), EMPTY, datetime.now(UTC)) == []


def test_unparseable_date_is_unapproved():
    (finding,) = assess(
        record({**APPROVED, "approval.approved_at": "yesterday"}), Policy(), EMPTY, datetime.now(UTC)
    )
    assert finding.check == "change_control.unapproved"
    assert "not an ISO 8601 date" in finding.message


def test_approval_before_registration():
    tags = {**APPROVED, "approval.approved_at": "2024-03-01T11:00:00Z"}
    assert checks(assess(record(tags), Policy(), EMPTY, datetime.now(UTC))) == {
        "change_control.approval_predates_version"
    }


def test_approval_after_first_sighting_in_production():
    seen = CREATED + timedelta(days=1)
    history = alias_table(record(), Policy(), seen)
    tags = {**APPROVED, "approval.approved_at": "2024-03-05T09:00:00+00:00"}
    assert checks(assess(record(tags), Policy(), history, datetime.now(UTC))) == {
        "change_control.approved_after_alias"
    }
    # a sighting of another version or of a non-production alias does not count
    other = alias_table(record(version="2"), Policy(), seen)
    assert assess(record(tags), Policy(), other, datetime.now(UTC)) == []


def test_approval_in_the_future_is_late():
    tags = {**APPROVED, "approval.approved_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()}
    assert checks(assess(record(tags), Policy(), EMPTY, datetime.now(UTC))) == {
        "change_control.approved_after_alias"
    }


@pytest.mark.parametrize(
    ("text", "resolution"),
    [
        ("2024-03-02", "D"),
        ("2024-03-02T10", "h"),
        ("2024-03-02T10:00", "min"),
        ("2024-03-02T10:00:05Z", "s"),
        ("20240302T100005+01:00", "s"),
        ("2024-03-02T10:00:05.250-05:00", None),
    ],
)
def test_parse_approval_time(text, resolution):
    parsed = parse_approval_time(text)
    assert parsed.resolution == resolution and parsed.at.tzinfo is not None


def test_approval_stamped_to_the_second_same_second_as_registration():
    created = CREATED + timedelta(milliseconds=700)
    rec = make_record(
        version="3",
        version_tags={**APPROVED, "approval.approved_at": "2024-03-01T12:00:00Z"},
        aliases=["production"],
        created_ms=int(created.timestamp() * 1000),
    )
    assert assess(rec, Policy(), EMPTY, datetime.now(UTC)) == []
    rec.tags["approval.approved_at"] = "2024-03-01T11:59:59Z"
    assert checks(assess(rec, Policy(), EMPTY, datetime.now(UTC))) == {
        "change_control.approval_predates_version"
    }


def test_history_from_store_survives_alias_moves(tmp_path):
    store = EvidenceStore(str(tmp_path))
    seen = datetime(2024, 3, 3, tzinfo=UTC)
    v3 = record()
    store.publish_run(
        "credit", "3", "r1", {"change_control.parquet": parquet_bytes(alias_table(v3, Policy(), seen))}, {}
    )
    # the alias moved away from v3 since; the old sighting is still in its history
    history = alias_history(store, "credit", "3")
    assert history["alias"].tolist() == ["production"]
    assert history["observed_at"].iloc[0] == pd.Timestamp(seen)
    late = record({**APPROVED, "approval.approved_at": "2024-03-04"})
    section = run(Inputs(record=late, policy=Policy(), store=store))
    assert checks(section.findings) == {"change_control.approved_after_alias"}
    assert section.tables["change_control"][["alias", "version", "production"]].values.tolist() == [
        ["production", "3", True]
    ]


def test_run_without_store_records_aliases_and_says_why():
    section = run(Inputs(record=record(aliases=["production", "shadow"]), policy=Policy()))
    assert section.tables["change_control"]["alias"].tolist() == ["production", "shadow"]
    assert section.skipped


def test_production_without_card_or_approval_holds():
    rec = make_record(
        model_tags={"owner": "a", "use_case": "churn outreach"},
        aliases=["production"],
        documents={},
        artifacts=["model"],
    )
    policy = Policy()
    sections = [documentation.run(Inputs(record=rec, policy=policy)), run(Inputs(record=rec, policy=policy))]
    frame = findings_frame([f for s in sections for f in s.findings], rec, policy)
    assert {"documentation", "change_control"} <= set(frame["category"])
    assert recommend(frame, policy).decision == "hold"


# --- approvals against the evidence ---------------------------------------------------------------

GOOD_DATA = {"reference": {"fingerprint": "ref-1"}, "current": {"fingerprint": "cur-1"}}


def publish_run(store, at, recommendation="approve", findings=(), data=GOOD_DATA, version="3"):
    """A published run of `credit` at `at` with these `(check, subject, severity)` open findings."""
    from assurance.domain.findings import Finding

    rec = make_record(version=version)
    frame = findings_frame(
        [Finding("drift", check, subject, sev, f"{subject} is off.") for check, subject, sev in findings],
        rec,
        Policy(),
        now=at,
    )
    manifest = {"finished_at": at.isoformat(), "recommendation": recommendation, "data": data}
    run_id = new_run_id(at)
    store.publish_run("credit", version, run_id, {"findings.parquet": parquet_bytes(frame)}, manifest)
    return run_id


def decide(store, decision, at, **kwargs):
    from assurance.governance.decisions import record_decision

    conditions = [{"condition": "monthly review"}] if decision == "approve_with_conditions" else ()
    return record_decision(store, "credit", "3", decision, "ana", "reviewed", conditions, now=at, **kwargs)


def evidence_checks(store, tags=None):
    """The change-control checks of version 3, not in production, given the store's runs and decisions."""
    return checks(run(Inputs(record=record(tags, aliases=()), policy=Policy(), store=store)).findings)


@pytest.fixture
def store(tmp_path):
    return EvidenceStore(str(tmp_path / "evidence"))


def test_approval_tags_before_the_first_evidence(store):
    first = CREATED + timedelta(days=2)
    publish_run(store, first)
    early = {**APPROVED, "approval.approved_at": "2024-03-02"}  # after registration, before the evidence
    assert evidence_checks(store, early) == {"change_control.approval_before_evidence"}
    assert evidence_checks(store, {**APPROVED, "approval.approved_at": "2024-03-03"}) == set()  # same day
    assert evidence_checks(store, {**APPROVED, "approval.approved_at": "2024-03-04T10:00Z"}) == set()
    assert evidence_checks(store) == set()  # no approval, nothing to question


def test_approval_tags_without_any_evidence_predate_it():
    section = run(Inputs(record=record(APPROVED, aliases=()), policy=Policy(), store=None))
    assert checks(section.findings) == {"change_control.approval_before_evidence"}
    (finding,) = section.findings
    assert finding.severity == "low" and "assurance decide" in finding.message


def test_a_decision_recorded_before_the_first_evidence(store):
    from assurance.evidence import journal
    from assurance.governance.decisions import DECISIONS, evidence_binding

    publish_run(store, CREATED + timedelta(days=5))
    # a record dated before the evidence existed (written by another tool, or by hand)
    record = {
        "decision_id": "d1",
        "model": "credit",
        "version": "3",
        "decision": "approve",
        "by": "ana",
        "reason": "signed off",
        "conditions": [],
        "decided_at": (CREATED + timedelta(days=1)).isoformat(),
        **evidence_binding(store, "credit", "3"),
    }
    journal.append(store, DECISIONS, [record])
    assert evidence_checks(store) == {"change_control.approval_before_evidence"}
    journal.append(
        store,
        DECISIONS,
        [{**record, "decision": "hold", "decided_at": (CREATED + timedelta(days=6)).isoformat()}],
    )
    assert evidence_checks(store) == set()


def test_an_approval_that_overrules_a_hold(store):
    publish_run(
        store, CREATED + timedelta(days=1), recommendation="hold", findings=[("drift.feature", "x", "high")]
    )
    decide(store, "hold", CREATED + timedelta(days=2))
    assert evidence_checks(store) == set()
    decide(store, "approve_with_conditions", CREATED + timedelta(days=3))
    assert evidence_checks(store) == {"change_control.approval_overrules_hold"}
    decide(store, "hold", CREATED + timedelta(days=4))  # the latest decision is the one in force
    assert evidence_checks(store) == set()


def test_an_approval_outdated_by_new_severe_findings(store):
    publish_run(store, CREATED + timedelta(days=1), findings=[("drift.feature", "x", "high")])
    decide(store, "approve", CREATED + timedelta(days=2))
    # the same high finding again, and a new medium one: nothing material
    publish_run(
        store,
        CREATED + timedelta(days=3),
        findings=[("drift.feature", "x", "high"), ("drift.feature", "y", "medium")],
    )
    assert evidence_checks(store) == set()
    publish_run(store, CREATED + timedelta(days=4), findings=[("drift.feature", "z", "critical")])
    section = run(Inputs(record=record(aliases=()), policy=Policy(), store=store))
    (finding,) = section.findings
    assert finding.check == "change_control.approval_outdated" and finding.severity == "high"
    assert "1 new critical/high findings (drift.feature on z)" in finding.message
    # a decision on the latest evidence covers it again
    decide(store, "approve", CREATED + timedelta(days=5))
    assert evidence_checks(store) == set()


def test_an_approval_outdated_by_changed_data(store):
    publish_run(store, CREATED + timedelta(days=1))
    decide(store, "approve", CREATED + timedelta(days=2))
    publish_run(store, CREATED + timedelta(days=3), data={**GOOD_DATA, "current": {"fingerprint": None}})
    assert evidence_checks(store) == set()  # a fingerprint that could not be taken is no change
    publish_run(store, CREATED + timedelta(days=4), data={**GOOD_DATA, "current": {"fingerprint": "cur-2"}})
    (finding,) = run(Inputs(record=record(aliases=()), policy=Policy(), store=store)).findings
    assert finding.check == "change_control.approval_outdated" and "current data changed" in finding.message
    # other versions' runs and decisions do not count
    publish_run(
        store, CREATED + timedelta(days=5), version="4", data={**GOOD_DATA, "reference": {"fingerprint": "x"}}
    )
    assert (
        "reference"
        not in run(Inputs(record=record(aliases=()), policy=Policy(), store=store)).findings[0].message
    )


def test_the_run_that_brings_changed_data_flags_the_approval_itself(store):
    from assurance.domain.values import Dataset

    publish_run(store, CREATED + timedelta(days=1))
    decide(store, "approve", CREATED + timedelta(days=2))

    def this_run(current_fingerprint):
        reference = Dataset("reference", "ref.parquet", fingerprint="ref-1")
        current = Dataset("current", "cur.parquet", fingerprint=current_fingerprint)
        inputs = Inputs(
            record=record(aliases=()), policy=Policy(), reference=reference, current=current, store=store
        )
        return run(inputs).findings

    assert this_run("cur-1") == [] and this_run(None) == []
    (finding,) = this_run("cur-2")
    assert finding.check == "change_control.approval_outdated"
    assert "but this run" in finding.message and "current data changed" in finding.message
