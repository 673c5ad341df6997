"""Settings: read once from the environment, overridden by options, passed on; MLflow's process state in one place."""

from __future__ import annotations

import os
import threading

import pytest

from assurance.domain.errors import AssuranceError, SettingsError
from assurance.registry.client import FAIL_FAST_HTTP, fail_fast_http
from assurance.settings import Settings


def test_defaults_are_the_documented_ones():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (
        settings.tracking_uri is None
        and settings.evidence_root == "./evidence"
        and settings.policy_path is None
    )
    assert (settings.sensor_interval, settings.sensor_max_runs, settings.sensor_settle_seconds) == (
        30,
        25,
        15,
    )
    assert (settings.monitoring_cron, settings.revalidation_cron) == ("0 6 * * *", "0 7 * * *")
    assert settings.alert_webhook is None and settings.dagster_url is None and settings.dagster_home is None
    assert (settings.alert_retry_seconds, settings.alert_max_attempts) == (30, 30)
    assert settings.data_memory_budget_mb == 2048
    assert settings.evidence_url is None


def test_every_variable_is_read_and_blank_means_unset():
    env = {
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "ASSURANCE_EVIDENCE_ROOT": "s3://bucket/ev",
        "ASSURANCE_EVIDENCE_URL": "https://evidence.example/ev/",
        "ASSURANCE_POLICY": "/etc/policy.yaml",
        "ASSURANCE_ALERT_WEBHOOK": " https://hooks.example/x ",
        "ASSURANCE_DAGSTER_URL": "http://dagster:3000",
        "ASSURANCE_ALERT_RETRY_SECONDS": "0",
        "ASSURANCE_ALERT_MAX_ATTEMPTS": "5",
        "ASSURANCE_SENSOR_INTERVAL": "60",
        "ASSURANCE_SENSOR_MAX_RUNS": "3",
        "ASSURANCE_SENSOR_SETTLE_SECONDS": "0",
        "ASSURANCE_MONITORING_CRON": "0 5 * * *",
        "ASSURANCE_REVALIDATION_CRON": "   ",
        "ASSURANCE_DATA_MEMORY_BUDGET_MB": "512",
        "DAGSTER_HOME": "/srv/dagster",
    }
    settings = Settings.from_env(env)
    assert settings == Settings(
        tracking_uri="http://mlflow:5000",
        evidence_root="s3://bucket/ev",
        evidence_url="https://evidence.example/ev",
        policy_path="/etc/policy.yaml",
        alert_webhook="https://hooks.example/x",
        dagster_url="http://dagster:3000",
        alert_retry_seconds=0,
        alert_max_attempts=5,
        sensor_interval=60,
        sensor_max_runs=3,
        sensor_settle_seconds=0,
        monitoring_cron="0 5 * * *",
        revalidation_cron="0 7 * * *",
        data_memory_budget_mb=512,
        dagster_home="/srv/dagster",
    )


def test_from_env_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("ASSURANCE_SENSOR_MAX_RUNS", "3")
    monkeypatch.setenv("ASSURANCE_EVIDENCE_ROOT", "/tmp/ev")
    settings = Settings.from_env()
    assert settings.sensor_max_runs == 3 and settings.evidence_root == "/tmp/ev"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ASSURANCE_SENSOR_MAX_RUNS", "many", "is not an integer"),
        ("ASSURANCE_SENSOR_MAX_RUNS", "0", "must be at least 1"),
        ("ASSURANCE_SENSOR_INTERVAL", "1.5", "is not an integer"),
        ("ASSURANCE_SENSOR_SETTLE_SECONDS", "-1", "must be at least 0"),
        ("ASSURANCE_ALERT_MAX_ATTEMPTS", "0", "must be at least 1"),
        ("ASSURANCE_ALERT_RETRY_SECONDS", "soon", "is not an integer"),
        ("ASSURANCE_DATA_MEMORY_BUDGET_MB", "0", "must be at least 1"),
        ("ASSURANCE_EVIDENCE_URL", "s3://bucket/ev", "must be an http:// or https:// URL"),
        ("ASSURANCE_EVIDENCE_URL", "file:///srv/ev", "must be an http:// or https:// URL"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(name, value, message):
    with pytest.raises(SettingsError, match=f"{name}.*{message}") as caught:
        Settings.from_env({name: value})
    assert isinstance(caught.value, AssuranceError)


def test_options_override_only_what_they_give():
    base = Settings.from_env({"ASSURANCE_EVIDENCE_ROOT": "/ev", "MLFLOW_TRACKING_URI": "http://a"})
    over = base.override(tracking_uri="http://b", evidence_root=None, policy_path=None)
    assert over.tracking_uri == "http://b" and over.evidence_root == "/ev" and over.policy_path is None
    assert base.tracking_uri == "http://a"  # frozen: the original is unchanged


def test_no_module_reads_or_writes_the_environment_outside_settings_and_the_mlflow_adapter():
    """`Settings.from_env` reads; `assurance/registry/client.py` alone writes (MLflow's own switches)."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    allowed = {"assurance/settings.py", "assurance/registry/client.py"}
    offenders = []
    for folder in ("assurance", "assets", "resources", "sensors"):
        for path in (root / folder).rglob("*.py"):
            rel = path.relative_to(root).as_posix()
            text = path.read_text()
            if rel not in allowed and ("os.environ" in text or "os.getenv" in text):
                offenders.append(rel)
    assert offenders == []


def test_fail_fast_http_sets_short_retries_only_for_its_block(monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "99")
    with fail_fast_http():
        assert (
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == FAIL_FAST_HTTP["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
        )
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "99"  # the user's own setting wins
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "99"


def test_overlapping_fail_fast_blocks_restore_the_environment_when_the_last_one_leaves(monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    inside, release = threading.Event(), threading.Event()

    def other_tick():
        with fail_fast_http():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other_tick)
    with fail_fast_http():
        thread.start()
        inside.wait(5)
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" in os.environ  # the other tick is still in its block
    release.set()
    thread.join(5)
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_status_gets_its_defaults_without_importing_dagster(tmp_path):
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from mlflow import MlflowClient\n"
        f"MlflowClient('sqlite:///{tmp_path}/mlflow.db').search_experiments()  # an empty registry\n"
        "from assurance.cli.main import main\n"
        f"code = main(['status', '--tracking-uri', 'sqlite:///{tmp_path}/mlflow.db', '--evidence', '{tmp_path}/ev'])\n"
        "assert code == 0, code\n"
        "assert 'dagster' not in sys.modules, 'status imported Dagster'\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Model risk posture" in proc.stdout
