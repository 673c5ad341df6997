"""Schedules: monitoring of production versions, and revalidation when a tier's review cadence runs out.

Both run the same per-version job as the sensor (tagged `assurance/kind` monitoring or validation), in
batches of neighbouring versions as a backfill does; the shipped dagster.yaml limits how many run at once.
They start STOPPED: turning them on is a platform team's decision (README, "Run it by itself").
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from assets.partitions import MODEL_VERSIONS, VERSIONS_PER_RUN
from assurance.domain.values import RANGE_END_TAG, RANGE_START_TAG, consecutive, version_order
from assurance.governance.cadence import Due, production_versions, revalidation_due
from assurance.registry.client import fail_fast_http
from assurance.settings import Settings
from resources import EvidenceResource, PolicyResource, RegistryResource
from sensors.validation_job import (
    KIND_TAG,
    REASON_TAG,
    TRIGGER_TAG,
    assure_model_version,
    partitions_in_flight,
    reason_tag,
)


def _snapshot(registry: RegistryResource) -> list:
    """The registry as a tick sees it: an unreachable server fails the tick within seconds."""
    with fail_fast_http():
        return registry.get().snapshot()


def _run_requests(
    context: dg.ScheduleEvaluationContext, due: list[Due], kind: str, trigger: str
) -> list[dg.RunRequest] | dg.SkipReason:
    """A run per batch of due versions not already queued or running, batched as a backfill is; partitions
    the sensor never added are added here."""
    busy = partitions_in_flight(context.instance)
    todo = {d.partition: d for d in due if d.partition not in busy}
    if not todo:
        return dg.SkipReason(f"nothing to {kind}: {len(due)} due, {len(due) - len(todo)} already running")
    known = set(context.instance.get_dynamic_partitions(MODEL_VERSIONS))
    missing = sorted((key for key in todo if key not in known), key=version_order)
    if missing:
        context.instance.add_dynamic_partitions(MODEL_VERSIONS, missing)
    order = context.instance.get_dynamic_partitions(MODEL_VERSIONS)
    stamp = (context.scheduled_execution_time or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M")
    tags = {KIND_TAG: kind, TRIGGER_TAG: trigger}
    return [
        _request([todo[key] for key in batch], tags, stamp)
        for batch in consecutive(list(todo), order, VERSIONS_PER_RUN)
    ]


def _request(batch: list[Due], tags: dict[str, str], stamp: str) -> dg.RunRequest:
    """One version's run, or a batch's over its range, its reason that of its first version."""
    first, last = batch[0].partition, batch[-1].partition
    kind = tags[KIND_TAG]
    if len(batch) == 1:
        return dg.RunRequest(
            run_key=f"{kind}:{first}:{stamp}",
            partition_key=first,
            tags={**tags, REASON_TAG: reason_tag(batch[0].reason)},
        )
    reason = f"{len(batch)} versions, {first}: {batch[0].reason}"
    return dg.RunRequest(
        run_key=f"{kind}:{first}..{last}:{stamp}",
        tags={**tags, REASON_TAG: reason_tag(reason), RANGE_START_TAG: first, RANGE_END_TAG: last},
    )


def _stopped_schedule(name: str, cron: str, description: str):
    """A schedule of the per-version job on a UTC cron, STOPPED until a platform team turns it on."""
    return dg.schedule(
        name=name,
        cron_schedule=cron,
        execution_timezone="UTC",
        job=assure_model_version,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=description,
    )


def build_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    """Both schedules, on the crons the settings hold (ASSURANCE_MONITORING_CRON, ASSURANCE_REVALIDATION_CRON)."""

    @_stopped_schedule(
        "monitor_production_versions",
        settings.monitoring_cron,
        (
            "Every version behind a production alias (policy change_control.production_aliases): quality, drift "
            "and performance (or estimated performance) on the latest current data the version's tags point to."
        ),
    )
    def monitor_production_versions(
        context: dg.ScheduleEvaluationContext, registry: RegistryResource, policy: PolicyResource
    ):
        snapshot = _snapshot(registry)
        due = production_versions(snapshot, policy.get())
        return _run_requests(context, due, "monitoring", "monitoring_schedule")

    @_stopped_schedule(
        "revalidate_due_versions",
        settings.revalidation_cron,
        (
            "Full revalidation of every version whose last published evidence is older than its tier's "
            "revalidate_days (policy tiers.levels.<tier>)."
        ),
    )
    def revalidate_due_versions(
        context: dg.ScheduleEvaluationContext,
        registry: RegistryResource,
        evidence: EvidenceResource,
        policy: PolicyResource,
    ):
        snapshot = _snapshot(registry)
        now = context.scheduled_execution_time or datetime.now(UTC)
        due = revalidation_due(snapshot, evidence.get(), policy.get(), now)
        return _run_requests(context, due, "validation", "revalidation_schedule")

    return [monitor_production_versions, revalidate_due_versions]
