"""Warm runs are the same runs: `dagster dev` with the shipped dagster.yaml (the warm run launcher) over an
embedded registry, against the command line's in-process run of the same versions.

A run worker forked from the launcher's fork server must be indistinguishable from a single-version run
but for its start: the same recommendation, findings, evidence files and per-partition asset check
results (issue 12). Its worker is the process that logged the run's start, forked from the fork server,
not started by the code server; and a terminated run ends CANCELED (not FAILURE, which the daemon would
retry), with its worker gone and no evidence published.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import psutil
import pytest
from dagster._core.event_api import PartitionKeyFilter

from assurance.domain.values import RANGE_END_TAG, RANGE_START_TAG, partition_key
from assurance.evidence.store import EvidenceStore
from assurance.governance.run_workers import PID_TAG
from assurance.settings import Settings
from resources.warm_launcher import COLD_BECAUSE_CHANGED, LAUNCHER_TAG
from tests.integration.servers import (
    REPO,
    Deployment,
    embedded_deployment,
    launch_backfill,
    run_mid_way,
    sensor_run,
    wait_for,
    worker_pid,
)

pytestmark = pytest.mark.integration
MODEL = "warm_runs_check"
SENSOR_INTERVAL = 2
ROWS = 1500
RUN_BOUND_SECONDS = 240
FINDING_KEY = ["finding_id", "check", "subject", "severity"]
TREND = "plots/trend.png"  # drawn once a version has earlier runs
# evidence run folders and file names that carry a run id or a time
RUN_STAMP = re.compile(
    r"\d{8}T\d{6}Z-[0-9a-f]{8}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    # OpenMP with two threads, whatever the caller set: a fork server whose rehearsal started an OpenMP team
    # would hang its workers at their first parallel region (gradient boosting's predict)
    root = tmp_path_factory.mktemp("warm_runs")
    with embedded_deployment(root, SENSOR_INTERVAL, OMP_NUM_THREADS="2") as deployment:
        yield deployment


def register(deployment: Deployment, seed: int, shift: float = 0.0, rows: int = ROWS) -> str:
    """A new version of the model; `shift` moves the current data's `amount` by that many of its means."""
    from assurance.demo.registry_builder import register_version
    from tests.conftest import FEATURES, LABEL, fit_model, make_frame

    reference = make_frame(rows, seed)
    current = make_frame(rows, seed + 1)
    current["amount"] += shift * reference["amount"].mean()
    return register_version(
        MODEL,
        fit_model(reference),
        reference,
        current,
        label=LABEL,
        features=FEATURES,
        data_dir=deployment.root / "data",
        tracking_uri=deployment.tracking_uri,
        model_tags={"owner": "retention-team"},
    )


def finished_run(deployment: Deployment, version: str) -> dg.DagsterRun:
    instance = deployment.instance()

    def finished():
        run = sensor_run(instance, MODEL, version)
        return run if run is not None and run.is_finished else None

    return wait_for(
        f"the run of version {version} to finish", finished, RUN_BOUND_SECONDS, alive=deployment.dagster
    )


@dataclass
class Assured:
    """The two versions as the deployment ran them, and the command line's evidence and instance for them."""

    runs: dict[str, dg.DagsterRun]
    cli_store: EvidenceStore
    cli_instance: dg.DagsterInstance


@pytest.fixture(scope="module")
def assured(deployment, tmp_path_factory) -> Iterator[Assured]:
    """A healthy version and one whose current `amount` moved, each assured by a warm run and then in process
    by the command line; one after the other, so each sees the same earlier evidence either way."""
    from assurance.cli.launcher import run_version

    settings = Settings(
        tracking_uri=deployment.tracking_uri, evidence_root=str(tmp_path_factory.mktemp("cli"))
    )
    runs = {}
    with dg.DagsterInstance.ephemeral() as cli_instance:
        for seed, shift in ((1, 0.0), (3, 1.5)):
            version = register(deployment, seed, shift)
            outcome = run_version(MODEL, version, settings, dagster_instance=cli_instance)
            assert outcome.success, outcome.error
            runs[version] = finished_run(deployment, version)
        yield Assured(runs, EvidenceStore(settings.evidence_root), cli_instance)


def test_each_version_ran_warm_in_a_worker_forked_from_the_fork_server(deployment, assured):
    instance = deployment.instance()
    for version, run in assured.runs.items():
        assert run.status == dg.DagsterRunStatus.SUCCESS, (
            f"version {version}: run {run.run_id} ended {run.status}"
        )
        assert run.tags[LAUNCHER_TAG] == "warm"
        pid = worker_pid(instance, run.run_id)
        assert pid is not None and run.tags[PID_TAG] == str(pid)
        if psutil.pid_exists(
            pid
        ):  # a finished run's worker has usually exited: the terminate test sees one live
            assert forked_from_the_fork_server(pid)


def forked_from_the_fork_server(pid: int) -> bool:
    """Whether the process's parent is multiprocessing's fork server (a code server's worker is its own child)."""
    return "multiprocessing.forkserver" in " ".join(psutil.Process(pid).parent().cmdline())


def published(store: EvidenceStore, version: str) -> tuple[dict, pd.DataFrame, list[str]]:
    folder = store.latest_run_path(MODEL, version)
    assert folder is not None and store.verify(folder) == []
    manifest = store.read_manifest(folder)
    findings = store.latest_table(MODEL, version, "findings")
    files = sorted(RUN_STAMP.sub("<run>", entry["path"]) for entry in manifest["files"])
    return manifest, findings, files


def finding_keys(findings: pd.DataFrame) -> list[tuple]:
    return sorted(map(tuple, findings[FINDING_KEY].astype(str).to_numpy().tolist()))


def test_warm_runs_publish_what_a_single_in_process_run_publishes(deployment, assured):
    outcomes = set()
    for version in assured.runs:
        warm_manifest, warm_findings, warm_files = published(deployment.evidence, version)
        cli_manifest, cli_findings, cli_files = published(assured.cli_store, version)
        assert warm_manifest["recommendation"] == cli_manifest["recommendation"], version
        assert finding_keys(warm_findings) == finding_keys(cli_findings), version
        assert warm_files == cli_files, version
        outcomes.add((warm_manifest["recommendation"], len(warm_findings)))
    assert len(outcomes) == 2, f"the planted shift changed nothing: {outcomes}"


def check_results(instance: dg.DagsterInstance, keys, partition: str) -> dict[str, str]:
    """Every asset check's latest result recorded for the partition (UI lineage: per version)."""
    results = {}
    for key in keys:
        records = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=1, partition_filter=PartitionKeyFilter(key=partition)
        )
        if records:
            assert records[0].partition == partition
            results[key.to_user_string()] = records[0].status.value
    return results


def test_warm_runs_record_each_asset_check_per_partition_as_an_in_process_run(deployment, assured):
    from assurance.cli.launcher import _definitions
    from assurance.definitions import VALIDATION_JOB

    job = _definitions(Settings()).resolve_job_def(VALIDATION_JOB)
    keys = sorted(job.asset_layer.asset_graph.asset_check_keys)
    instance = deployment.instance()
    statuses = set()
    for version in assured.runs:
        partition = partition_key(MODEL, version)
        warm = check_results(instance, keys, partition)
        assert warm == check_results(assured.cli_instance, keys, partition), version
        assert len(warm) >= len(keys) // 2, f"only {len(warm)} of {len(keys)} checks recorded for {partition}"
        statuses |= set(warm.values())
    assert statuses == {"SUCCEEDED", "FAILED"}


def test_a_backfill_revalidates_both_versions_in_one_warm_run_as_the_command_line_did(deployment, assured):
    """The UI's "Materialize" over both versions: the daemon runs the backfill as one batch, which publishes
    and records for each version what its own run did."""
    from assurance.cli.launcher import _definitions
    from assurance.definitions import VALIDATION_JOB

    instance = deployment.instance()
    partitions = [partition_key(MODEL, v) for v in assured.runs]
    backfill = launch_backfill(deployment.port, partitions)

    def finished():
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill}))
        return runs if runs and all(r.is_finished for r in runs) else None

    [run] = wait_for("the backfill's run to finish", finished, RUN_BOUND_SECONDS, alive=deployment.dagster)
    assert run.status == dg.DagsterRunStatus.SUCCESS, f"run {run.run_id} ended {run.status}"
    assert run.tags[LAUNCHER_TAG] == "warm"
    assert (
        run.tags[RANGE_START_TAG],
        run.tags[RANGE_END_TAG],
    ) == (
        partitions[0],
        partitions[-1],
    )
    keys = sorted(
        _definitions(Settings()).resolve_job_def(VALIDATION_JOB).asset_layer.asset_graph.asset_check_keys
    )
    for version, partition in zip(assured.runs, partitions, strict=True):
        manifest, findings, files = published(deployment.evidence, version)
        cli_manifest, cli_findings, cli_files = published(assured.cli_store, version)
        assert manifest["dagster_run_id"] == run.run_id
        assert (manifest["recommendation"], finding_keys(findings)) == (
            cli_manifest["recommendation"],
            finding_keys(cli_findings),
        ), version
        # the version's second run here, its first on the command line: only the trend over runs differs
        assert TREND in files and TREND not in cli_files
        assert [f for f in files if f != TREND] == cli_files, version
        batch = check_results(instance, keys, partition)
        assert batch == check_results(assured.cli_instance, keys, partition), version
        latest = instance.event_log_storage.get_asset_check_execution_history(
            keys[0], limit=1, partition_filter=PartitionKeyFilter(key=partition)
        )
        assert latest[0].run_id == run.run_id


def test_a_terminated_warm_run_ends_canceled_and_its_worker_is_gone(deployment, assured):
    instance = deployment.instance()
    version = register(deployment, 5, rows=4000)
    run, pid = run_mid_way(deployment, MODEL, version, RUN_BOUND_SECONDS)
    assert forked_from_the_fork_server(pid)

    assert dg.DagsterInstance.from_config(str(deployment.home)).run_launcher.terminate(run.run_id)

    def ended():
        current = instance.get_run_by_id(run.run_id)
        return current if current.is_finished else None

    ended_run = wait_for(f"run {run.run_id} to end", ended, 60, interval=0.5)
    assert ended_run.status == dg.DagsterRunStatus.CANCELED
    wait_for(f"its worker {pid} to exit", lambda: not psutil.pid_exists(pid), 10, interval=0.2)
    assert deployment.evidence.latest_run_path(MODEL, version) is None


def test_a_run_launched_after_the_code_changed_starts_cold_in_its_own_process(deployment, assured):
    """The fork server holds the code it imported: once the source changes (here its modification time,
    as an edit or a deployment changes it), runs go to Dagster's default launcher until the daemon restarts."""
    instance = deployment.instance()
    edited = REPO / "assurance" / "settings.py"
    stat = edited.stat()
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:  # until the run is launched, which the daemon does after the sensor queued it
        version = register(deployment, 7)
        run = finished_run(deployment, version)
    finally:
        os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run.status == dg.DagsterRunStatus.SUCCESS, f"run {run.run_id} ended {run.status}"
    assert LAUNCHER_TAG not in run.tags
    assert [
        e for e in instance.all_logs(run.run_id) if e.is_dagster_event and COLD_BECAUSE_CHANGED in e.message
    ]
    assert deployment.evidence.latest_run_path(MODEL, version) is not None
