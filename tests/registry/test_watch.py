"""Registry watching without Dagster: fingerprints, the cursor, and what one tick decides."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from assurance.domain.errors import CursorError
from assurance.registry.client import VersionRef
from assurance.registry.watch import decode_state, encode_state, fingerprint, plan_tick, run_key, seen
from tests.support import synthetic_refs


def ref(name="credit", version="1", tags=None, aliases=(), status="READY", created=0) -> VersionRef:
    base = {"owner": "risk", "assurance.current": "s3://b/current.parquet"}
    return VersionRef(
        name, version, status, {**base, **(tags or {})}, tuple(aliases), f"run{version}", created
    )


def state_after(*refs):
    """The state after a tick that requested every one of `refs`."""
    return plan_tick(refs, {}, 10**6).state


def test_result_and_decision_tags_do_not_change_the_fingerprint_but_onboarding_tags_do():
    base = ref()
    with_result = replace(base, tags={**base.tags, "assurance.result.recommendation": "hold"})
    moved_data = replace(base, tags={**base.tags, "assurance.current": "s3://b/2025-06.parquet"})
    assert fingerprint(with_result) == fingerprint(base)
    decided = {
        "assurance.decision": "approve",
        "assurance.decision.by": "ana",
        "assurance.decision.run_id": "r",
    }
    assert fingerprint(replace(base, tags={**base.tags, **decided})) == fingerprint(base)
    # only the product's own names: a look-alike an owner sets is an ordinary tag
    assert fingerprint(replace(base, tags={**base.tags, "assurance.decisions_pending": "2"})) != fingerprint(
        base
    )
    assert fingerprint(moved_data) != fingerprint(base)
    assert fingerprint(replace(base, aliases=("production",))) != fingerprint(base)
    assert fingerprint(replace(base, status="FAILED_REGISTRATION")) != fingerprint(base)
    assert fingerprint(replace(base, run_id="other")) != fingerprint(base)


def test_run_key_names_the_partition_and_the_state():
    r = ref(name="fraud.v2-model", version="12")
    assert run_key(r) == f"fraud.v2-model/12:{fingerprint(r)}"


def test_first_tick_requests_every_ready_version_and_skips_pending_ones():
    refs = [
        ref(version="1", created=1),
        ref(version="2", created=2),
        ref(version="3", status="PENDING_REGISTRATION"),
    ]
    plan = plan_tick(refs, {}, 25)
    assert [c.partition for c in plan.requested] == ["credit/1", "credit/2"]
    assert {c.trigger for c in plan.requested} == {"new_version"}
    assert set(plan.state) == {"credit/1", "credit/2"} and plan.not_ready == 1


def test_unchanged_registry_requests_nothing_and_keeps_the_cursor_identical():
    refs = [ref(version=str(v)) for v in range(1, 4)]
    state = state_after(*refs)
    plan = plan_tick(refs, decode_state(encode_state(state)), 25)
    assert plan.requested == [] and encode_state(plan.state) == encode_state(state)


def test_changed_onboarding_tag_revalidates_only_that_version():
    v1, v2 = ref(version="1"), ref(version="2")
    changed = replace(v2, tags={**v2.tags, "assurance.current": "s3://b/july.parquet"})
    plan = plan_tick([v1, changed], state_after(v1, v2), 25)
    assert [(c.partition, c.trigger) for c in plan.requested] == [("credit/2", "registry_change")]
    assert "tags" in plan.requested[0].detail


def test_result_tags_written_back_trigger_nothing():
    v1 = ref()
    written = replace(v1, tags={**v1.tags, "assurance.result.report": "s3://e/report.html"})
    assert plan_tick([written], state_after(v1), 25).requested == []


def test_moving_an_alias_revalidates_the_version_it_moved_to_once():
    v1, v2 = ref(version="1", aliases=("production",)), ref(version="2")
    before = state_after(v1, v2)
    moved = [replace(v1, aliases=()), replace(v2, aliases=("production",))]
    plan = plan_tick(moved, before, 25)
    assert [c.partition for c in plan.requested] == ["credit/2"]
    assert "production" in plan.requested[0].detail
    again = plan_tick(moved, plan.state, 25)
    assert again.requested == [] and again.state["credit/1"].aliases == ()


def test_cap_defers_the_rest_to_the_next_tick_without_marking_them_seen():
    refs = [ref(version=str(v), created=v) for v in range(1, 6)]
    first = plan_tick(refs, {}, 2)
    assert [c.partition for c in first.requested] == ["credit/1", "credit/2"]
    assert len(first.deferred) == 3 and set(first.state) == {"credit/1", "credit/2"}
    second = plan_tick(refs, decode_state(encode_state(first.state)), 2)
    assert [c.partition for c in second.requested] == ["credit/3", "credit/4"]
    assert plan_tick(refs, first.state, 0).requested == []


def test_new_versions_go_before_changes_when_the_cap_bites():
    old = ref(version="1", created=1)
    changed = replace(old, tags={**old.tags, "owner": "someone else"})
    plan = plan_tick([changed, ref(version="2", created=2)], state_after(old), 1)
    assert [c.partition for c in plan.requested] == ["credit/2"]
    assert [c.partition for c in plan.deferred] == ["credit/1"]


def test_new_versions_wait_until_settled_but_changes_do_not():
    old, young = ref(version="1", created=1_000), ref(version="2", created=9_000)
    plan = plan_tick([old, young], {}, 25, settled_before_ms=5_000)
    assert [c.partition for c in plan.requested] == ["credit/1"] and plan.settling == 1
    assert "credit/2" not in plan.state
    changed = replace(young, tags={**young.tags, "owner": "new owner"})
    assert len(plan_tick([changed], state_after(young), 25, settled_before_ms=5_000).requested) == 1


def test_deleted_versions_are_retired_and_leave_the_state():
    v1, v2 = ref(version="1"), ref(version="2")
    plan = plan_tick([v2], state_after(v1, v2), 25)
    assert plan.retired == ["credit/1"] and set(plan.state) == {"credit/2"}
    assert plan.requested == []
    assert "retired" in plan.summary()


def test_cursor_round_trips_names_with_odd_characters_and_aliases():
    refs = [
        ref(name="a model, with: commas", version="1", aliases=("champion", "prod")),
        ref(name="ünïcode..name", version="10"),
        ref(name="ünïcode..name", version="9", aliases=("live",)),
    ]
    state = state_after(*refs)
    assert decode_state(encode_state(state)) == state
    assert state["a model, with: commas/1"] == seen(refs[0])


# garbage, base64 of plain text, a cursor of another format version
@pytest.mark.parametrize("cursor", ["not base64 !!", "aGVsbG8=", "eJyrVkpTsjLSUcpVsqqurQUAHBwEHg=="])
def test_a_foreign_cursor_is_a_clear_error(cursor):
    with pytest.raises(CursorError, match="cursor --delete"):
        decode_state(cursor)


def test_encoded_state_stays_compact_and_a_plan_fast_at_5000_versions():
    """The encoding of the key-value buckets and of older whole-state cursors (per tick, see test_sensor_state)."""
    refs = synthetic_refs(250, 20)
    cursor = encode_state(state_after(*refs))
    assert len(cursor) < 40_000  # ~6.7 bytes per version
    start = time.perf_counter()
    plan = plan_tick(refs, decode_state(cursor), 25)
    assert plan.requested == [] and time.perf_counter() - start < 2.0
