"""The production shape on one machine: every part a separate process, nothing embedded.

PostgreSQL holds the Dagster instance (`deploy/dagster-postgres.yaml`); the code location is served by
`dagster code-server start` behind `deploy/workspace-grpc.yaml`; `dagster-daemon run` (sensors, run queue)
and `dagster-webserver` read the same instance and workspace; the registry is `mlflow server` and the
evidence root an S3 bucket (moto). Several versions registered at once must each be assured exactly once
by runs the registry sensor requests and the queued run coordinator releases two at a time.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEventType

from sensors.validation_job import VALIDATION_JOB
from tests.integration.conftest import sensor_ticks
from tests.integration.servers import (
    LOCATION_NAME,
    PRODUCTION_INSTANCE,
    Server,
    base_env,
    code_server,
    dagster_daemon,
    dagster_webserver,
    free_port,
    grpc_ready,
    mlflow_server,
    moto_s3,
    postgres_cluster,
    production_home,
    reaped_children_cpu,
    wait_dagster,
    wait_for,
    wait_mlflow,
)

pytestmark = pytest.mark.integration

MODEL = "fleet_churn"
VERSIONS = ("1", "2", "3")  # one more than the run queue admits at once
BUCKET = "assurance"
RUNS_TIMEOUT = 480  # the three runs took 101 s at load average 5 on 2 cores, 234 s at 9


@dataclass
class Production:
    home: Path
    evidence: str
    tracking_uri: str
    code_port: int
    ui_port: int
    code: Server
    daemon: Server
    instance: dg.DagsterInstance


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> Iterator[Production]:
    """PostgreSQL, S3, `mlflow server` and the three Dagster services, stopped in reverse order afterwards."""
    import boto3
    import s3fs

    root = tmp_path_factory.mktemp("production")
    with postgres_cluster() as pg, moto_s3() as aws, pytest.MonkeyPatch.context() as env:
        for name, value in {**pg.env, **aws}.items():  # this process reads the same instance and bucket
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        s3fs.S3FileSystem.clear_instance_cache()
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        mlflow_port, code_port, ui_port = free_port(), free_port(), free_port()
        home = production_home(root / "dagster_home")
        service_env = base_env(
            DAGSTER_HOME=str(home),
            DAGSTER_CODE_SERVER_HOST="127.0.0.1",
            DAGSTER_CODE_SERVER_PORT=str(code_port),
            MLFLOW_TRACKING_URI=f"http://127.0.0.1:{mlflow_port}",
            ASSURANCE_EVIDENCE_ROOT=f"s3://{BUCKET}/evidence",
            ASSURANCE_SENSOR_INTERVAL="10",
            ASSURANCE_SENSOR_SETTLE_SECONDS="2",
            **pg.env,
            **aws,
        )
        mlflow = mlflow_server(root / "mlflow", mlflow_port)
        code = code_server(home, service_env)
        daemon = dagster_daemon(home, service_env)
        webserver = dagster_webserver(home, ui_port, service_env)
        with ExitStack() as running:  # every server is stopped, newest first, even if stopping one fails
            for server in (mlflow, code, daemon, webserver):
                running.callback(server.start().stop)
            running.callback(s3fs.S3FileSystem.clear_instance_cache)
            wait_mlflow(mlflow, mlflow_port)
            wait_for("the code server", lambda: grpc_ready("127.0.0.1", code_port), 180, 2, alive=code)
            wait_dagster(webserver, ui_port, timeout=180)
            instance = running.enter_context(dg.DagsterInstance.from_config(str(home)))
            wait_for("the registry sensor's first tick", lambda: sensor_ticks(instance), 180, 2, alive=daemon)
            yield Production(
                home, service_env["ASSURANCE_EVIDENCE_ROOT"], service_env["MLFLOW_TRACKING_URI"],
                code_port, ui_port, code, daemon, instance,
            )  # fmt: skip


@pytest.fixture(scope="module")
def assured(production) -> list[dg.RunRecord]:
    """Three versions registered back to back; the run records once every version has a finished run."""
    from assurance.demo.registry_builder import register_version
    from tests.conftest import FEATURES, LABEL, fit_model, make_frame

    reference = make_frame(1200, 21)
    model = fit_model(reference)
    for version in VERSIONS:
        got = register_version(
            MODEL, model, reference, make_frame(1200, 30 + int(version)),
            label=LABEL, features=FEATURES, data_dir=production.home.parent / "data",
            tracking_uri=production.tracking_uri,
            model_tags={"owner": "fleet-team", "use_case": "internal churn outreach"},
        )  # fmt: skip
        assert got == version

    def every_version_finished() -> list[dg.RunRecord] | None:
        records = production.instance.get_run_records(dg.RunsFilter(job_name=VALIDATION_JOB))
        done = {r.dagster_run.tags.get("dagster/partition") for r in records if r.dagster_run.is_finished}
        return records if done >= {f"{MODEL}/{v}" for v in VERSIONS} else None

    return wait_for(
        "a finished run of every version", every_version_finished, RUNS_TIMEOUT, 2, alive=production.daemon
    )


def test_every_version_is_assured_exactly_once_with_evidence(production, assured):
    from assurance.evidence.store import EvidenceStore

    keys = sorted(r.dagster_run.tags["dagster/partition"] for r in assured)
    assert keys == [f"{MODEL}/{v}" for v in VERSIONS], f"one run per version, got {keys}"
    failed = [
        (r.dagster_run.run_id, r.dagster_run.status)
        for r in assured
        if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS
    ]
    assert not failed, failed
    store = EvidenceStore(production.evidence)
    by_version = {
        r.dagster_run.tags["dagster/partition"].split("/")[1]: r.dagster_run.run_id for r in assured
    }
    for version in VERSIONS:
        published = store.runs(MODEL, version)
        assert len(published) == 1, f"version {version}: {published}"
        folder = f"{store.version_path(MODEL, version)}/{published[0]}"
        assert store.verify(folder) == []
        assert store.read_manifest(folder)["dagster_run_id"] == by_version[version]
    # the written-back result tags must not start a second round: two more ticks, still one run each
    settled = time.time()
    wait_for(
        "two more sensor ticks", lambda: len(sensor_ticks(production.instance, after=settled)) >= 2, 60, 2
    )
    assert production.instance.get_runs_count(dg.RunsFilter(job_name=VALIDATION_JOB)) == len(VERSIONS)


def test_runs_are_queued_and_never_exceed_the_concurrency_limit(production, assured):
    limit = yaml.safe_load(PRODUCTION_INSTANCE.read_text())["run_queue"]["max_concurrent_runs"]
    for record in assured:
        enqueued = production.instance.get_records_for_run(
            record.dagster_run.run_id, of_type=DagsterEventType.RUN_ENQUEUED
        ).records
        assert enqueued, f"run {record.dagster_run.run_id} bypassed the queue"
    spans = [(r.start_time, r.end_time) for r in assured]
    assert all(start is not None and end is not None for start, end in spans), spans
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak == limit, f"{peak} runs at once with max_concurrent_runs {limit}"
    durations = sorted(end - start for start, end in spans)
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    cpu = reaped_children_cpu(production.code) / len(spans)
    print(
        f"\n{len(spans)} runs, {limit} at a time on {os.cpu_count()} cores (load average "
        f"{os.getloadavg()[0]:.1f}): {durations[0]:.0f}-{durations[-1]:.0f} s per run, {wall:.0f} s in all, "
        f"{len(spans) / wall * 3600:.0f} versions/hour; run workers used {cpu:.1f} CPU s per run"
    )


def test_runs_come_from_the_code_server_and_live_in_postgres(production, assured):
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin

    storage = production.instance.run_storage
    assert type(storage).__name__ == "PostgresRunStorage"
    assert production.instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
    for record in assured:
        origin = record.dagster_run.remote_job_origin.repository_origin.code_location_origin
        assert isinstance(origin, GrpcServerCodeLocationOrigin)
        assert (origin.location_name, origin.port) == (LOCATION_NAME, production.code_port)


def test_the_webserver_serves_the_location_from_the_code_server(production):
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
    query += "locationOrLoadError { __typename } } } } }"
    request = urllib.request.Request(
        f"http://127.0.0.1:{production.ui_port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    assert [(e["name"], e["loadStatus"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
        (LOCATION_NAME, "LOADED", "RepositoryLocation")
    ]
