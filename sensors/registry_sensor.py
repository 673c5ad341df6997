"""The registry sensor: one paginated registry snapshot per tick; new and changed versions get validated.

The decisions (fingerprints, what changed, the per-tick cap, the cursor) live in
`assurance.registry.watch`; this module turns them into Dagster run requests, partition additions and retirement observations.
"""

from __future__ import annotations

import time

import dagster as dg

from assets.partitions import model_versions
from assurance.registry.client import fail_fast_http
from assurance.registry.sensor_state import SensorStateStore
from assurance.registry.watch import TickPlan, plan_tick
from assurance.settings import Settings
from resources import RegistryResource
from sensors.validation_job import REASON_TAG, TRIGGER_TAG, assure_model_version, queued_runs, reason_tag

REGISTRY_SENSOR = "registry_sensor"


def _run_requests(plan: TickPlan) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(
            run_key=change.run_key,
            partition_key=change.partition,
            tags={
                TRIGGER_TAG: change.trigger,
                REASON_TAG: reason_tag(change.detail),
                "assurance/fingerprint": change.fingerprint,
            },
        )
        for change in plan.requested
    ]


def _retirements(plan: TickPlan) -> list[dg.AssetObservation]:
    """Versions gone from the registry stay as partitions with their evidence; the observation records when."""
    return [
        dg.AssetObservation(
            asset_key="model_version",
            partition=key,
            description="Retired: the version is no longer in the registry. Its partition and evidence are kept.",
            metadata={"retired": True},
        )
        for key in plan.retired
    ]


def _state_store(context: dg.SensorEvaluationContext) -> SensorStateStore:
    """The sensor's state in the instance's key-value store, scoped like Dagster scopes its cursor."""
    origin = context.code_location_origin
    scope = f"{origin.location_name if origin else ''}/{context.repository_name or ''}/{REGISTRY_SENSOR}"
    return SensorStateStore(context.instance.daemon_cursor_storage, scope)


def build_registry_sensor(settings: Settings) -> dg.SensorDefinition:
    """The registry sensor with its interval, per-tick cap and settle period taken from `settings`."""

    @dg.sensor(
        name=REGISTRY_SENSOR,
        job=assure_model_version,
        minimum_interval_seconds=settings.sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Watches the MLflow registry: a new READY version gets its partition and a full validation (once "
            "ASSURANCE_SENSOR_SETTLE_SECONDS, default 15, have passed since registration); a changed "
            "tag (other than assurance.result.*), status or an alias moved onto a version revalidates it. At most "
            "ASSURANCE_SENSOR_MAX_RUNS runs per tick (default 25), the rest next tick. What it has seen lives in "
            "the instance's key-value store, named by a small cursor; a tick writes only what changed. An "
            "unreachable registry fails the tick and keeps the cursor, so no change is lost."
        ),
    )
    def registry_sensor(context: dg.SensorEvaluationContext, registry: RegistryResource) -> dg.SensorResult:
        store = _state_store(context)
        previous = store.load(context.cursor)
        with fail_fast_http():
            snapshot = registry.get().snapshot()
        cap = settings.sensor_max_runs
        settled_before_ms = int((time.time() - settings.sensor_settle_seconds) * 1000)
        plan = plan_tick(
            snapshot, previous.state, cap - min(cap, queued_runs(context.instance)), settled_before_ms
        )
        saved = store.save(plan.state, previous)
        summary = plan.summary()
        if previous.unreadable:
            summary += (
                f"; {previous.unreadable} parts of the stored state were unreadable, their versions rescanned"
            )
        context.log.info(f"{summary}; {saved.written_bytes:,} bytes of sensor state written")
        cursor = saved.cursor
        observations = _retirements(plan)
        if not plan.requested:
            return dg.SensorResult(skip_reason=summary, cursor=cursor, asset_events=observations)
        return dg.SensorResult(
            run_requests=_run_requests(plan),
            dynamic_partitions_requests=[
                model_versions.build_add_request([c.partition for c in plan.requested])
            ],
            cursor=cursor,
            asset_events=observations,
        )

    return registry_sensor
