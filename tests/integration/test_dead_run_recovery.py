"""Dead runs are seen: `dagster dev` with the shipped dagster.yaml, a run worker killed with SIGKILL mid-run.

Two ways a run's process dies, each on its own version of one model in an embedded registry:
- only the run worker is killed (the out-of-memory killer's choice): the warm run launcher that forked it
  (resources/warm_launcher.py) reports the death from its watcher thread;
- the whole stack is killed (a machine lost or restarted) and started again: nothing is left that
  launched the run, and the `assurance_dead_runs` sensor finds its worker gone.
Either way the run becomes FAILURE within a bound, the failure alert reaches the webhook, and the daemon's
run retry (run_retries in dagster.yaml) validates the version again and publishes its evidence.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import dagster as dg
import pytest

from tests.integration.servers import Deployment, embedded_deployment, run_mid_way, wait_for
from tests.support import webhook_receiver

pytestmark = pytest.mark.integration
MODEL = "dead_run_check"
SENSOR_INTERVAL = 3
# the launcher's watcher notices its worker's death within a second; the sensor needs a restart and a tick
FAILED_BOUND_SECONDS = {"worker": 30, "machine": 150}
RUN_BOUND_SECONDS = 420


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("dead_runs")
    with (
        webhook_receiver() as hook,
        embedded_deployment(root, SENSOR_INTERVAL, ASSURANCE_ALERT_WEBHOOK=hook.url) as deployment,
    ):
        deployment.hook = hook
        yield deployment


def register(deployment: Deployment, seed: int) -> str:
    from assurance.demo.registry_builder import register_version
    from tests.conftest import FEATURES, LABEL, fit_model, make_frame

    reference = make_frame(3000, seed)
    return register_version(
        MODEL,
        fit_model(reference),
        reference,
        make_frame(3000, seed + 1),
        label=LABEL,
        features=FEATURES,
        data_dir=deployment.root / "data",
        tracking_uri=deployment.tracking_uri,
        model_tags={"owner": "retention-team"},
    )


def runs_of(instance: dg.DagsterInstance, version: str, **tags: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags={"dagster/partition": f"{MODEL}/{version}", **tags})))


def assert_failed_alerted_and_retried(deployment: Deployment, run: dg.DagsterRun, killed_at: float, how: str):
    instance = deployment.instance()

    def failed():
        return instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE

    wait_for(f"run {run.run_id} to be FAILURE", failed, FAILED_BOUND_SECONDS[how], interval=0.5)
    print(
        f"\n{how} killed -> run FAILURE: {time.time() - killed_at:.1f} s (bound {FAILED_BOUND_SECONDS[how]} s)"
    )
    alert = wait_for(
        "the failure alert",
        lambda: [
            p
            for p in deployment.hook.received
            if p.get("event") == "assurance.run_failure" and p["dagster_run_id"] == run.run_id
        ],
        60,
    )[0]
    assert alert["model"] == MODEL and alert["version"] == run.tags["dagster/partition"].split("/")[1]
    version = alert["version"]

    def retried():
        done = [
            r for r in runs_of(instance, version, **{"dagster/parent_run_id": run.run_id}) if r.is_finished
        ]
        return done[0] if done else None

    retry = wait_for(
        "the automatic retry to finish", retried, RUN_BOUND_SECONDS, interval=2, alive=deployment.dagster
    )
    assert retry.status == dg.DagsterRunStatus.SUCCESS, f"retry {retry.run_id} ended {retry.status}"
    store = deployment.evidence
    folder = store.latest_run_path(MODEL, version)
    assert folder is not None and store.verify(folder) == []
    assert store.read_manifest(folder)["dagster_run_id"] == retry.run_id
    return alert


def test_a_killed_run_worker_fails_the_run_alerts_and_is_retried(deployment):
    version = register(deployment, 1)
    run, pid = run_mid_way(deployment, MODEL, version, RUN_BOUND_SECONDS)
    os.kill(pid, signal.SIGKILL)
    alert = assert_failed_alerted_and_retried(deployment, run, time.time(), "worker")
    assert alert["error"]
    failures = deployment.instance().all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert [e.message for e in failures] == [
        f"Run worker (pid {pid}) was killed by SIGKILL before the run ended."
    ]


def test_a_run_whose_whole_machine_died_is_failed_after_restart_alerted_and_retried(deployment):
    version = register(deployment, 5)
    run, pid = run_mid_way(deployment, MODEL, version, RUN_BOUND_SECONDS)
    deployment.crash()
    killed_at = time.time()
    deployment.start()
    alert = assert_failed_alerted_and_retried(deployment, run, killed_at, "machine")
    assert f"process {pid}" in alert["error"] and "killed" in alert["error"]
