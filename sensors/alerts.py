"""Alert sensors: a failed assurance run, and new critical or high findings in published evidence.

Both post JSON to the configured webhook (ASSURANCE_ALERT_WEBHOOK) when it is set and log to the sensor's
log otherwise; the payloads and the delivery are in `assurance.governance.alerts`.
"""

from __future__ import annotations

import dagster as dg

from assurance.domain.errors import step_failure
from assurance.domain.values import split_partition_key
from assurance.governance.alerts import alerts_for_run, dagster_run_link, deliver, run_failure_alert
from assurance.settings import Settings
from resources import EvidenceResource
from sensors.validation_job import assure_model_version

EVIDENCE_ASSET = dg.AssetKey("evidence_report")
BATCH = 100


def step_error(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The first failed step and its root error, which says more than "the run failed"."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        error = event.step_failure_data.error if event and event.step_failure_data else None
        return step_failure(event.step_key, error)
    return None


def _last_storage_id(instance: dg.DagsterInstance) -> int:
    latest = instance.fetch_materializations(EVIDENCE_ASSET, limit=1).records
    return latest[0].storage_id if latest else 0


def build_alert_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    """Both alert sensors, posting to the settings' webhook and linking runs to the settings' Dagster URL."""

    @dg.run_failure_sensor(
        name="assurance_run_failure_alerts",
        monitored_jobs=[assure_model_version],
        minimum_interval_seconds=settings.sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts an alert (ASSURANCE_ALERT_WEBHOOK, else the log) when an assurance run fails.",
    )
    def assurance_run_failure_alerts(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        key = run.tags.get("dagster/partition")
        model, version = split_partition_key(key) if key else (None, None)
        error = step_error(context.instance, run.run_id) or context.failure_event.message or "the run failed"
        link = dagster_run_link(settings.dagster_url, run.run_id)
        payload = run_failure_alert(model, version, run.run_id, run.job_name, error, link)
        deliver([payload], settings.alert_webhook, context.log)

    @dg.sensor(
        name="assurance_findings_alerts",
        minimum_interval_seconds=settings.sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Reads each newly published evidence_report and posts one alert per critical or high finding that was "
            "not critical/high in the version's previous run (ASSURANCE_ALERT_WEBHOOK, else the log). Starts from "
            "the evidence published after it is first turned on."
        ),
    )
    def assurance_findings_alerts(
        context: dg.SensorEvaluationContext, evidence: EvidenceResource
    ) -> dg.SensorResult:
        if context.cursor is None:
            return dg.SensorResult(
                skip_reason="starting after the latest evidence",
                cursor=str(_last_storage_id(context.instance)),
            )
        after = int(context.cursor)
        result = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=EVIDENCE_ASSET, after_storage_id=after),
            limit=BATCH,
            ascending=True,
        )
        store = evidence.get()
        alerts: list[dict] = []
        for record in result.records:
            after = max(after, record.storage_id)
            mat = record.asset_materialization
            if mat is None or not mat.partition or "run_id" not in mat.metadata:
                continue
            model, version = split_partition_key(mat.partition)
            report = mat.metadata.get("report")
            alerts += alerts_for_run(
                store, model, version, str(mat.metadata["run_id"].value), report.value if report else None
            )
        sent = deliver(alerts, settings.alert_webhook, context.log)
        summary = f"{len(result.records)} published runs read, {len(alerts)} new critical/high findings, {sent} posted"
        return dg.SensorResult(skip_reason=summary, cursor=str(after))

    return [assurance_run_failure_alerts, assurance_findings_alerts]
