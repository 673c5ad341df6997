"""The per-version job: every way of starting work (sensor, schedules, UI, CLI) runs this same asset graph."""

from __future__ import annotations

import dagster as dg

from assets.partitions import model_versions
from assurance.domain.values import covered

VALIDATION_JOB = "assure_model_version"
# the job Dagster runs for the UI's materializations and for backfills (batches of versions)
ASSET_JOB = "__ASSET_JOB"
PER_VERSION_GROUPS = ("inputs", "analyses", "decision")
KIND_TAG = "assurance/kind"
TRIGGER_TAG = "assurance/trigger"
REASON_TAG = "assurance/reason"

assure_model_version = dg.define_asset_job(
    VALIDATION_JOB,
    selection=dg.AssetSelection.groups(*PER_VERSION_GROUPS),
    partitions_def=model_versions,
    description="Full assurance of one model version: data, predictions, every analysis, findings, "
    "recommendation and published evidence.",
    tags={KIND_TAG: "validation"},
    # one process per run: heavy libraries are imported once, and parallelism comes from concurrent runs
    executor_def=dg.in_process_executor,
)

IN_FLIGHT = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
)


def queued_runs(instance: dg.DagsterInstance) -> int:
    """Runs of the per-version job waiting for a slot: the backlog new requests would join."""
    return instance.get_runs_count(
        dg.RunsFilter(
            job_name=VALIDATION_JOB, statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]
        )
    )


def partitions_in_flight(instance: dg.DagsterInstance) -> set[str]:
    """Versions with a run queued or running (a version's own, or a batch's range), so schedules do not
    stack another."""
    runs = [
        r
        for r in instance.get_runs(dg.RunsFilter(statuses=list(IN_FLIGHT)))
        if r.job_name in (VALIDATION_JOB, ASSET_JOB)
    ]
    order = instance.get_dynamic_partitions(model_versions.name) if runs else []
    return {key for run in runs for key in covered(run.tags, order)}


def reason_tag(text: str) -> str:
    """Tag values are shown in the UI's run list: keep them one short line."""
    return " ".join(text.split())[:200]
