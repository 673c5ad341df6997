"""The product running by itself against real servers: registry changes in, evidence and alerts out.

Scenarios run in file order on one shared stack (conftest): a new version is validated, a moved alias
revalidates once, and a registry outage fails ticks visibly without losing the change made meanwhile.
"""

from __future__ import annotations

import time

import dagster as dg
import pytest
from dagster._core.scheduler.instigation import TickStatus
from mlflow import MlflowClient

from assurance.evidence.store import EvidenceStore
from assurance.registry.sensor_state import SensorStateStore
from tests.integration.conftest import (
    MODEL,
    SENSOR_INTERVAL,
    partition_runs,
    sensor_state,
    sensor_ticks,
    wait_run,
)
from tests.integration.servers import wait_for

pytestmark = pytest.mark.integration
EVIDENCE_BOUND_SECONDS = 420


def test_new_version_gets_a_partition_a_successful_run_and_published_evidence(registered, validated):
    stack, run = registered, validated["1"]
    key = f"{MODEL}/1"
    assert stack.instance.has_dynamic_partition("model_versions", key)
    assert run.tags["assurance/kind"] == "validation" and run.tags["dagster/run_key"].startswith(f"{key}:")
    store = EvidenceStore(str(stack.evidence))
    folder = store.latest_run_path(MODEL, "1")
    assert folder is not None and store.verify(folder) == []
    assert store.read_manifest(folder)["dagster_run_id"] == run.run_id
    finished = stack.instance.get_run_record_by_id(run.run_id).end_time
    latency = finished - stack.registered_at["1"]
    print(f"\nregistration -> published evidence: {latency:.1f} s (bound {EVIDENCE_BOUND_SECONDS} s)")
    assert latency < EVIDENCE_BOUND_SECONDS
    tags = MlflowClient(stack.tracking_uri, stack.tracking_uri).get_model_version(MODEL, "1").tags
    assert tags["assurance.result.report"].startswith(str(stack.evidence))


def test_new_critical_finding_reaches_the_webhook(registered, validated):
    """Version 1 went to production without an approval record: a critical change-control finding."""

    def alert():
        return [
            p
            for p in registered.hook.received
            if p.get("event") == "assurance.finding" and p["version"] == "1"
        ]

    payloads = wait_for("a finding alert for version 1", alert, 60, interval=2)
    unapproved = [p for p in payloads if p["finding"]["check"] == "change_control.unapproved"]
    assert (
        unapproved and unapproved[0]["model"] == MODEL and unapproved[0]["finding"]["severity"] == "critical"
    )
    assert unapproved[0]["report"].endswith("report.html")


def test_written_back_results_do_not_retrigger_and_a_moved_alias_revalidates_once(registered, validated):
    stack = registered
    client = MlflowClient(stack.tracking_uri, stack.tracking_uri)
    settled = time.time()
    wait_for("two more sensor ticks", lambda: len(sensor_ticks(stack.instance, after=settled)) >= 2, 60)
    assert len(partition_runs(stack.instance, f"{MODEL}/1")) == 1  # result tags written back changed nothing
    client.set_registered_model_alias(MODEL, "production", "2")
    run = wait_run(stack, f"{MODEL}/2", 420, **{"assurance/trigger": "registry_change"})
    assert "production" in run.tags["assurance/reason"]
    after = time.time()
    wait_for("three more sensor ticks", lambda: len(sensor_ticks(stack.instance, after=after)) >= 3, 60)
    changes = stack.instance.get_runs(dg.RunsFilter(tags={"assurance/trigger": "registry_change"}))
    assert [r.tags["dagster/partition"] for r in changes] == [f"{MODEL}/2"]


def seen_versions(instance: dg.DagsterInstance, state) -> dict:
    """What the registry sensor has seen: its key-value state, named by its cursor, in its own scope."""
    repository = state.origin.repository_origin
    scope = f"{repository.code_location_origin.location_name}/{repository.repository_name}/{state.name}"
    return SensorStateStore(instance.daemon_cursor_storage, scope).load(state.instigator_data.cursor).state


def test_registry_outage_fails_ticks_keeps_the_cursor_and_loses_no_change(registered, validated):
    stack = registered
    state = sensor_state(stack.instance)
    cursor = state.instigator_data.cursor
    assert f"{MODEL}/1" in seen_versions(stack.instance, state)
    stack.mlflow.stop()
    stopped = time.time()
    try:
        failed = wait_for(
            "a failed registry sensor tick",
            lambda: [
                t for t in sensor_ticks(stack.instance, after=stopped) if t.status == TickStatus.FAILURE
            ],
            SENSOR_INTERVAL * 6 + 30,
        )
        assert "cannot be reached" in failed[0].error.to_string()
        assert sensor_state(stack.instance).instigator_data.cursor == cursor
        # a model owner changes an onboarding tag while the server is down (straight into its store)
        MlflowClient(stack.backend_uri, stack.backend_uri).set_model_version_tag(
            MODEL, "1", "assurance.slices", "segment"
        )
    finally:
        stack.restart_mlflow()
    run = wait_run(stack, f"{MODEL}/1", 420, **{"assurance/trigger": "registry_change"})
    assert "tags" in run.tags["assurance/reason"]
    assert sensor_state(stack.instance).instigator_data.cursor != cursor
