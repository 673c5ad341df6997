"""The registry sensor's stored state: a tiny cursor, values in a real Dagster instance's key-value store."""

from __future__ import annotations

import time
from dataclasses import replace

import dagster as dg
import pytest

from assurance.domain.errors import CursorError
from assurance.registry.client import VersionRef
from assurance.registry.sensor_state import BUCKETS, SensorStateStore, bucket_of
from assurance.registry.watch import encode_state, plan_tick
from tests.support import synthetic_refs as registry


def retagged(refs: list[VersionRef], *indexes: int) -> list[VersionRef]:
    out = list(refs)
    for i in indexes:
        out[i] = replace(out[i], tags={**out[i].tags, "assurance.current": "s3://b/new-window.parquet"})
    return out


def seen_all(refs):
    return plan_tick(refs, {}, 10**6).state


@pytest.fixture(scope="module")
def kv():
    with dg.instance_for_test() as instance:
        yield instance.daemon_cursor_storage


@pytest.fixture
def store(kv, request):
    """A store of its own per test: the scope is the test's name."""
    return SensorStateStore(kv, request.node.name)


def test_state_round_trips_through_a_tiny_cursor_and_an_unchanged_tick_writes_nothing(store):
    state = seen_all(registry(20, 5))
    saved = store.save(state, store.load(None))
    assert len(saved.cursor) < 30 and saved.written_bytes > 0
    loaded = store.load(saved.cursor)
    assert loaded.state == state and loaded.unreadable == 0
    again = store.save(loaded.state, loaded)
    assert again == type(again)(saved.cursor, 0)


def test_a_change_writes_only_its_bucket_and_the_root(store):
    refs = registry(250, 20)  # 5,000 versions
    first = store.save(seen_all(refs), store.load(None))
    loaded = store.load(first.cursor)
    changed = retagged(refs, 137)
    start = time.perf_counter()
    plan = plan_tick(changed, store.load(first.cursor).state, 25)
    saved = store.save(plan.state, loaded)
    assert time.perf_counter() - start < 2.0
    assert [c.partition for c in plan.requested] == [f"{refs[137].name}/{refs[137].version}"]
    whole = len(encode_state(plan.state))  # what the whole-state cursor stored on every tick
    assert whole > 25_000 and saved.written_bytes < whole / 8
    after = store.load(saved.cursor)
    assert after.state == plan.state
    moved = {b for b in after.buckets if after.buckets[b] != loaded.buckets[b]}
    assert moved == {bucket_of(refs[137].name)}


def test_a_tick_that_fails_after_writing_leaves_the_committed_state_intact(store):
    refs = registry(30, 3)
    committed = store.save(seen_all(refs), store.load(None)).cursor
    changed = retagged(refs, 0, 40, 80)
    for _ in range(2):  # the tick fails after its writes (its cursor is never stored), then is retried
        previous = store.load(committed)
        plan = plan_tick(changed, previous.state, 25)
        assert len(plan.requested) == 3 and previous.state == seen_all(refs)
        retried = store.save(plan.state, previous)
    assert store.load(retried.cursor).state == seen_all(changed)
    assert store.load(committed).state == seen_all(refs)


def test_saves_that_reuse_old_slots_and_fill_new_ones_at_once_keep_every_value(store):
    # Dagster's storage drops the new keys of a batch that also updates existing ones
    refs = registry(BUCKETS * 2, 2)
    cursor = store.save(seen_all(refs[:10]), store.load(None)).cursor
    for size in (40, 10, 80, len(refs)):
        current = retagged(refs[:size], *range(0, size, 3))
        loaded = store.load(cursor)
        cursor = store.save(seen_all(current), loaded).cursor
        reloaded = store.load(cursor)
        assert reloaded.state == seen_all(current) and reloaded.unreadable == 0
        refs = current + refs[size:]


def test_an_overwritten_value_means_its_versions_are_looked_at_again(kv, store):
    refs = registry(30, 2)
    loaded = store.load(store.save(seen_all(refs), store.load(None)).cursor)
    bucket, (slot, _) = next(iter(loaded.buckets.items()))
    kv.set_cursor_values({store._bucket_key(bucket, slot): encode_state({})})  # e.g. a UI test evaluation
    damaged = store.load(loaded.cursor)
    lost = {f"{r.name}/{r.version}" for r in refs if bucket_of(r.name) == bucket}
    assert damaged.unreadable == 1 and set(loaded.state) - set(damaged.state) == lost
    plan = plan_tick(refs, damaged.state, 10**6)
    assert {c.partition for c in plan.requested} == lost
    assert {c.run_key for c in plan.requested} == {
        c.run_key for c in plan_tick(refs, {}, 10**6).requested if c.partition in lost
    }
    assert store.load(store.save(plan.state, damaged).cursor).state == loaded.state


def test_no_cursor_starts_from_scratch_and_an_older_whole_state_cursor_still_reads(store):
    state = seen_all(registry(5, 3))
    store.save(state, store.load(None))
    assert store.load(None).state == {}
    legacy = store.load(encode_state(state))
    assert legacy.state == state
    moved = store.save(legacy.state, legacy)
    assert moved.cursor.startswith("kv1:") and store.load(moved.cursor).state == state


def test_sensors_in_other_scopes_never_see_each_others_values(kv):
    one, other = (
        SensorStateStore(kv, "a/repo/registry_sensor"),
        SensorStateStore(kv, "b/repo/registry_sensor"),
    )
    cursor = one.save(seen_all(registry(5, 1)), one.load(None)).cursor
    assert other.load(cursor).unreadable == BUCKETS and other.load(cursor).state == {}


@pytest.mark.parametrize("cursor", ["kv1:", "kv1:2:0123456789abcdef", "kv1:0:xyz", "kv1:0:0123456789abcdeg"])
def test_a_foreign_cursor_is_a_clear_error(store, cursor):
    with pytest.raises(CursorError, match="cursor --delete"):
        store.load(cursor)
