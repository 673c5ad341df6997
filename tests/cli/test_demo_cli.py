"""`assurance demo`, the README's first command, end to end: every version assured, planted problems found."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from assurance.evidence.store import EvidenceStore

# The demo's findings as `check | subject | severity` per version. A refactoring must leave them as
# they are; a deliberate change to a check updates this file in the same commit, so the diff shows it.
SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "demo_findings.json"


def test_demo_assures_every_version_and_finds_the_planted_problems(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "assurance.cli",
            "demo",
            "--root",
            str(tmp_path / "demo"),
            "--evidence",
            str(tmp_path / "ev"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Model risk posture" in proc.stdout and "portfolio:" in proc.stdout
    assert "Versions:" in proc.stdout and "inventory_coverage" in proc.stdout
    store = EvidenceStore(str(tmp_path / "ev"))
    findings = {}
    for model, version in [
        ("credit_default", "1"),
        ("credit_default", "2"),
        ("loss_given_default", "1"),
        ("loss_given_default", "2"),
    ]:
        rel = store.latest_run_path(model, version)
        assert rel is not None, f"no evidence for {model}/{version}"
        assert store.verify(rel) == []
        findings[model, version] = pd.read_parquet(store._abs(f"{rel}/findings.parquet"))
    observed = {
        f"{model}/{version}": sorted(f"{r.check} | {r.subject} | {r.severity}" for r in frame.itertuples())
        for (model, version), frame in findings.items()
    }
    assert observed == json.loads(SNAPSHOT.read_text())
    healthy = findings["credit_default", "1"]
    assert not healthy["severity"].isin(["critical", "high", "medium"]).any(), healthy[["check", "subject"]]
    troubled = findings["credit_default", "2"]
    assert set(troubled.loc[troubled["check"] == "drift.feature", "subject"]) == {
        "credit_utilization",
        "loan_amount",
    }
    assert "debt_to_income" in set(troubled.loc[troubled["check"] == "quality.missing_values", "subject"])
    assert "roc_auc" in set(troubled.loc[troubled["check"] == "reproducibility.metric_mismatch", "subject"])
    assert any(
        s.startswith("region=south")
        for s in troubled.loc[troubled["check"] == "slices.underperforming", "subject"]
    )
    assert {"change_control", "documentation"} <= set(troubled["category"])
    assert "owner" in set(findings["loss_given_default", "1"]["subject"])
    challenger = store.latest_run_path("credit_default", "2")
    compared = pd.read_parquet(store._abs(f"{challenger}/challenger.parquet")).set_index("metric")
    assert set(compared["champion_version"]) == {"1"}  # v2 (production) against v1 behind `champion`
    assert compared.loc["roc_auc", ["champion", "challenger"]].between(0.6, 1.0).all()
    champion_files = store.read_manifest(store.latest_run_path("credit_default", "1"))["files"]
    assert "challenger.parquet" not in {f["path"] for f in champion_files}  # v1 is the champion itself
    assert (tmp_path / "ev" / "_portfolio" / "report.html").exists()
    assert (tmp_path / "demo" / "dagster_home").is_dir()

    # the governance records: a decision bound to v2's evidence, a manual closure, KPIs over two portfolio runs
    from assurance.governance.decisions import read_decisions
    from assurance.governance.ledger import build_ledger
    from assurance.governance.portfolio import read_kpi_history

    (decision,) = read_decisions(store).itertuples()
    assert (decision.model, decision.version, decision.decision) == ("credit_default", "2", "hold")
    assert decision.run_id == store.latest_run_path("credit_default", "2").rsplit("/", 1)[-1]
    ledger = build_ledger(store, model="loss_given_default", version="1").set_index("check")
    closed = ledger.loc["documentation.missing_tag"]
    assert closed["status"] == "closed" and not closed["verified"] and closed["closed_manually_by"]
    assert len(read_kpi_history(store)) == 2
    assert "hold by model-risk-committee" in proc.stderr
