from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from assurance.checks import documentation
from assurance.checks.change_control import alias_history, alias_table, assess, parse_approval_time, run
from assurance.domain.findings import findings_frame
from assurance.domain.values import Inputs
from assurance.evidence.store import EvidenceStore, parquet_bytes
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
