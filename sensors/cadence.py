"""Schedules: monitoring of production versions, and revalidation when a tier's review cadence runs out.

Both run the same per-version job as the sensor, one run per version (tagged `assurance/kind` monitoring
or validation); the shipped dagster.yaml limits how many run at once. They start STOPPED: turning them on
is a platform team's decision (README, "Run it by itself").
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from assets.partitions import MODEL_VERSIONS
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
    """One run per due version not already queued or running; partitions the sensor never added are added here."""
    busy = partitions_in_flight(context.instance)
    todo = [d for d in due if d.partition not in busy]
    if not todo:
        return dg.SkipReason(f"nothing to {kind}: {len(due)} due, {len(due) - len(todo)} already running")
    known = set(context.instance.get_dynamic_partitions(MODEL_VERSIONS))
    missing = [d.partition for d in todo if d.partition not in known]
    if missing:
        context.instance.add_dynamic_partitions(MODEL_VERSIONS, missing)
    stamp = (context.scheduled_execution_time or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M")
    return [
        dg.RunRequest(
            run_key=f"{kind}:{d.partition}:{stamp}",
            partition_key=d.partition,
            tags={KIND_TAG: kind, TRIGGER_TAG: trigger, REASON_TAG: reason_tag(d.reason)},
        )
        for d in todo
    ]


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
