"""What an assurance's MLflow run holds and where links point; the graph tests log real runs end to end."""

from __future__ import annotations

import pandas as pd
import pytest

from assurance.domain.errors import PolicyError
from assurance.domain.findings import Finding, findings_frame
from assurance.domain.values import Section
from assurance.evidence.mlflow_run import TrackedRun, failure_finding, run_metrics, run_params
from assurance.evidence.publication import MLFLOW_RUN_TAG, Assurance
from assurance.evidence.store import EvidenceStore, Published
from assurance.policy.model import Policy
from assurance.policy.recommendation import Recommendation
from assurance.registry.client import web_address
from tests.support import make_record

NAN = float("nan")


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("http://user:secret@mlflow.internal:5000/", "http://mlflow.internal:5000"),
        ("https://ml.example/mlflow/", "https://ml.example/mlflow"),
        ("http://[::1]:5000", "http://[::1]:5000"),
        ("sqlite:////srv/mlflow.db", None),
        ("databricks", None),
        ("file:///srv/mlruns", None),
    ],
)
def test_only_http_servers_have_a_browser_address_and_it_carries_no_credentials(uri, address):
    assert web_address(uri) == address


def test_the_run_page_and_an_artifact_preview_are_mlflow_ui_routes():
    run = TrackedRun("7", "abc123", "http://mlflow.internal:5000")
    assert run.page() == "http://mlflow.internal:5000/#/experiments/7/runs/abc123"
    assert (
        run.page("report.html")
        == "http://mlflow.internal:5000/#/experiments/7/runs/abc123/artifactPath/report.html"
    )
    assert TrackedRun("7", "abc123").page("report.html") is None
    assert TrackedRun("7", "abc123").provenance() == {"experiment_id": "7", "run_id": "abc123", "url": None}


def test_evidence_links_map_the_root_to_its_web_address_and_encode_percent_signs(tmp_path):
    served = EvidenceStore(str(tmp_path), "https://evidence.example/assurance/")
    assert (
        served.link("a%20b/1/r1/report.html") == "https://evidence.example/assurance/a%2520b/1/r1/report.html"
    )
    assert EvidenceStore(str(tmp_path)).link("m/1/r1/report.html") is None


def test_params_name_what_judged_which_data():
    prov = {
        "policy_hash": "p" * 64,
        "package_version": "0.1.0",
        "dagster_run_id": "d-1",
        "run_id": "20250101T000000Z-abcd",
        "model_uri": "models:/credit/2",
        "policy_source": "default",
        "data": {"reference": {"fingerprint": "f" * 64}, "current": {"fingerprint": None}},
    }
    assert run_params(prov) == {
        "policy_hash": "p" * 64,
        "policy_source": "default",
        "package_version": "0.1.0",
        "dagster_run_id": "d-1",
        "evidence_run_id": "20250101T000000Z-abcd",
        "model_uri": "models:/credit/2",
        "reference_fingerprint": "f" * 64,
    }


def test_metrics_carry_interval_bounds_datasets_drift_share_and_open_findings():
    performance = pd.DataFrame(
        [
            ("reference", "roc_auc", 0.81, 0.78, 0.84, False),
            ("current", "roc_auc", 0.74, NAN, NAN, True),
        ],
        columns=["dataset", "metric", "value", "ci_low", "ci_high", "estimated"],
    )
    sections = [
        Section("performance", "Performance", tables={"performance": performance}),
        Section("drift", "Drift", metrics={"drift_share": 0.25, "drifted_features": 1.0}),
    ]
    policy, record = Policy(), make_record()
    findings = findings_frame(
        [
            Finding("drift", "drift.feature", "income", "medium", "income moved"),
            Finding("drift", "drift.feature", "age", "medium", "age moved"),
            Finding("performance", "performance.floor", "roc_auc", "high", "low auc"),
        ],
        record,
        policy,
    )
    findings.loc[findings["subject"] == "age", "status"] = "accepted"
    metrics = {m.key: m for m in run_metrics(sections, findings)}
    assert {k: m.value for k, m in metrics.items() if k.startswith(("reference", "current"))} == {
        "reference/roc_auc": 0.81,
        "reference/roc_auc_ci_low": 0.78,
        "reference/roc_auc_ci_high": 0.84,
        "current_estimated/roc_auc": 0.74,  # an estimate without an interval: no bounds logged
    }
    assert (
        metrics["reference/roc_auc_ci_low"].dataset == "reference" and metrics["reference/roc_auc"].of_model
    )
    assert metrics["drift/share"].value == 0.25 and metrics["drift/share"].dataset == "current"
    assert not metrics["drift/share"].of_model
    assert metrics["findings/open_medium"].value == 1 and metrics["findings/open_high"].value == 1
    assert metrics["findings/open_critical"].value == 0


def test_metrics_of_a_version_without_performance_or_drift_are_the_findings_counts():
    findings = findings_frame([], make_record(), Policy())
    assert sorted(
        m.key for m in run_metrics([Section("documentation", "Documentation")], findings)
    ) == sorted(f"findings/open_{s}" for s in ("critical", "high", "medium", "low", "info"))


def test_a_failure_to_log_is_one_line_with_the_policys_severity():
    policy = Policy().with_overrides({"severity": {"monitoring.mlflow_run": "medium"}})
    error = RuntimeError("(sqlite3.IntegrityError) FOREIGN KEY constraint failed\n[SQL: INSERT INTO ...]")
    finding = failure_finding(policy, "http://user:pw@mlflow.internal:5000", error)
    assert (finding.category, finding.check, finding.severity) == (
        "monitoring",
        "monitoring.mlflow_run",
        "medium",
    )
    assert finding.subject == "model-assurance"
    assert "\n" not in finding.message and "pw" not in finding.message
    assert "RuntimeError: (sqlite3.IntegrityError) FOREIGN KEY constraint failed" in finding.message
    assert failure_finding(Policy(), "sqlite:///x.db", error).severity == "low"


def test_the_experiment_is_a_policy_setting_that_cannot_be_blank():
    assert Policy().mlflow.experiment == "model-assurance"
    assert Policy().with_overrides({"mlflow": {"experiment": "risk"}}).mlflow.experiment == "risk"
    with pytest.raises(PolicyError, match="mlflow.experiment"):
        Policy().with_overrides({"mlflow": {"experiment": ""}})


def _assurance(run: TrackedRun | None, evidence_link: str | None = None) -> Assurance:
    return Assurance(
        Published("s3://bucket/ev", "credit/2/r1", "r1", {}),
        evidence_link,
        pd.DataFrame(),
        Recommendation("hold", ["critical: ..."], {"critical": 1, "high": 0}),
        run,
        None if run else "NotADirectoryError: ...",
    )


def test_the_report_link_is_the_served_evidence_else_the_mlflow_copy_else_none():
    served = "https://ev.example/credit/2/r1/report.html"
    on_server = TrackedRun("1", "run-9", "http://mlflow:5000")
    assert _assurance(on_server, served).report_url == served
    assert (
        _assurance(on_server).report_url
        == "http://mlflow:5000/#/experiments/1/runs/run-9/artifactPath/report.html"
    )
    assert _assurance(on_server).report_location == "s3://bucket/ev/credit/2/r1/report.html"
    assert _assurance(TrackedRun("1", "run-9")).report_url is None and _assurance(None).report_url is None


def test_result_tags_point_at_the_run_and_clear_a_run_id_an_earlier_assurance_left():
    logged = _assurance(TrackedRun("1", "run-9"), "https://ev.example/credit/2/r1/report.html")
    tags = logged.result_tags({})
    assert tags[MLFLOW_RUN_TAG] == "run-9" and tags["assurance.result.run_id"] == "r1"
    assert tags["assurance.result.report"] == "https://ev.example/credit/2/r1/report.html"
    assert tags["assurance.result.open_findings"] == "critical=1,high=0"
    unlogged = _assurance(None)
    assert unlogged.result_tags({MLFLOW_RUN_TAG: "run-8"})[MLFLOW_RUN_TAG] is None
    assert MLFLOW_RUN_TAG not in unlogged.result_tags({"owner": "risk"})
    assert unlogged.result_tags({})["assurance.result.report"] == "s3://bucket/ev/credit/2/r1/report.html"
