"""The `assurance` command as a user runs it, against a registry built in the test (not the demo)."""

import json
import os
import subprocess
import sys

from assurance.evidence.store import EvidenceStore


def cli(*args, env_extra=None, timeout=300):
    env = {**os.environ, **(env_extra or {})}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "assurance.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_run_json_prints_findings_in_the_design_schema(small_registry, tmp_path):
    evidence = tmp_path / "ev"
    proc = cli(
        "run",
        "--tracking-uri",
        small_registry.tracking_uri,
        "--model",
        small_registry.model,
        "--version",
        small_registry.broken,
        "--evidence",
        str(evidence),
        "--json",
        "--fail-on",
        "hold",
    )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["recommendation"] == "hold" and doc["version"] == small_registry.broken
    assert {"model", "version", "recommendation", "reasons", "evidence_dir", "findings"} <= set(doc)
    checks = {(f["check"], f["subject"]) for f in doc["findings"]}
    assert ("schema.missing_column", "rate") in checks
    assert ("quality.missing_values", "amount") in checks
    first = doc["findings"][0]
    assert set(first) >= {"finding_id", "category", "severity", "status", "message", "evidence", "due"}
    store = EvidenceStore(str(evidence))
    assert store.verify(store.latest_run_path(small_registry.model, small_registry.broken)) == []
    assert "Assuring" in proc.stderr


def test_run_by_alias_and_clear_errors(small_registry, tmp_path):
    proc = cli(
        "run",
        "--tracking-uri",
        small_registry.tracking_uri,
        "--model",
        "no_such_model",
        "--evidence",
        str(tmp_path),
    )
    assert proc.returncode == 2
    assert "no_such_model" in proc.stderr and "Traceback" not in proc.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = cli(
        "run",
        "--tracking-uri",
        small_registry.tracking_uri,
        "--model",
        small_registry.model,
        "--evidence",
        str(blocker / "ev"),
    )
    assert proc.returncode == 2 and "not writable" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli(
        "run",
        "--tracking-uri",
        small_registry.tracking_uri,
        "--model",
        small_registry.model,
        "--alias",
        "missing-alias",
        "--evidence",
        str(tmp_path / "ev"),
    )
    assert proc.returncode == 2 and "missing-alias" in proc.stderr


def test_a_sqlite_registry_that_does_not_exist_is_refused_and_nothing_is_written(tmp_path):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "assurance.cli", "run", "--model", "credit", "--version", "1"],
        capture_output=True,
        text=True,
        cwd=workdir,
        env={**os.environ, "MLFLOW_TRACKING_URI": "sqlite:///no/such/dir/mlflow.db"},
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "does not exist" in proc.stderr and "no/such/dir/mlflow.db" in proc.stderr
    assert list(workdir.iterdir()) == []
