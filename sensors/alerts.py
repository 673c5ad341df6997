"""Alert sensors: a failed assurance run, new critical or high findings in published evidence, findings past
their due date, and delivery.

The first three log each alert to their sensor's log and, when a webhook is set (ASSURANCE_ALERT_WEBHOOK),
queue it in the outbox under the evidence root; the last posts what is queued, retrying with backoff
across ticks. A failed run whose alert cannot be queued (the evidence store may be why it failed) is
posted once directly; if that fails too, Dagster records the error on the failed run. The payloads are in `assurance.governance.alerts`, the outbox in
`assurance.governance.outbox`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

import dagster as dg

from assurance.domain.errors import step_failure
from assurance.domain.values import RANGE_END_TAG, RANGE_START_TAG, split_partition_key
from assurance.evidence.store import EvidenceStore
from assurance.governance.alerts import (
    alerts_for_run,
    dagster_run_link,
    decode_ids,
    encode_ids,
    overdue_alerts,
    post_json,
    run_failure_alert,
)
from assurance.governance.ledger import build_ledger
from assurance.governance.outbox import Backoff, Outbox, deliver_due
from assurance.settings import Settings
from resources import EvidenceResource, PolicyResource

EVIDENCE_ASSET = dg.AssetKey("evidence_report")
BATCH = 100
# due dates are days apart and the ledger reads every run's findings: a look every ten minutes is plenty
OVERDUE_INTERVAL_SECONDS = 600


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


def queue_alerts(store: EvidenceStore, alerts: list[Mapping[str, Any]], webhook: str | None, log: Any) -> int:
    """Log every alert and queue it for the webhook when one is set; returns how many were newly queued."""
    for alert in alerts:
        log.info(f"assurance alert {alert['alert_id']}: {alert['text']}")
    return len(Outbox(store).enqueue(alerts, datetime.now(UTC))) if webhook and alerts else 0


def build_alert_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    """The alert sensors and the delivery sensor, posting to the settings' webhook with the settings' retry
    budget, and linking runs to the settings' Dagster URL."""

    @dg.run_failure_sensor(
        name="assurance_run_failure_alerts",
        minimum_interval_seconds=settings.sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Raises an alert when a run of this code location fails (a version's, a backfill's batch of "
            "versions, the portfolio's): logged, and queued for assurance_alert_delivery when "
            "ASSURANCE_ALERT_WEBHOOK is set."
        ),
    )
    def assurance_run_failure_alerts(context: dg.RunFailureSensorContext, evidence: EvidenceResource) -> None:
        run = context.dagster_run
        key = run.tags.get("dagster/partition")
        model, version = split_partition_key(key) if key else (None, None)
        error = step_error(context.instance, run.run_id) or context.failure_event.message or "the run failed"
        if RANGE_START_TAG in run.tags:  # a backfill's batch: every version in its range is unassured
            error = f"versions {run.tags[RANGE_START_TAG]} to {run.tags.get(RANGE_END_TAG)}: {error}"
        link = dagster_run_link(settings.dagster_url, run.run_id)
        payload = run_failure_alert(model, version, run.run_id, run.job_name, error, link)
        store = evidence.get()
        try:
            queue_alerts(store, [payload], settings.alert_webhook, context.log)
        except (
            Exception
        ) as exc:  # only queueing (webhook set) touches the store, which may be why the run failed
            context.log.error(
                f"alert {payload['alert_id']} could not be queued ({exc}); posting it once directly"
            )
            post_json(settings.alert_webhook, payload)

    @dg.sensor(
        name="assurance_findings_alerts",
        minimum_interval_seconds=settings.sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Reads each newly published evidence_report and raises one alert per critical or high finding that "
            "was not critical/high in the version's previous run: logged, and queued for assurance_alert_delivery "
            "when ASSURANCE_ALERT_WEBHOOK is set. Starts from the evidence published after it is first turned on."
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
        queued = queue_alerts(store, alerts, settings.alert_webhook, context.log)
        summary = f"{len(result.records)} published runs read, {len(alerts)} new critical/high findings, " + (
            f"{queued} queued for delivery" if settings.alert_webhook else "logged (no webhook set)"
        )
        return dg.SensorResult(skip_reason=summary, cursor=str(after))

    backoff = Backoff(first_seconds=settings.alert_retry_seconds, max_attempts=settings.alert_max_attempts)

    @dg.sensor(
        name="assurance_alert_delivery",
        minimum_interval_seconds=settings.sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Posts the queued alerts to ASSURANCE_ALERT_WEBHOOK, oldest first; a failed post is retried on "
            "later ticks with exponential backoff, and an alert still undelivered after "
            "ASSURANCE_ALERT_MAX_ATTEMPTS attempts is recorded under _portfolio/alerts/undeliverable/."
        ),
    )
    def assurance_alert_delivery(
        context: dg.SensorEvaluationContext, evidence: EvidenceResource
    ) -> dg.SkipReason:
        if not settings.alert_webhook:
            return dg.SkipReason("no webhook set (ASSURANCE_ALERT_WEBHOOK): alerts are only logged")
        post = partial(post_json, settings.alert_webhook)
        done = deliver_due(Outbox(evidence.get()), post, backoff, datetime.now(UTC), context.log)
        return dg.SkipReason(done.summary())

    return [assurance_run_failure_alerts, assurance_findings_alerts, assurance_alert_delivery]


def build_overdue_sensor(settings: Settings) -> dg.SensorDefinition:
    """The sensor raising overdue-finding alerts, queued for the delivery sensor like the others."""

    @dg.sensor(
        name="assurance_overdue_alerts",
        minimum_interval_seconds=max(settings.sensor_interval, OVERDUE_INTERVAL_SECONDS),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Raises one alert per open finding past its due date (the assigned plan's, else the policy's SLA), "
            "once per finding and due date: logged, and queued for assurance_alert_delivery when "
            "ASSURANCE_ALERT_WEBHOOK is set."
        ),
    )
    def assurance_overdue_alerts(
        context: dg.SensorEvaluationContext, evidence: EvidenceResource, policy: PolicyResource
    ) -> dg.SensorResult:
        store = evidence.get()
        alerts = overdue_alerts(build_ledger(store, policy.get(), datetime.now(UTC)))
        raised = decode_ids(context.cursor)
        fresh = [a for a in alerts if a["alert_id"] not in raised]
        queued = queue_alerts(store, fresh, settings.alert_webhook, context.log)
        summary = f"{len(alerts)} overdue findings, {len(fresh)} newly overdue, " + (
            f"{queued} queued for delivery" if settings.alert_webhook else "logged (no webhook set)"
        )
        return dg.SensorResult(skip_reason=summary, cursor=encode_ids([a["alert_id"] for a in alerts]))

    return assurance_overdue_alerts
