"""Which versions the schedules pick: production aliases from the policy, and review cadence per tier."""

from __future__ import annotations

from datetime import UTC, datetime

from assurance.evidence.store import EvidenceStore, new_run_id
from assurance.governance.cadence import last_assured, production_versions, revalidation_due
from assurance.policy.model import Policy
from assurance.registry.client import VersionRef

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def ref(version, tags=None, aliases=(), status="READY", name="credit"):
    return VersionRef(name, str(version), status, {"owner": "risk", **(tags or {})}, tuple(aliases), "run", 0)


def publish(store: EvidenceStore, r: VersionRef, when: datetime) -> None:
    store.publish_run(r.name, r.version, new_run_id(when), {"findings.parquet": b""}, {})


def test_production_versions_follow_the_policys_aliases_case_insensitively():
    refs = [
        ref(1, aliases=("Champion",)),
        ref(2, aliases=("challenger",)),
        ref(3, aliases=("live",), status="PENDING"),
    ]
    assert [d.partition for d in production_versions(refs, Policy.load())] == ["credit/1"]
    assert "Champion" in production_versions(refs, Policy.load())[0].reason
    custom = Policy(data={**Policy.load().data, "change_control": {"production_aliases": ["challenger"]}})
    assert [d.partition for d in production_versions(refs, custom)] == ["credit/2"]


def test_revalidation_is_due_when_the_tier_cadence_has_run_out(tmp_path):
    store = EvidenceStore(str(tmp_path))
    high_old = ref(1, {"risk_tier": "high"})  # 90 days
    low_old = ref(2, {"risk_tier": "low"})  # 365 days
    high_recent = ref(3, {"risk_tier": "high"})
    never = ref(4, {"risk_tier": "high"})
    publish(store, high_old, datetime(2025, 2, 1, tzinfo=UTC))
    publish(store, low_old, datetime(2025, 2, 1, tzinfo=UTC))
    publish(store, high_recent, datetime(2025, 5, 1, tzinfo=UTC))
    due = revalidation_due([high_old, low_old, high_recent, never], store, Policy.load(), NOW)
    assert [d.partition for d in due] == ["credit/1"]
    assert "high tier reviews every 90 days" in due[0].reason and "2025-02-01" in due[0].reason


def test_tier_derived_by_policy_rules_sets_the_cadence(tmp_path):
    store = EvidenceStore(str(tmp_path))
    derived_high = ref(1, {"use_case": "consumer credit decisions"})  # policy rule: high, 90 days
    derived_low = ref(2, {"use_case": "internal forecast"})  # policy rule: low, 365 days
    for r in (derived_high, derived_low):
        publish(store, r, datetime(2025, 1, 15, tzinfo=UTC))
    assert [
        d.partition for d in revalidation_due([derived_high, derived_low], store, Policy.load(), NOW)
    ] == ["credit/1"]


def test_last_assured_is_the_newest_published_run(tmp_path):
    store = EvidenceStore(str(tmp_path))
    r = ref(1)
    assert last_assured(store, "credit", "1") is None
    publish(store, r, datetime(2025, 1, 1, tzinfo=UTC))
    publish(store, r, datetime(2025, 3, 1, 12, tzinfo=UTC))
    assert last_assured(store, "credit", "1") == datetime(2025, 3, 1, 12, tzinfo=UTC)
