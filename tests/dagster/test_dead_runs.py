"""The dead-run sensor against a real Dagster instance and real processes (the end-to-end kill is in
tests/integration/test_dead_run_recovery.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import dagster as dg
import pytest
from dagster._core.events import EngineEventData

from assurance.governance.run_workers import Worker, current_worker, this_host, worker_tags
from assurance.settings import Settings
from sensors.dead_runs import build_dead_run_sensor

sensor = build_dead_run_sensor(Settings())


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def started_run(instance, tags=None, job="assure_model_version") -> dg.DagsterRun:
    run = dg.DagsterRun(
        job_name=job, run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED, tags=tags or {}
    )
    return instance.add_run(run)


def status(instance, run) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run.run_id).status


def evaluate(instance) -> str:
    return sensor(dg.build_sensor_context(instance=instance)).skip_message


def test_a_command_line_run_whose_process_died_is_marked_failed(instance, dead_pid):
    dead = started_run(instance, worker_tags(Worker(this_host(), dead_pid)))
    alive = started_run(instance, worker_tags(current_worker()))
    elsewhere = started_run(instance, worker_tags(Worker("elsewhere.invalid", dead_pid)))
    other_job = started_run(instance, worker_tags(Worker(this_host(), dead_pid)), job="someone_elses_job")
    summary = evaluate(instance)
    assert status(instance, dead) == dg.DagsterRunStatus.FAILURE
    (failure,) = instance.all_logs(dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert f"process {dead_pid} on {this_host()}" in failure.message and "killed" in failure.message
    for run in (alive, elsewhere, other_job):
        assert status(instance, run) == dg.DagsterRunStatus.STARTED
    assert summary.startswith("1 dead runs marked failed; 1 started runs")


def test_a_launched_run_is_judged_by_the_pid_its_process_logged(instance, dead_pid):
    """Under the default launcher a run's process logs its pid first thing; that pid is on this host."""
    dead, alive = started_run(instance), started_run(instance)
    for run, pid in ((dead, dead_pid), (alive, os.getpid())):
        instance.report_engine_event(
            f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
        )
    evaluate(instance)
    assert status(instance, dead) == dg.DagsterRunStatus.FAILURE
    assert status(instance, alive) == dg.DagsterRunStatus.STARTED
    assert evaluate(instance).startswith("0 dead runs marked failed")  # a failed run is not judged again
