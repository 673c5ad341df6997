"""The Dagster graph materialized in process for real versions of a temporary sqlite registry."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assurance.evidence import EvidenceStore


@pytest.fixture
def env(small_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", small_registry.tracking_uri)
    monkeypatch.setenv("ASSURANCE_EVIDENCE_ROOT", str(tmp_path / "evidence"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return small_registry, EvidenceStore(str(tmp_path / "evidence"))


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


def test_healthy_version_publishes_verifiable_evidence(env):
    from assurance.launcher import run_version

    reg, store = env
    instance = dg.DagsterInstance.ephemeral()
    outcome = run_version(reg.model, reg.healthy, instance)
    assert outcome.success, outcome.error
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
    from assurance.launcher import run_version
    from assurance.registry import Registry

    reg, store = env
    outcome = run_version(reg.model, reg.broken, dg.DagsterInstance.ephemeral())
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


def test_unreachable_registry_fails_the_run_clearly(env, monkeypatch, tmp_path):
    from assurance.launcher import run_version

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    outcome = run_version("nope", "1", dg.DagsterInstance.ephemeral())
    assert not outcome.success
    assert "model_version" in outcome.error and "cannot be reached" in outcome.error
