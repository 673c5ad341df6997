"""The sensors and schedules evaluated against a real sqlite registry and a persistent Dagster instance."""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pytest

from assurance.domain.errors import RegistryError
from assurance.evidence.store import EvidenceStore, new_run_id, parquet_bytes
from assurance.registry.client import fail_fast_http
from assurance.settings import Settings
from resources import EvidenceResource, PolicyResource, RegistryResource
from sensors.alerts import build_alert_sensors
from sensors.cadence import build_schedules
from sensors.registry_sensor import build_registry_sensor
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


def tick(instance, uri, cursor=None, settings=NO_SETTLING):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"registry": RegistryResource(tracking_uri=uri)}
    )
    return build_registry_sensor(settings)(context)


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


def test_findings_sensor_posts_new_critical_findings_of_newly_published_evidence(instance, tmp_path):
    store = EvidenceStore(str(tmp_path / "ev"))
    frame = pd.DataFrame(
        [
            {
                "finding_id": "f1",
                "severity": "critical",
                "status": "open",
                "check": "schema.missing_column",
                "subject": "rate",
                "message": "Column rate is missing from current data.",
            }
        ]
    )
    run_id = new_run_id()
    store.publish_run(MODEL, "1", run_id, {"findings.parquet": parquet_bytes(frame)}, {})
    resources = {"evidence": EvidenceResource(root=store.root)}
    _, findings_alerts = build_alert_sensors(Settings())
    first = findings_alerts(dg.build_sensor_context(instance=instance, resources=resources))
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "evidence_report",
            partition=f"{MODEL}/1",
            metadata={"run_id": run_id, "report": dg.MetadataValue.url("file:///r.html")},
        )
    )
    with webhook_receiver() as hook:
        _, findings_alerts = build_alert_sensors(Settings(alert_webhook=hook.url))
        ctx = dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
        result = findings_alerts(ctx)
        again = findings_alerts(
            dg.build_sensor_context(instance=instance, cursor=result.cursor, resources=resources)
        )
    (payload,) = hook.received
    assert payload["model"] == MODEL and payload["version"] == "1" and payload["report"] == "file:///r.html"
    assert payload["finding"]["id"] == "f1" and payload["finding"]["severity"] == "critical"
    assert (
        "1 posted" in result.skip_reason.skip_message and "0 published runs" in again.skip_reason.skip_message
    )


def test_run_failure_sensor_posts_the_failed_step_and_version(instance):
    from assurance.cli.launcher import run_version

    settings = Settings(tracking_uri="http://127.0.0.1:9", dagster_url="http://ui.example:3000")
    with fail_fast_http():
        assert not run_version("gone", "7", settings, instance).success
    (run,) = instance.get_runs()
    (failure,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="assurance_run_failure_alerts",
        dagster_event=failure.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
    ).for_run_failure()
    with webhook_receiver() as hook:
        failure_alerts, _ = build_alert_sensors(settings.override(alert_webhook=hook.url))
        failure_alerts(context)
    (payload,) = hook.received
    assert (payload["model"], payload["version"]) == ("gone", "7")
    assert (
        payload["error"].startswith("step model_version failed") and "cannot be reached" in payload["error"]
    )
    assert payload["link"] == f"http://ui.example:3000/runs/{run.run_id}"
