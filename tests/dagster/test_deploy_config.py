"""The deployment files in `deploy/` say what Dagster and its Helm chart expect, and agree with the shipped
`dagster.yaml`. The PostgreSQL instance itself is exercised against a real server in
tests/integration/test_production_shape.py; here Dagster validates what it can without one.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
LOCATION = "model_assurance"
PG_ENV = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_PORT": "6543",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "p@ss/w:rd?#",
    "DAGSTER_PG_DB": "assurance",
}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def production_instance_dir(tmp_path: Path) -> Path:
    shutil.copy(DEPLOY / "dagster-postgres.yaml", tmp_path / "dagster.yaml")
    return tmp_path


def test_production_instance_is_the_shipped_one_with_postgres_storage():
    production, shipped = load(DEPLOY / "dagster-postgres.yaml"), load(ROOT / "dagster.yaml")
    storage = production.pop("storage")
    assert shipped.pop("run_launcher")["class"] == "WarmRunLauncher"
    assert production == shipped, "deploy/dagster-postgres.yaml drifted from dagster.yaml outside `storage`"
    db = storage["postgres"]["postgres_db"]
    assert db.pop("scheme") == "postgresql+psycopg2"
    assert {key: value["env"] for key, value in db.items()} == {
        "hostname": "DAGSTER_PG_HOST",
        "port": "DAGSTER_PG_PORT",
        "username": "DAGSTER_PG_USERNAME",
        "password": "DAGSTER_PG_PASSWORD",
        "db_name": "DAGSTER_PG_DB",
    }


def test_production_instance_passes_dagster_schema_validation(tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    config, custom_class = dagster_instance_config(str(production_instance_dir(tmp_path)))
    assert custom_class is None
    assert config["run_queue"]["max_concurrent_runs"] == 2 and "postgres" in config["storage"]


def test_postgres_settings_resolve_from_the_environment_to_a_psycopg2_url(tmp_path, monkeypatch):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.storage.config import pg_config
    from dagster_postgres.utils import pg_url_from_config
    from sqlalchemy.engine import make_url

    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    config, _ = dagster_instance_config(str(production_instance_dir(tmp_path)))
    resolved = process_config(pg_config(), config["storage"]["postgres"])
    assert resolved.success, resolved.errors
    url = make_url(pg_url_from_config(resolved.value))  # SQLAlchemy's parser: what the storage engine sees
    assert url.drivername == "postgresql+psycopg2"
    assert (url.host, url.port, url.username, url.database) == ("db.internal", 6543, "dagster", "assurance")
    assert url.password == PG_ENV["DAGSTER_PG_PASSWORD"]


def test_production_instance_names_a_missing_variable(tmp_path, monkeypatch):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.storage.config import pg_config

    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    config, _ = dagster_instance_config(str(production_instance_dir(tmp_path)))
    resolved = process_config(pg_config(), config["storage"]["postgres"])
    assert not resolved.success
    assert any("DAGSTER_PG_PASSWORD" in error.message for error in resolved.errors)


def test_grpc_workspace_points_at_the_code_server_under_the_fixed_location_name(monkeypatch):
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin
    from dagster._core.workspace.load import location_origins_from_yaml_paths

    monkeypatch.setenv("DAGSTER_CODE_SERVER_HOST", "code.internal")
    monkeypatch.setenv("DAGSTER_CODE_SERVER_PORT", "4266")
    [origin] = location_origins_from_yaml_paths([str(DEPLOY / "workspace-grpc.yaml")])
    assert isinstance(origin, GrpcServerCodeLocationOrigin)
    assert (origin.host, origin.port, origin.location_name) == ("code.internal", 4266, LOCATION)
    shipped = load(ROOT / "workspace.yaml")["load_from"][0]["python_module"]["location_name"]
    assert shipped == LOCATION, "the development and production workspaces must name the same location"


# --- Helm ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> dict:
    return load(DEPLOY / "helm" / "values.yaml")


def test_helm_values_serve_the_code_location_by_code_server_under_its_name(helm):
    users = helm["dagster-user-deployments"]
    assert users["enabled"] is True
    [deployment] = users["deployments"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", deployment["name"]), "not a Kubernetes name"
    args = deployment["codeServerArgs"]
    assert args[args.index("-m") + 1] == "assurance.definitions" and args[args.index("-a") + 1] == "defs"
    assert args[args.index("--location-name") + 1] == LOCATION
    workspace = helm["dagsterWebserver"]["workspace"]
    assert workspace["enabled"] is True
    assert workspace["servers"] == [
        {"host": deployment["name"], "port": deployment["port"], "name": LOCATION}
    ]
    env = deployment["env"]
    assert env["MLFLOW_TRACKING_URI"].startswith(("http://", "https://"))
    assert env["ASSURANCE_EVIDENCE_ROOT"].startswith("s3://")
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True, "run Jobs need the same env"
    images = {helm[part]["image"]["repository"] for part in ("dagsterWebserver", "dagsterDaemon")}
    assert images == {deployment["image"]["repository"]}, "one image holds every library the instance names"


def test_helm_values_launch_runs_as_jobs_on_external_postgres(helm):
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"
    run_resources = helm["runLauncher"]["config"]["k8sRunLauncher"]["resources"]
    assert run_resources["requests"]["cpu"] and run_resources["limits"]["memory"]
    pg = helm["postgresql"]
    assert pg["enabled"] is False and pg["postgresqlHost"] and pg["postgresqlScheme"] == "postgresql+psycopg2"
    assert helm["generatePostgresqlPasswordSecret"] is False and helm["global"]["postgresqlSecretName"]
    logs = helm["computeLogManager"]
    assert logs["type"] == "S3ComputeLogManager" and logs["config"]["s3ComputeLogManager"]["bucket"]


def test_helm_values_keep_the_shipped_queue_rules_monitoring_and_retention(helm):
    shipped = load(ROOT / "dagster.yaml")
    daemon = helm["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    queue = coordinator["config"]["queuedRunCoordinator"]
    limits = {(rule["key"], rule["value"]): rule["limit"] for rule in queue["tagConcurrencyLimits"]}
    shipped_limits = {(r["key"], r["value"]) for r in shipped["run_queue"]["tag_concurrency_limits"]}
    assert set(limits) == shipped_limits
    assert limits[("assurance/kind", "monitoring")] < queue["maxConcurrentRuns"], (
        "monitoring takes every slot"
    )
    assert limits[("assurance/kind", "validation")] <= queue["maxConcurrentRuns"]
    monitoring = daemon["runMonitoring"]
    assert {
        "enabled": monitoring["enabled"],
        "start_timeout_seconds": monitoring["startTimeoutSeconds"],
        "max_runtime_seconds": monitoring["maxRuntimeSeconds"],
        "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
        "poll_interval_seconds": monitoring["pollIntervalSeconds"],
    } == shipped["run_monitoring"]
    retries = daemon["runRetries"]
    assert {
        "enabled": retries["enabled"],
        "max_retries": retries["maxRetries"],
        "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"],
    } == shipped["run_retries"]
    retention = helm["retention"]
    assert retention["enabled"] is True
    assert retention["schedule"]["purgeAfterDays"] == shipped["retention"]["schedule"]["purge_after_days"]
    sensor = retention["sensor"]["purgeAfterDays"]
    assert {k: sensor[k] for k in ("skipped", "failure", "success")} == shipped["retention"]["sensor"][
        "purge_after_days"
    ]
    assert helm["telemetry"]["enabled"] is shipped["telemetry"]["enabled"]


def test_dagster_libraries_are_pinned_to_the_release_of_dagster_itself():
    """dagster 1.M.P ships its libraries as 0.(M+16).P; any other pairing is untested upstream."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [core] = [d for d in project["dependencies"] if d.startswith("dagster==")]
    major, minor, patch = core.split("==")[1].split(".")
    expected = f"0.{int(minor) + 16}.{patch}"
    extras = project["optional-dependencies"]
    pins = [d for deps in extras.values() for d in deps if d.startswith("dagster-") and "dagster-dg" not in d]
    assert {"dagster-postgres", "dagster-k8s", "dagster-aws"} <= {d.split("==")[0] for d in pins}
    assert all(d.split("==")[1] == expected for d in pins), (pins, expected)
    assert major == "1" and "model-assurance[postgres]" in extras["test"]
    assert metadata.version("dagster-postgres") == expected, "the environment lags pyproject.toml"
