"""The Dagster graph materialized in process for real versions of a temporary sqlite registry."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.event_api import PartitionKeyFilter

from assurance.evidence.store import EvidenceStore
from assurance.settings import Settings


@pytest.fixture
def env(small_registry, tmp_path):
    settings = Settings(tracking_uri=small_registry.tracking_uri, evidence_root=str(tmp_path / "evidence"))
    return small_registry, EvidenceStore(settings.evidence_root), settings


def test_definitions_load_with_partitioned_assets_and_checks():
    from assurance.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "model_version",
        "reference_data",
        "current_data",
        "predictions",
        "data_quality",
        "findings",
        "recommendation",
        "evidence_report",
    } <= keys
    checks = {c.name for c in graph.asset_check_keys}
    assert "quality_missing_values" in checks and "model_scores_data" in checks
    assert defs.resolve_job_def("assure_model_version").partitions_def.name == "model_versions"


def test_every_check_is_partitioned_like_its_asset():
    """An unpartitioned check on a version's asset would show one version's result for all of them."""
    from assurance.definitions import defs

    graph = defs.resolve_asset_graph()
    partitions = {k: graph.get(k.asset_key).partitions_def for k in graph.asset_check_keys}
    assert partitions and all(p is not None for p in partitions.values())
    assert {k: graph.get_check_spec(k).partitions_def for k in partitions} == partitions


def latest_metadata(instance: dg.DagsterInstance, asset: str, partition: str) -> dict:
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    return record.asset_materialization.metadata


def test_each_version_keeps_its_own_check_results(two_versions):
    """Two versions with different outcomes, one instance: each partition's check shows its own result."""
    instance, graph, (healthy, broken), _ = two_versions
    storage = instance.event_log_storage
    history = {k: storage.get_asset_check_execution_history(k, limit=10) for k in graph.asset_check_keys}
    assert all(
        sorted((r.partition for r in runs), key=str) == sorted([healthy, broken]) for runs in history.values()
    )

    def passed(check: str, key: str) -> bool:
        asset, name = check.split(":")
        [record] = storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(asset), name), limit=1, partition_filter=PartitionKeyFilter(key=key)
        )
        assert record.evaluation.partition == key
        return record.evaluation.passed

    for planted in ("data_quality:quality_missing_values", "data_quality:schema_missing_column"):
        assert (passed(planted, healthy), passed(planted, broken)) == (True, False)


def test_metadata_is_what_the_ui_renders(two_versions):
    """Findings as a typed table; section summaries without image paths the UI cannot load."""
    from assurance.checks.catalog import all_analyses

    instance, _, (_, broken), _ = two_versions
    preview = latest_metadata(instance, "findings", broken)["preview"]
    assert isinstance(preview, dg.TableMetadataValue)
    assert [c.name for c in preview.schema.columns] == ["severity", "category", "subject", "message"]
    assert {"rate", "amount"} <= {r.data["subject"] for r in preview.records}
    summaries = [latest_metadata(instance, a.key, broken).get("summary") for a in all_analyses()]
    texts = [s.value for s in summaries if s is not None]
    assert texts and not any("](plots/" in t for t in texts)
    assert any("is in the evidence report" in t for t in texts)


def test_healthy_version_publishes_verifiable_evidence(env, tmp_path, monkeypatch):
    """The tracking URI reaches MLflow through the settings alone: no process environment, no stray files."""
    from assurance.cli.launcher import run_version

    reg, store, settings = env
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    instance = dg.DagsterInstance.ephemeral()
    outcome = run_version(reg.model, reg.healthy, settings, instance)
    assert outcome.success, outcome.error
    assert list(workdir.iterdir()) == []  # no ./mlflow.db or ./mlruns from an MLflow default client
    rel = store.latest_run_path(reg.model, reg.healthy)
    assert rel and store.verify(rel) == []
    manifest = store.read_manifest(rel)
    names = {f["path"] for f in manifest["files"]}
    assert {"findings.parquet", "quality.parquet", "report.html", "report.md"} <= names
    assert manifest["policy_hash"] and manifest["data"]["reference"]["fingerprint"]
    assert manifest["source_run"] and manifest["model_uri"] == f"models:/{reg.model}/{reg.healthy}"
    findings = outcome.findings
    assert not (
        (findings["category"] == "data_quality") & findings["severity"].isin(["high", "critical"])
    ).any()
    assert instance.has_dynamic_partition("model_versions", f"{reg.model}/{reg.healthy}")
    report = (Path(store.base) / rel / "report.html").read_text()
    assert report.index("Recommendation") < report.index("Data quality")


def test_broken_current_data_becomes_findings_not_a_failed_run(env):
    from assurance.cli.launcher import run_version
    from assurance.registry.client import Registry

    reg, store, settings = env
    outcome = run_version(reg.model, reg.broken, settings, dg.DagsterInstance.ephemeral())
    assert outcome.success, outcome.error
    f = outcome.findings
    assert set(f.loc[f["check"] == "schema.missing_column", "subject"]) == {"rate"}
    assert "amount" in set(f.loc[f["check"] == "quality.missing_values", "subject"])
    assert "current" in set(f.loc[f["check"] == "predictions.failed", "subject"])
    assert outcome.summary["recommendation"] == "hold"
    rel = store.latest_run_path(reg.model, reg.broken)
    saved = pd.read_parquet(Path(store.base) / rel / "findings.parquet")
    assert set(saved["finding_id"]) == set(f["finding_id"])
    tags = Registry(reg.tracking_uri).version_record(reg.model, reg.broken).version_tags
    assert tags["assurance.result.recommendation"] == "hold"
    assert json.loads((Path(store.base) / rel / "manifest.json").read_text())["recommendation"] == "hold"


def test_unreachable_registry_fails_the_run_clearly(env):
    from assurance.cli.launcher import run_version
    from assurance.registry.client import fail_fast_http

    _, _, settings = env
    with fail_fast_http():
        outcome = run_version(
            "nope", "1", settings.override(tracking_uri="http://127.0.0.1:9"), dg.DagsterInstance.ephemeral()
        )
    assert not outcome.success
    assert "model_version" in outcome.error and "cannot be reached" in outcome.error


def test_data_travels_by_reference_and_a_lone_rerun_reads_it_again(env, tmp_path):
    """Dagster storage keeps only the data's URI and fingerprint; a later run re-reads, and refuses changed data."""
    import shutil

    import resources
    from assets.analyses import analysis_assets
    from assets.version import current_data, model_version, predictions, reference_data
    from assurance.cli.launcher import run_version
    from assurance.registry.client import Registry

    reg, _, settings = env
    instance = dg.DagsterInstance.ephemeral()
    assert run_version(reg.model, reg.healthy, settings, instance).success
    key = f"{reg.model}/{reg.healthy}"
    stored = list(Path(instance.storage_directory()).rglob("*.json"))
    assert stored and all(p.stat().st_size < 2000 for p in stored)
    assets = [model_version, reference_data, current_data, predictions, *analysis_assets()]

    def quality_alone():
        result = dg.materialize(
            assets,
            selection=["data_quality"],
            partition_key=key,
            instance=instance,
            resources=resources.build_resources(settings),
        )
        assert result.success
        return result.output_for_node("data_quality")

    assert not any(f.check == "data.unavailable" for f in quality_alone().findings)
    current_uri = Registry(reg.tracking_uri).version_record(reg.model, reg.healthy).tags["assurance.current"]
    current_path = Path(current_uri.removeprefix("file://"))
    backup = tmp_path / "current.parquet"
    shutil.copy(current_path, backup)
    try:
        pd.read_parquet(current_path).head(10).to_parquet(current_path)
        changed = [f for f in quality_alone().findings if f.check == "data.unavailable"]
        assert [f.subject for f in changed] == ["current"] and "changed since it was loaded" in changed[
            0
        ].message
    finally:
        shutil.copy(backup, current_path)


def test_an_assurance_is_an_mlflow_run_the_version_points_at_and_the_write_back_triggers_nothing(env):
    """Parameters, metrics, artifacts and tags of the run match the published evidence; the sensor's next tick
    after the write-back (version tags, the new run, metrics on the logged model) plans no run."""
    import hashlib

    from mlflow import MlflowClient

    from assurance.cli.launcher import run_version
    from tests.support import registry_tick

    reg, store, settings = env
    settings = settings.override(evidence_url="http://evidence.example/assurance")
    client = MlflowClient(reg.tracking_uri, reg.tracking_uri)
    with dg.instance_for_test() as instance:
        before = registry_tick(instance, reg.tracking_uri)
        assert f"{reg.model}/{reg.healthy}" in [r.partition_key for r in before.run_requests]
        outcome = run_version(reg.model, reg.healthy, settings, instance)
        assert outcome.success, outcome.error
        after = registry_tick(instance, reg.tracking_uri, before.cursor)
        assert after.run_requests == [] and "0 runs requested" in after.skip_reason.skip_message
        (mat,) = instance.fetch_materializations(dg.AssetKey("evidence_report"), limit=1).records
        metadata = mat.asset_materialization.metadata

    rel = store.latest_run_path(reg.model, reg.healthy)
    manifest = store.read_manifest(rel)
    version_tags = client.get_model_version(reg.model, reg.healthy).tags
    run_id = version_tags["assurance.result.mlflow_run_id"]
    assert manifest["mlflow_run"]["run_id"] == run_id and outcome.summary["mlflow_run_id"] == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "model-assurance"
    assert run.data.tags["assurance.model"] == reg.model and run.data.tags["assurance.version"] == reg.healthy
    params = run.data.params
    assert params["policy_hash"] == manifest["policy_hash"]
    assert params["evidence_run_id"] == manifest["run_id"] == version_tags["assurance.result.run_id"]
    assert params["dagster_run_id"] == manifest["dagster_run_id"]
    assert params["package_version"] == manifest["package_version"]
    for role in ("reference", "current"):
        assert params[f"{role}_fingerprint"] == manifest["data"][role]["fingerprint"]

    metrics = run.data.metrics
    performance = pd.read_parquet(Path(store.base) / rel / "performance.parquet")
    auc = performance[(performance["dataset"] == "current") & (performance["metric"] == "roc_auc")].iloc[0]
    assert metrics["current/roc_auc"] == pytest.approx(auc["value"])
    assert (
        metrics["current/roc_auc_ci_low"] <= metrics["current/roc_auc"] <= metrics["current/roc_auc_ci_high"]
    )
    assert "reference/roc_auc" in metrics and 0 <= metrics["drift/share"] <= 1
    published = pd.read_parquet(Path(store.base) / rel / "findings.parquet")
    open_ = published[published["status"] == "open"]
    for severity in ("critical", "high", "medium", "low", "info"):
        assert metrics[f"findings/open_{severity}"] == (open_["severity"] == severity).sum()
    model_id = client.get_model_version(reg.model, reg.healthy).source.split("/")[1]
    on_model = {m.key: m for m in client.get_logged_model(model_id).metrics if m.run_id == run_id}
    assert {"current/roc_auc", "findings/open_high"} <= set(on_model)
    auc_on_model = on_model["current/roc_auc"]
    assert auc_on_model.dataset_name == "current"
    assert auc_on_model.dataset_digest == manifest["data"]["current"]["fingerprint"][:32]
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"reference", "current"}
    assert [m.model_id for m in run.inputs.model_inputs] == [model_id]

    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"report.html", "manifest.json", "findings.json"} <= artifacts
    copied = Path(client.download_artifacts(run_id, "report.html"))
    entry = next(f for f in manifest["files"] if f["path"] == "report.html")
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == entry["sha256"]
    manifest_copy = Path(client.download_artifacts(run_id, "manifest.json")).read_bytes()
    assert manifest_copy == store.read_bytes(f"{rel}/manifest.json")
    table = json.loads(Path(client.download_artifacts(run_id, "findings.json")).read_text())
    assert sorted(row[table["columns"].index("finding_id")] for row in table["data"]) == sorted(
        published["finding_id"]
    )

    # links a browser opens: the evidence's web address; sqlite has none, so the run is named by its id
    report = metadata["report"]
    assert isinstance(report, dg.UrlMetadataValue)
    assert report.value == f"http://evidence.example/assurance/{rel}/report.html"
    assert version_tags["assurance.result.report"] == report.value
    assert metadata["mlflow_run"].value == run_id


def test_an_mlflow_run_that_cannot_be_logged_is_a_monitoring_finding_in_a_completed_run(env, tmp_path):
    """The policy's experiment keeps artifacts under a regular file: MLflow cannot write the report there."""
    from mlflow import MlflowClient

    from assurance.cli.launcher import run_version

    reg, store, settings = env
    client = MlflowClient(reg.tracking_uri, reg.tracking_uri)
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the artifact folder should be")
    experiment = "assurance-unwritable-artifacts"
    experiment_id = client.create_experiment(experiment, artifact_location=(blocker / "artifacts").as_uri())
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"mlflow:\n  experiment: {experiment}\n")
    client.set_model_version_tag(
        reg.model, reg.broken, "assurance.result.mlflow_run_id", "from-an-earlier-run"
    )

    outcome = run_version(
        reg.model, reg.broken, settings.override(policy_path=str(policy)), dg.DagsterInstance.ephemeral()
    )
    assert outcome.success, outcome.error
    assert outcome.summary["mlflow_run_id"] is None
    rel = store.latest_run_path(reg.model, reg.broken)
    assert store.verify(rel) == [] and "mlflow_run" not in store.read_manifest(rel)
    published = pd.read_parquet(Path(store.base) / rel / "findings.parquet")
    (finding,) = published[published["check"] == "monitoring.mlflow_run"].to_dict("records")
    assert (finding["category"], finding["severity"], finding["subject"]) == ("monitoring", "low", experiment)
    assert "Error" in finding["message"] and "\n" not in finding["message"]
    assert set(outcome.findings["finding_id"]) == set(published["finding_id"])
    (failed,) = client.search_runs([experiment_id])
    assert failed.info.status == "FAILED"
    assert "assurance.result.mlflow_run_id" not in client.get_model_version(reg.model, reg.broken).tags
