"""The sensors and schedules evaluated against a real sqlite registry and a persistent Dagster instance."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pytest

from assurance.domain.errors import RegistryError
from assurance.domain.values import RANGE_END_TAG, RANGE_START_TAG
from assurance.evidence.store import EvidenceStore, new_run_id, parquet_bytes
from assurance.governance.outbox import OUTBOX, UNDELIVERABLE, Outbox
from assurance.registry.client import fail_fast_http
from assurance.settings import Settings
from resources import EvidenceResource, PolicyResource, RegistryResource
from sensors.alerts import build_alert_sensors
from sensors.cadence import build_schedules
from tests.support import registry_tick as tick
from tests.support import webhook_receiver

MODEL = "sensor_check"
NO_SETTLING = Settings(
    sensor_settle_seconds=0
)  # versions here are seconds old; the settle period has its own test
monitor_production_versions, revalidate_due_versions = build_schedules(Settings())


@pytest.fixture(scope="module")
def empty_registry_db(tmp_path_factory):
    """An empty sqlite registry, created once (MLflow's schema migrations take seconds) and copied per test."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("registry") / "mlflow.db"
    uri = f"sqlite:///{path}"
    MlflowClient(uri, uri).search_registered_models()
    return path


@pytest.fixture
def registry(empty_registry_db, tmp_path):
    """Versions 1 and 2 of one model, registered without logging models (the sensor never loads them)."""
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    shutil.copy(empty_registry_db, db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri, uri)
    client.create_registered_model(MODEL, tags={"owner": "retention"})
    for _ in range(2):
        mv = client.create_model_version(MODEL, source=f"{tmp_path}/model")
        client.set_model_version_tag(MODEL, mv.version, "assurance.current", f"{tmp_path}/current.parquet")
    return client, uri


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def add_run(instance, status, tags=None):
    run = dg.DagsterRun(
        job_name="assure_model_version", run_id=str(uuid.uuid4()), status=status, tags=tags or {}
    )
    instance.add_run(run)


def keys(result) -> list[str]:
    return [r.partition_key for r in result.run_requests]


def test_first_tick_adds_partitions_and_requests_a_validation_per_version(registry, instance):
    _, uri = registry
    result = tick(instance, uri)
    assert keys(result) == [f"{MODEL}/1", f"{MODEL}/2"]
    assert result.run_requests[0].run_key.startswith(f"{MODEL}/1:")
    assert result.run_requests[0].tags["assurance/trigger"] == "new_version"
    (add,) = result.dynamic_partitions_requests
    assert add.partitions_def_name == "model_versions" and list(add.partition_keys) == keys(result)
    again = tick(instance, uri, result.cursor)
    assert again.run_requests == [] and "2 READY versions watched" in again.skip_reason.skip_message
    assert again.cursor == result.cursor


def test_tag_and_alias_changes_revalidate_but_result_tags_do_not(registry, instance):
    client, uri = registry
    cursor = tick(instance, uri).cursor
    client.set_model_version_tag(MODEL, "1", "assurance.result.recommendation", "hold")
    quiet = tick(instance, uri, cursor)
    assert quiet.run_requests == []
    client.set_model_version_tag(MODEL, "2", "assurance.current", "/data/june.parquet")
    changed = tick(instance, uri, quiet.cursor)
    assert (
        keys(changed) == [f"{MODEL}/2"]
        and changed.run_requests[0].tags["assurance/trigger"] == "registry_change"
    )
    client.set_registered_model_alias(MODEL, "production", "1")
    aliased = tick(instance, uri, changed.cursor)
    assert keys(aliased) == [f"{MODEL}/1"]
    client.set_registered_model_alias(MODEL, "production", "2")
    moved = tick(instance, uri, aliased.cursor)
    assert keys(moved) == [f"{MODEL}/2"]
    assert moved.run_requests[0].run_key != changed.run_requests[0].run_key  # same version, new state
    assert tick(instance, uri, moved.cursor).run_requests == []


def test_versions_registered_moments_ago_wait_for_their_tags(registry, instance):
    client, uri = registry
    settling = Settings(sensor_settle_seconds=3600)
    result = tick(instance, uri, settings=settling)
    assert (
        result.run_requests == []
        and "2 new versions registered moments ago" in result.skip_reason.skip_message
    )
    assert result.cursor == tick(instance, uri, result.cursor, settling).cursor  # nothing marked seen


def test_cap_carries_the_rest_to_the_next_tick(registry, instance):
    _, uri = registry
    one = NO_SETTLING.override(sensor_max_runs=1)
    first = tick(instance, uri, settings=one)
    second = tick(instance, uri, first.cursor, one)
    assert keys(first) == [f"{MODEL}/1"] and keys(second) == [f"{MODEL}/2"]


def test_a_full_queue_defers_new_requests(registry, instance):
    _, uri = registry
    instance.add_dynamic_partitions("model_versions", ["other/1"])
    for _ in range(2):
        add_run(instance, dg.DagsterRunStatus.NOT_STARTED)
    result = tick(instance, uri, settings=NO_SETTLING.override(sensor_max_runs=2))
    assert result.run_requests == [] and "2 changes wait for the next tick" in result.skip_reason.skip_message


def test_deleted_version_is_retired_with_its_partition_kept(registry, instance):
    client, uri = registry
    first = tick(instance, uri)
    instance.add_dynamic_partitions("model_versions", keys(first))
    client.delete_model_version(MODEL, "1")
    result = tick(instance, uri, first.cursor)
    (observation,) = result.asset_events
    assert observation.partition == f"{MODEL}/1" and observation.metadata["retired"].value is True
    assert not any(
        isinstance(r, dg.DeleteDynamicPartitionsRequest) for r in result.dynamic_partitions_requests or []
    )
    assert "1 versions retired" in result.skip_reason.skip_message
    instance.report_runless_asset_event(observation)  # what the daemon does with it
    (record,) = instance.fetch_observations(dg.AssetKey("model_version"), limit=5).records
    assert record.partition_key == f"{MODEL}/1"
    assert instance.has_dynamic_partition("model_versions", f"{MODEL}/1")


def test_unreachable_registry_fails_the_tick_quickly_and_clearly(instance, monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    start = time.perf_counter()
    with pytest.raises(RegistryError, match="cannot be reached"):
        tick(instance, "http://127.0.0.1:9", cursor=None)
    assert time.perf_counter() - start < 30


def test_state_lives_in_the_instance_and_a_failed_tick_keeps_the_pending_change(registry, instance):
    client, uri = registry
    first = tick(instance, uri)
    assert len(first.cursor) < 30  # the seen state is in the instance's key-value store
    client.set_model_version_tag(MODEL, "2", "assurance.current", "/data/june.parquet")
    with pytest.raises(RegistryError):
        tick(instance, "http://127.0.0.1:9", first.cursor)
    pending = tick(instance, uri, first.cursor)
    # a tick whose cursor was never stored (the daemon failed after the sensor returned) is simply redone
    redone = tick(instance, uri, first.cursor)
    assert keys(pending) == keys(redone) == [f"{MODEL}/2"]
    assert tick(instance, uri, pending.cursor).run_requests == []
    rescan = tick(instance, uri, None)  # a reset cursor rescans; run keys dedupe what already ran
    assert keys(rescan) == [f"{MODEL}/1", f"{MODEL}/2"]
    assert rescan.run_requests[1].run_key == pending.run_requests[0].run_key


def schedule_context(instance, uri, evidence_root, when):
    """Use it in a `with`: the context enters the instance, and only its exit leaves Dagster's state as it was."""
    return dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        resources={
            "registry": RegistryResource(tracking_uri=uri),
            "evidence": EvidenceResource(root=evidence_root),
            "policy": PolicyResource(),
        },
    )


def test_monitoring_schedule_runs_production_versions_with_the_monitoring_tag(registry, instance, tmp_path):
    client, uri = registry
    client.set_registered_model_alias(MODEL, "champion", "2")
    when = datetime(2025, 6, 1, 6, tzinfo=UTC)
    with schedule_context(instance, uri, str(tmp_path / "ev"), when) as ctx:
        (request,) = monitor_production_versions(ctx)
    assert request.partition_key == f"{MODEL}/2" and request.tags["assurance/kind"] == "monitoring"
    assert request.run_key == f"monitoring:{MODEL}/2:2025-06-01T06:00"
    assert instance.has_dynamic_partition("model_versions", f"{MODEL}/2")
    add_run(instance, dg.DagsterRunStatus.STARTED, {"dagster/partition": f"{MODEL}/2"})
    with schedule_context(instance, uri, str(tmp_path / "ev"), when) as ctx:
        skipped = monitor_production_versions(ctx)
    assert isinstance(skipped, dg.SkipReason) and "already running" in skipped.skip_message


def test_revalidation_schedule_picks_versions_past_their_cadence(registry, instance, tmp_path):
    client, uri = registry
    client.set_registered_model_tag(MODEL, "risk_tier", "high")
    store = EvidenceStore(str(tmp_path / "ev"))
    store.publish_run(MODEL, "1", new_run_id(datetime(2025, 1, 1, tzinfo=UTC)), {"a.txt": b"a"}, {})
    store.publish_run(MODEL, "2", new_run_id(datetime(2025, 5, 20, tzinfo=UTC)), {"a.txt": b"a"}, {})
    with schedule_context(instance, uri, store.root, datetime(2025, 6, 1, 7, tzinfo=UTC)) as ctx:
        (request,) = revalidate_due_versions(ctx)
    assert (
        request.partition_key == f"{MODEL}/1" and request.tags["assurance/trigger"] == "revalidation_schedule"
    )
    assert "90 days" in request.tags["assurance/reason"]


def test_revalidation_schedule_batches_neighbouring_due_versions_and_skips_those_in_a_running_batch(
    registry, instance, tmp_path
):
    client, uri = registry
    client.set_registered_model_tag(MODEL, "risk_tier", "high")
    store = EvidenceStore(str(tmp_path / "ev"))
    for version in ("1", "2"):
        store.publish_run(MODEL, version, new_run_id(datetime(2025, 1, 1, tzinfo=UTC)), {"a.txt": b"a"}, {})
    when = datetime(2025, 6, 1, 7, tzinfo=UTC)
    with schedule_context(instance, uri, store.root, when) as ctx:
        (request,) = revalidate_due_versions(ctx)
    assert request.partition_key is None
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (f"{MODEL}/1", f"{MODEL}/2")
    assert request.tags["assurance/reason"].startswith(f"2 versions, {MODEL}/1: ")
    assert request.run_key == f"validation:{MODEL}/1..{MODEL}/2:2025-06-01T07:00"
    add_run(
        instance, dg.DagsterRunStatus.STARTED, {RANGE_START_TAG: f"{MODEL}/1", RANGE_END_TAG: f"{MODEL}/2"}
    )
    with schedule_context(instance, uri, store.root, when) as ctx:
        skipped = revalidate_due_versions(ctx)
    assert isinstance(skipped, dg.SkipReason) and "2 already running" in skipped.skip_message


def publish_findings(store: EvidenceStore, version: str, *rows: tuple[str, str], day: int = 1) -> str:
    """A published run of `version`, dated `day` (runs of a version are ordered by date), whose open
    findings are `(finding_id, severity)` rows."""
    frame = pd.DataFrame(
        [
            {"finding_id": fid, "severity": sev, "status": "open", "check": "drift.feature", "subject": fid}
            | {"message": f"Finding {fid} of version {version}."}
            for fid, sev in rows
        ]
    )
    run_id = new_run_id(datetime(2025, 1, day, tzinfo=UTC))
    store.publish_run(MODEL, version, run_id, {"findings.parquet": parquet_bytes(frame)}, {})
    return run_id


def report_evidence(instance, version: str, run_id: str) -> None:
    """What a run's evidence_report materialization tells the findings sensor."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "evidence_report",
            partition=f"{MODEL}/{version}",
            metadata={"run_id": run_id, "report": dg.MetadataValue.url("file:///r.html")},
        )
    )


def evaluate(sensor, instance, store: EvidenceStore, cursor: str | None = None):
    resources = {"evidence": EvidenceResource(root=store.root)}
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))


def failed_run(instance, settings: Settings):
    """A real failed run of the assurance job (its registry cannot be reached) and its failure event."""
    from assurance.cli.launcher import run_version

    with fail_fast_http():
        assert not run_version("gone", "7", settings, instance).success
    (run,) = instance.get_runs()
    (failure,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return run, failure.dagster_event


def failure_context(instance, run, event, evidence_root: str):
    """The run-failure sensor's context for a failed run, with its evidence store."""
    return dg.build_run_status_sensor_context(
        sensor_name="assurance_run_failure_alerts",
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"evidence": EvidenceResource(root=evidence_root)},
    ).for_run_failure()


def message(result) -> str:
    return (result.skip_reason if isinstance(result, dg.SensorResult) else result).skip_message


def test_findings_sensor_queues_new_critical_findings_and_delivery_posts_them(instance, tmp_path):
    store = EvidenceStore(str(tmp_path / "ev"))
    _, findings_alerts, _ = build_alert_sensors(Settings())
    first = evaluate(findings_alerts, instance, store)
    run_id = publish_findings(store, "1", ("f1", "critical"), ("f2", "medium"))
    report_evidence(instance, "1", run_id)
    with webhook_receiver() as hook:
        _, findings_alerts, delivery = build_alert_sensors(Settings(alert_webhook=hook.url))
        result = evaluate(findings_alerts, instance, store, first.cursor)
        again = evaluate(findings_alerts, instance, store, result.cursor)
        assert hook.received == []  # queued, not yet posted
        posted = evaluate(delivery, instance, store)
        idle = evaluate(delivery, instance, store)
    (payload,) = hook.accepted
    assert payload["model"] == MODEL and payload["version"] == "1" and payload["report"] == "file:///r.html"
    assert payload["finding"]["id"] == "f1" and payload["finding"]["severity"] == "critical"
    assert payload["alert_id"] and payload["run_id"] == run_id
    assert "1 queued for delivery" in message(result) and "0 published runs" in message(again)
    assert (
        message(posted).startswith("1 sent")
        and message(idle).startswith("0 sent")
        and len(hook.received) == 1
    )


def test_without_a_webhook_alerts_are_logged_and_nothing_is_queued(instance, tmp_path, capfd):
    store = EvidenceStore(str(tmp_path / "ev"))
    _, findings_alerts, delivery = build_alert_sensors(Settings())
    first = evaluate(findings_alerts, instance, store)
    report_evidence(instance, "1", publish_findings(store, "1", ("f1", "high")))
    result = evaluate(findings_alerts, instance, store, first.cursor)
    assert "logged (no webhook set)" in message(result)
    assert "Finding f1 of version 1." in capfd.readouterr().err
    assert "no webhook set" in message(evaluate(delivery, instance, store))
    assert not store.fs.exists(f"{store.base}/{OUTBOX}")


def test_run_failure_sensor_queues_the_failed_step_and_posts_directly_if_it_cannot_queue(instance, tmp_path):
    store = EvidenceStore(str(tmp_path / "ev"))
    settings = Settings(tracking_uri="http://127.0.0.1:9", dagster_url="http://ui.example:3000")
    run, event = failed_run(instance, settings)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("the evidence root cannot be written below a file")
    with webhook_receiver() as hook:
        failure_alerts, _, delivery = build_alert_sensors(settings.override(alert_webhook=hook.url))
        failure_alerts(failure_context(instance, run, event, store.root))
        assert hook.received == []
        evaluate(delivery, instance, store)
        failure_alerts(
            failure_context(instance, run, event, f"{blocked}/ev")
        )  # queueing fails: posted directly
    payload, direct = hook.accepted
    assert direct == payload
    assert (payload["model"], payload["version"]) == ("gone", "7")
    assert (
        payload["error"].startswith("step model_version failed") and "cannot be reached" in payload["error"]
    )
    assert payload["link"] == f"http://ui.example:3000/runs/{run.run_id}"


def test_a_failed_batch_of_versions_raises_an_alert_naming_its_versions(instance, tmp_path):
    """A backfill's batch runs Dagster's asset job over a range of versions: its failure is alerted too."""
    from assurance.cli.launcher import run_versions

    store = EvidenceStore(str(tmp_path / "ev"))
    settings = Settings(tracking_uri="http://127.0.0.1:9")
    with fail_fast_http():
        outcomes = run_versions(["gone/7", "gone/8"], settings, instance)
    assert [o.success for o in outcomes.values()] == [False, False]
    (run,) = instance.get_runs()
    (failure,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    with webhook_receiver() as hook:
        failure_alerts, _, delivery = build_alert_sensors(settings.override(alert_webhook=hook.url))
        failure_alerts(failure_context(instance, run, failure.dagster_event, store.root))
        evaluate(delivery, instance, store)
    (payload,) = hook.accepted
    assert payload["error"].startswith("versions gone/7 to gone/8: step model_version failed")


def test_alerts_reach_a_webhook_down_for_three_ticks_exactly_once(instance, tmp_path):
    """Every tick evaluates the findings and delivery sensors as the daemon would; the receiver answers 503
    for three ticks, then 200. Alerts raised before and during the outage each arrive once, in order."""
    store = EvidenceStore(str(tmp_path / "ev"))
    with webhook_receiver(status=503) as hook:
        settings = Settings(
            tracking_uri="http://127.0.0.1:9",
            alert_webhook=hook.url,
            alert_retry_seconds=0,
            alert_max_attempts=5,
        )
        failure_alerts, findings_alerts, delivery = build_alert_sensors(settings)
        cursor = evaluate(findings_alerts, instance, store).cursor
        run, event = failed_run(instance, settings)
        failure_alerts(failure_context(instance, run, event, store.root))
        first_v1 = publish_findings(store, "1", ("a", "critical"), ("b", "high"), ("c", "low"))
        report_evidence(instance, "1", first_v1)
        report_evidence(instance, "2", publish_findings(store, "2", ("a", "high")))
        summaries = []
        for down_tick in range(3):
            if down_tick == 1:  # a later run of version 1 during the outage: only "d" is new
                report_evidence(
                    instance, "1", publish_findings(store, "1", ("a", "critical"), ("d", "high"), day=2)
                )
            cursor = evaluate(findings_alerts, instance, store, cursor).cursor
            summaries.append(message(evaluate(delivery, instance, store)))
            assert (
                len(hook.received) == down_tick + 1 and hook.accepted == []
            )  # one post per round while down
        hook.status = 200
        for _ in range(2):
            cursor = evaluate(findings_alerts, instance, store, cursor).cursor
            summaries.append(message(evaluate(delivery, instance, store)))
    delivered = [(a["event"], a.get("version"), a.get("finding", {}).get("id")) for a in hook.accepted]
    assert delivered == [
        ("assurance.run_failure", "7", None),
        ("assurance.finding", "1", "a"),
        ("assurance.finding", "1", "b"),
        ("assurance.finding", "2", "a"),
        ("assurance.finding", "1", "d"),
    ]
    assert len({a["alert_id"] for a in hook.accepted}) == len(hook.accepted)
    assert hook.accepted[0]["dagster_run_id"] == run.run_id and hook.accepted[1]["run_id"] == first_v1
    assert [s.split(",")[0] for s in summaries] == ["0 sent", "0 sent", "0 sent", "5 sent", "0 sent"]
    assert "4 to retry" in summaries[0] and "5 to retry" in summaries[2] and "HTTP Error 503" in summaries[2]
    assert Outbox(store).pending() == ([], [])


def test_delivery_waits_out_its_backoff_between_ticks(instance, tmp_path):
    store = EvidenceStore(str(tmp_path / "ev"))
    with webhook_receiver(status=503) as hook:
        _, findings_alerts, delivery = build_alert_sensors(
            Settings(alert_webhook=hook.url, alert_retry_seconds=1)
        )
        cursor = evaluate(findings_alerts, instance, store).cursor
        report_evidence(instance, "1", publish_findings(store, "1", ("a", "high")))
        evaluate(findings_alerts, instance, store, cursor)
        failed = message(evaluate(delivery, instance, store))
        waiting = message(evaluate(delivery, instance, store))
        assert len(hook.received) == 1 and "1 to retry" in failed and "1 waiting" in waiting
        hook.status = 200
        (entry,), _ = Outbox(store).pending()
        time.sleep(max(0.0, (entry.next_attempt_at - datetime.now(UTC)).total_seconds()) + 0.05)
        sent = message(evaluate(delivery, instance, store))
    assert sent.startswith("1 sent") and len(hook.received) == 2 and len(hook.accepted) == 1


def test_an_alert_past_its_budget_is_recorded_logged_and_not_sent_later(instance, tmp_path, capfd):
    store = EvidenceStore(str(tmp_path / "ev"))
    with webhook_receiver(status=503) as hook:
        settings = Settings(alert_webhook=hook.url, alert_retry_seconds=0, alert_max_attempts=2)
        _, findings_alerts, delivery = build_alert_sensors(settings)
        cursor = evaluate(findings_alerts, instance, store).cursor
        report_evidence(instance, "1", publish_findings(store, "1", ("a", "high")))
        evaluate(findings_alerts, instance, store, cursor)
        ticks = [message(evaluate(delivery, instance, store)) for _ in range(2)]
        hook.status = 200
        ticks.append(message(evaluate(delivery, instance, store)))
    assert "1 to retry" in ticks[0] and "1 undeliverable" in ticks[1] and ticks[2] == "0 sent"
    assert len(hook.received) == 2 and hook.accepted == []
    (path,) = store.fs.ls(f"{store.base}/{OUTBOX}/{UNDELIVERABLE}")
    record = json.loads(store.fs.cat_file(path))
    assert record["attempts"] == 2 and "HTTP Error 503" in record["last_error"] and record["given_up_at"]
    assert f"alert {record['alert_id']} undeliverable after 2 attempts" in capfd.readouterr().err


def test_recording_a_decision_writes_tags_that_start_no_run(registry, instance):
    from assurance.registry.client import Registry

    client, uri = registry
    cursor = tick(instance, uri).cursor
    decision = {
        "assurance.decision": "approve",
        "assurance.decision.by": "ana",
        "assurance.decision.run_id": "r1",
    }
    Registry(uri).set_decision_tags(MODEL, "1", decision)
    assert client.get_model_version(MODEL, "1").tags["assurance.decision.by"] == "ana"
    quiet = tick(instance, uri, cursor)
    assert quiet.run_requests == [] and quiet.cursor == cursor
    with pytest.raises(ValueError, match="not one of the product's own tags"):
        Registry(uri).set_decision_tags(MODEL, "1", {"approval.ticket": "CHG-1"})
    client.set_model_version_tag(MODEL, "1", "approval.ticket", "CHG-1")  # an owner's tag still does
    assert keys(tick(instance, uri, quiet.cursor)) == [f"{MODEL}/1"]


def publish_ledger_findings(
    store: EvidenceStore, version: str, severities: dict[str, str], day: int
) -> list[str]:
    """A published run of `version` on 2025-01-`day` reporting one finding per subject, in the findings schema;
    returns their ids."""
    from assurance.domain.findings import Finding, findings_frame
    from assurance.policy.model import Policy
    from tests.support import make_record

    at = datetime(2025, 1, day, tzinfo=UTC)
    found = [Finding("drift", "drift.feature", s, sev, f"{s} drifted.") for s, sev in severities.items()]
    frame = findings_frame(found, make_record(MODEL, version), Policy(), now=at)
    store.publish_run(MODEL, version, new_run_id(at), {"findings.parquet": parquet_bytes(frame)}, {})
    return list(frame["finding_id"])


def test_overdue_findings_reach_the_webhook_once_per_finding_and_due_date(instance, tmp_path):
    from assurance.governance.remediation import assign
    from sensors.alerts import build_overdue_sensor

    store = EvidenceStore(str(tmp_path / "ev"))
    late_high, late_low = publish_ledger_findings(store, "1", {"amount": "high", "tenure": "low"}, day=1)
    resources = {"evidence": EvidenceResource(root=store.root), "policy": PolicyResource()}

    def run_overdue(sensor, cursor=None):
        return sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))

    with webhook_receiver() as hook:
        settings = Settings(alert_webhook=hook.url)
        overdue, (_, _, delivery) = build_overdue_sensor(settings), build_alert_sensors(settings)
        first = run_overdue(overdue)
        assert message(evaluate(delivery, instance, store)).startswith("2 sent")
        again = run_overdue(overdue, first.cursor)
        restarted = run_overdue(overdue)  # a lost cursor raises them again: the outbox still sends each once
        assert message(evaluate(delivery, instance, store)).startswith("0 sent")
        # a plan with a later due date takes the finding out of overdue until then
        assign(store, late_high, "bo", "refit", "ana", due="2099-01-01")
        planned = run_overdue(overdue, again.cursor)
    assert sorted(a["finding"]["id"] for a in hook.accepted) == sorted([late_high, late_low])
    assert {a["event"] for a in hook.accepted} == {"assurance.overdue"}
    assert "2 overdue findings, 2 newly overdue, 2 queued" in message(first)
    assert "2 overdue findings, 0 newly overdue, 0 queued" in message(again)
    assert "2 newly overdue, 0 queued" in message(restarted)
    assert "1 overdue findings" in message(planned) and len(hook.received) == 2
