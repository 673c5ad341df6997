"""End to end on a small window of real public data (not the demo): a healthy model is approved, and a
collapsed 43-row segment is found.

A random forest on scikit-learn's breast-cancer data, with reference and current windows of 171 rows
drawn at random from one population, is healthy: effect sizes of two such windows pass the policy's
thresholds by chance alone, so only checks that weigh sampling noise approve it. Version 2 is the same
model on a current window where one clinic of 43 rows lost its accuracy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

JUDGED = ("critical", "high", "medium")
WORDS = " ".join(["Reviewed and approved by the model risk committee for internal research triage only."] * 6)
DOCUMENTS = {
    "model_card.md": f"# Tumour triage model\n\n## Intended use\n{WORDS}\n\n## Limitations\n{WORDS}\n",
    "datasheet.md": f"# Wisconsin diagnostic data\n\n## Collection\n{WORDS}\n",
}


@pytest.fixture(scope="module")
def breast_cancer_registry(tmp_path_factory):
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    from assurance.demo.registry_builder import embedded_tracking_uri, register_version

    frame = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: str(c).replace(" ", "_"))
    features = [c for c in frame.columns if c != "target"]
    rng = np.random.default_rng(12)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    frame["clinic"] = rng.choice(["north", "south", "east", "west"], len(frame))
    train, reference, current = frame.iloc[:227], frame.iloc[227:398], frame.iloc[398:].reset_index(drop=True)
    model = RandomForestClassifier(n_estimators=100, max_depth=6, random_state=0).fit(
        train[features], train["target"]
    )
    collapsed = current.copy()
    pilot = np.sort(rng.choice(len(collapsed), 43, replace=False))
    collapsed.loc[pilot, "clinic"] = "pilot"
    predicted = model.predict(collapsed.loc[pilot, features])
    right = pilot[predicted == collapsed.loc[pilot, "target"].to_numpy()]
    flip = right[: int(0.3 * len(pilot))]
    collapsed.loc[flip, "target"] = 1 - collapsed.loc[flip, "target"]

    root = tmp_path_factory.mktemp("breast_cancer")
    uri = embedded_tracking_uri(root)
    common = {
        "label": "target",
        "features": features,
        "data_dir": root / "data",
        "tracking_uri": uri,
        "documents": DOCUMENTS,
        "version_tags": {"assurance.slices": "clinic"},
    }
    tags = {"owner": "oncology-ml", "use_case": "research triage of biopsy reports", "risk_tier": "low"}
    healthy = register_version("tumour_triage", model, reference, current, model_tags=tags, **common)
    troubled = register_version("tumour_triage", model, reference, collapsed, **common)
    return uri, healthy, troubled, len(pilot)


def assure(uri: str, version: str, evidence) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI")}
    proc = subprocess.run(
        [sys.executable, "-m", "assurance.cli", "run", "--tracking-uri", uri, "--model", "tumour_triage"]
        + ["--version", version, "--evidence", str(evidence), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_a_healthy_model_on_171_row_windows_is_approved(breast_cancer_registry, tmp_path):
    uri, healthy, _, _ = breast_cancer_registry
    doc = assure(uri, healthy, tmp_path / "ev")
    judged = [(f["check"], f["subject"]) for f in doc["findings"] if f["severity"] in JUDGED]
    assert judged == [] and doc["recommendation"] == "approve", doc["reasons"]
    drift = pd.read_parquet(tmp_path / "ev" / doc["evidence_dir"] / "drift.parquet")
    assert (drift["n_reference"] == 171).all() and drift["p_value"].notna().all()
    assert drift["material"].any() and not drift["drifted"].any()  # effect sizes alone would have cried wolf


def test_a_collapsed_43_row_clinic_is_found(breast_cancer_registry, tmp_path):
    uri, _, troubled, support = breast_cancer_registry
    doc = assure(uri, troubled, tmp_path / "ev")
    slices = [f for f in doc["findings"] if f["check"] == "slices.underperforming"]
    assert support == 43 and [f["subject"] for f in slices] == ["clinic=pilot"]
    assert doc["recommendation"] != "approve"
