"""An analysis that raises costs the version only that analysis: the rest of the run publishes whole."""

import importlib

import dagster as dg
import pytest

from assurance.checks.catalog import all_analyses
from assurance.evidence.store import EvidenceStore
from assurance.settings import Settings

MODULES = {"data_quality": "quality"}


@pytest.mark.parametrize("key", [a.key for a in all_analyses()])
def test_a_failing_analysis_becomes_a_finding_and_the_evidence_is_complete(
    key, small_registry, tmp_path, monkeypatch
):
    from assurance.cli.launcher import run_version

    def broken(inputs):
        raise RuntimeError(f"injected fault in {key}\nsecond line stays out of the finding")

    monkeypatch.setattr(importlib.import_module(f"assurance.checks.{MODULES.get(key, key)}"), "run", broken)
    settings = Settings(tracking_uri=small_registry.tracking_uri, evidence_root=str(tmp_path / "evidence"))
    outcome = run_version(
        small_registry.model, small_registry.healthy, settings, dg.DagsterInstance.ephemeral()
    )

    assert outcome.success, outcome.error
    f = outcome.findings
    failed = f[f["check"] == "monitoring.analysis_failed"]
    assert failed["subject"].tolist() == [key]
    assert failed["category"].tolist() == ["monitoring"]
    assert "RuntimeError: injected fault in" in failed["message"].iloc[0]
    assert "second line" not in failed["message"].iloc[0]
    assert outcome.summary["recommendation"] == "hold"
    store = EvidenceStore(settings.evidence_root)
    rel = store.latest_run_path(small_registry.model, small_registry.healthy)
    assert rel and store.verify(rel) == []
    manifest = store.read_manifest(rel)
    names = {entry["path"] for entry in manifest["files"]}
    assert {"findings.parquet", "report.html", "report.md"} <= names
    report = store.read_bytes(f"{rel}/report.md").decode()
    assert "This analysis did not complete:** RuntimeError: injected fault" in report
    assert all(a.title in report for a in all_analyses())
