"""Dead runs are seen: a started run whose worker process is gone is marked failed.

Dagster's default run launcher has no worker health check (`supports_check_run_worker_health` is False),
so the daemon's run monitoring never looks at a started run. The code server that launched a run notices
its process dying, but only while that code server lives: after a crash or restart of the code location
(a machine lost or rebooted, `dagster dev` killed) and for runs of the `assurance` command (which executes
in its own process) a killed run stays STARTED forever, and the schedules skip its version as "running".

Each tick this sensor looks at the started runs of this location's jobs, finds their worker (the pid the
run's process logged when it started, on this host: the default launcher starts runs beside the code
server that evaluates this sensor; or the host and pid the command line tagged its run with), and marks
failed each run whose worker no longer exists. The failure alert sensor then reports it, and the
instance's `run_retries` (shipped dagster.yaml) retries it once. A worker on another host is not judged;
`run_monitoring.max_runtime_seconds` ends such runs eventually.
"""

from __future__ import annotations

import time

import dagster as dg

from assets.portfolio import PORTFOLIO_JOB
from assurance.governance.run_workers import Worker, this_host, worker_from_tags, worker_gone
from assurance.settings import Settings
from sensors.validation_job import ASSET_JOB, VALIDATION_JOB

WATCHED_JOBS = frozenset({VALIDATION_JOB, PORTFOLIO_JOB, ASSET_JOB})
# the code server that launched a run reports its process's death within half a second, with the exit
# signal: leave it that long so the run gets one failure, and the more telling one
GRACE_SECONDS = 2.0


def launched_worker(instance: dg.DagsterInstance, run_id: str, host: str) -> Worker | None:
    """The run worker the default launcher started, from the pid its process logged first thing."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None and str(pid.value).isdigit():
            return Worker(host, int(pid.value))
    return None


def run_worker(instance: dg.DagsterInstance, run: dg.DagsterRun, host: str) -> Worker | None:
    """The run's worker: as tagged by the command line, else as logged under the default launcher."""
    tagged = worker_from_tags(run.tags)
    if tagged is not None:
        return tagged
    if isinstance(instance.run_launcher, dg.DefaultRunLauncher):
        return launched_worker(instance, run.run_id, host)
    return None  # another launcher: its own health check (run_monitoring) is the one that knows


def dead_runs(instance: dg.DagsterInstance, host: str) -> tuple[list[tuple[dg.DagsterRun, Worker]], int]:
    """Started runs of the watched jobs whose worker is gone, and how many runs could not be judged here."""
    records = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    dead, unjudged = [], 0
    for record in records:
        run = record.dagster_run
        if run.job_name not in WATCHED_JOBS:
            continue
        worker = run_worker(instance, run, host)
        started = record.start_time or record.create_timestamp.timestamp()
        gone = worker_gone(worker, started, host) if worker is not None else None
        if gone is None:
            unjudged += 1
        elif gone:
            dead.append((run, worker))
    return dead, unjudged


def build_dead_run_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="assurance_dead_runs",
        minimum_interval_seconds=settings.sensor_interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Marks failed each started assurance run whose worker process no longer exists (killed, out of "
            "memory, machine restarted), so the failure alert reports it and run_retries retries it, instead "
            "of the version keeping a run that never ends."
        ),
    )
    def assurance_dead_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        instance, host = context.instance, this_host()
        dead, unjudged = dead_runs(instance, host)
        if dead:
            time.sleep(GRACE_SECONDS)
        failed = 0
        for run, worker in dead:
            current = instance.get_run_by_id(run.run_id)
            if current is None or current.status != dg.DagsterRunStatus.STARTED:
                continue
            message = (
                f"The run's worker ({worker.describe()}) is gone without reporting an end: it was killed "
                "(out of memory, SIGKILL) or its machine restarted."
            )
            context.log.warning(f"run {run.run_id}: {message}")
            instance.report_run_failed(current, message)
            failed += 1
        return dg.SkipReason(
            f"{failed} dead runs marked failed; {unjudged} started runs with a worker this host cannot see"
        )

    return assurance_dead_runs
