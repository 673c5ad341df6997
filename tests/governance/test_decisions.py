"""Decision records: bound to the version's latest evidence, validated, one create-only object each."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from assurance.domain.errors import InputError
from assurance.evidence.store import MANIFEST, EvidenceStore, new_run_id
from assurance.governance.decisions import (
    DECISIONS,
    decision_tags,
    latest_decisions,
    read_decisions,
    record_decision,
)
from assurance.registry.watch import tracked_tags
from tests.support import decide_concurrently

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    return EvidenceStore(str(tmp_path / "evidence"))


def publish(store, at, recommendation="hold", version="1"):
    run_id = new_run_id(at)
    store.publish_run("credit", version, run_id, {"a.txt": b"a"}, {"recommendation": recommendation})
    return run_id


def test_a_decision_is_bound_to_the_latest_run_and_its_manifest(store):
    publish(store, T0, "approve")
    latest = publish(store, T0 + timedelta(days=1), "hold")
    record = record_decision(
        store,
        "credit",
        "1",
        "approve_with_conditions",
        " ana ",
        "retrain planned",
        [{"condition": "retrain on 2026 data", "due": "2026-06-30"}, {"condition": "monthly review"}],
        now=T0 + timedelta(days=2),
    )
    manifest = store.read_bytes(f"{store.version_path('credit', '1')}/{latest}/{MANIFEST}")
    assert (record["run_id"], record["recommendation"]) == (latest, "hold")
    assert record["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert record["by"] == "ana" and record["decided_at"].startswith("2026-03-03T00:00")
    assert record["conditions"] == [
        {"condition": "retrain on 2026 data", "due": "2026-07-01T00:00:00+00:00"},
        {"condition": "monthly review", "due": None},
    ]
    (saved,) = read_decisions(store).to_dict("records")
    assert saved["decision_id"] == record["decision_id"] and saved["conditions"] == record["conditions"]
    tags = decision_tags(record)
    assert (
        tags["assurance.decision"] == "approve_with_conditions"
        and tags["assurance.decision.run_id"] == latest
    )
    assert "retrain on 2026 data (due 2026-07-01)" in tags["assurance.decision.conditions"]
    assert tracked_tags(tags) == {}  # a decision never starts a run


def test_no_evidence_no_decision(store):
    with pytest.raises(InputError, match="no published evidence"):
        record_decision(store, "credit", "1", "approve", "ana", "looks fine", now=T0)
    assert store.read_folder(DECISIONS) == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decision": "maybe"}, "not one of approve, approve_with_conditions, hold"),
        ({"by": " "}, "who decides"),
        ({"reason": ""}, "needs a reason"),
        ({"decision": "approve_with_conditions"}, "needs at least one --condition"),
        ({"conditions": [{"condition": "x"}]}, "is approve_with_conditions"),
        ({"decision": "hold", "conditions": [{"condition": "x", "due": "2026-01-01"}]}, "not in the future"),
        ({"decision": "hold", "conditions": [{"condition": "x", "due": "soon"}]}, "not an ISO 8601"),
        ({"decision": "hold", "conditions": [{"condition": " "}]}, "needs its text"),
    ],
)
def test_bad_decisions_are_refused_and_nothing_is_written(store, kwargs, message):
    publish(store, T0)
    args = {"decision": "approve", "by": "ana", "reason": "fine", "conditions": ()} | kwargs
    with pytest.raises(InputError, match=message):
        record_decision(store, "credit", "1", now=T0 + timedelta(days=1), **args)
    assert read_decisions(store).empty


def test_a_later_decision_supersedes_without_erasing(store):
    publish(store, T0)
    publish(store, T0, version="2")
    record_decision(store, "credit", "1", "approve", "ana", "ok", now=T0 + timedelta(days=1))
    record_decision(store, "credit", "1", "hold", "bo", "new drift", now=T0 + timedelta(days=2))
    record_decision(store, "credit", "2", "approve", "ana", "ok", now=T0 + timedelta(days=1))
    assert len(read_decisions(store)) == 3 and len(read_decisions(store, "credit", "1")) == 2
    latest = latest_decisions(read_decisions(store)).set_index("version")
    assert (latest.loc["1", "decision"], latest.loc["1", "by"]) == ("hold", "bo")
    assert latest.loc["2", "decision"] == "approve"


def test_concurrent_decisions_lose_nothing(store):
    publish(store, T0)
    written = decide_concurrently(store.root, "credit", "1", 12, now=T0 + timedelta(days=1))
    saved = read_decisions(store)
    assert sorted(saved["decision_id"]) == sorted(r["decision_id"] for r in written)
    assert saved["by"].nunique() == 12 and len(store.read_folder(DECISIONS)) == 12
