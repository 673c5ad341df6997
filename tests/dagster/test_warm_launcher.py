"""The warm run launcher's parts that need no server (the launcher at work, in `dagster dev`, is in
tests/integration/test_warm_runs.py): what the fork server preloads, how a worker's exit is described,
which runs it executes itself, and the rehearsal the fork server runs before forking workers."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
import uuid

import dagster as dg
import pytest
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

from assurance.demo.rehearsal import MODEL, register_small_version, rehearse
from resources.warm_launcher import WarmRunLauncher, exit_description, preload_modules, source_fingerprint

JOB = "assure_model_version"
LOCATION = "model_assurance"


def test_preload_lists_the_libraries_analyses_import_inside_functions():
    modules = preload_modules()
    for heavy in ("shap", "great_expectations", "evidently", "mlflow", "fpdf", "matplotlib"):
        assert heavy in modules
    assert any(m.startswith("sklearn.") for m in modules)
    assert "assurance.definitions" in modules  # the code location itself, built once before forking


def test_preload_never_lists_a_main_module():
    """A `__main__` imported in the fork server would run a command line there."""
    modules = preload_modules()
    assert modules == sorted(set(modules))
    assert not [m for m in modules if m.split(".")[-1] == "__main__"]


def test_the_source_fingerprint_changes_when_a_module_is_edited_and_only_then(tmp_path, monkeypatch):
    package = tmp_path / "warm_fingerprint_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "analysis.py"
    module.write_text("THRESHOLD = 0.1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = source_fingerprint(["warm_fingerprint_pkg"])
    assert source_fingerprint(["warm_fingerprint_pkg"]) == before
    module.write_text("THRESHOLD = 0.2\n")
    os.utime(module, ns=(time.time_ns(), module.stat().st_mtime_ns + 1_000_000))  # a coarse clock still moves
    assert source_fingerprint(["warm_fingerprint_pkg"]) != before


def test_exit_description_names_the_signal_or_the_code():
    assert exit_description(-signal.SIGKILL) == "was killed by SIGKILL"
    assert exit_description(-signal.SIGTERM) == "was killed by SIGTERM"
    assert exit_description(0) == "exited with code 0"
    assert exit_description(3) == "exited with code 3"


def run_from(location_origin, executable: str = sys.executable) -> dg.DagsterRun:
    """A run of the validation job whose origins are built the way Dagster builds them for a launch."""
    pointer = ModuleCodePointer("assurance.definitions", "defs", working_directory=".")
    return dg.DagsterRun(
        job_name=JOB,
        remote_job_origin=RemoteJobOrigin(RemoteRepositoryOrigin(location_origin, "__repository__"), JOB),
        job_code_origin=JobPythonOrigin(JOB, RepositoryPythonOrigin(executable, pointer)),
    )


def dev_origin() -> GrpcServerCodeLocationOrigin:
    """What `dagster dev` (and the daemon loading workspace.yaml) gives a run: a code server it started
    itself, reached on a local socket."""
    return GrpcServerCodeLocationOrigin(
        "localhost", socket="/tmp/dagster-code-server.sock", location_name=LOCATION
    )


def test_a_location_dagster_starts_itself_runs_here():
    assert WarmRunLauncher.runs_here(run_from(dev_origin()))


@pytest.mark.parametrize("host", ["localhost", "code-server.internal", "10.0.0.7"])
def test_a_code_server_started_on_its_own_goes_to_the_default_launcher(host):
    """deploy/workspace-grpc.yaml: a server on a port, whose environment (the settings) the daemon cannot see."""
    assert not WarmRunLauncher.runs_here(
        run_from(GrpcServerCodeLocationOrigin(host, 4000, location_name=LOCATION))
    )


def test_a_location_with_another_python_goes_to_the_default_launcher():
    assert not WarmRunLauncher.runs_here(run_from(dev_origin(), executable="/opt/other-venv/bin/python"))


def test_a_run_without_origins_goes_to_the_default_launcher():
    """Runs created outside a workspace (execute_in_process, a bare add_run) carry no origin to fork from."""
    assert not WarmRunLauncher.runs_here(dg.DagsterRun(job_name=JOB))


def test_the_rehearsal_version_is_onboarded_with_its_label_and_data(tmp_path):
    from mlflow import MlflowClient

    uri = register_small_version(tmp_path)
    version = MlflowClient(uri, uri).get_model_version(MODEL, "1")
    assert version.status == "READY"
    assert {"assurance.label", "assurance.reference", "assurance.current"} <= set(version.tags)


def test_rehearsal_assures_the_small_version_without_a_warning(caplog, monkeypatch):
    """A warning means a failed step or a thread left running, which a forked worker would not have.
    tqdm's monitor thread is off, as resources/warm_worker.py turns it off before rehearsing; libraries'
    own deprecation warnings (py.warnings) are theirs."""
    from tqdm import tqdm

    monkeypatch.setattr(tqdm, "monitor_interval", 0)
    with caplog.at_level(logging.WARNING):
        assert rehearse() is True
    assert [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name != "py.warnings"
    ] == []


@pytest.fixture
def launcher():
    """The instance's own warm launcher, as dagster.yaml configures it."""
    overrides = {"run_launcher": {"module": "resources.warm_launcher", "class": "WarmRunLauncher"}}
    with dg.instance_for_test(overrides=overrides) as instance:
        assert isinstance(instance.run_launcher, WarmRunLauncher)
        yield instance.run_launcher


def ended_worker(how: str) -> multiprocessing.process.BaseProcess:
    """A real process that exited with code 3 or was killed with SIGKILL."""
    context = multiprocessing.get_context("fork")
    worker = (
        context.Process(target=os._exit, args=(3,))
        if how == "exit"
        else context.Process(target=time.sleep, args=(60,))
    )
    worker.start()
    if how == "kill":
        os.kill(worker.pid, signal.SIGKILL)
    worker.join(10)
    return worker


@pytest.mark.parametrize(
    ("status", "how", "ended", "said"),
    [
        (dg.DagsterRunStatus.STARTED, "kill", dg.DagsterRunStatus.FAILURE, "was killed by SIGKILL"),
        (dg.DagsterRunStatus.STARTED, "exit", dg.DagsterRunStatus.FAILURE, "exited with code 3"),
        # a worker that died while its run was being canceled: canceled, since the daemon retries failed runs
        (dg.DagsterRunStatus.CANCELING, "kill", dg.DagsterRunStatus.CANCELED, "was killed by SIGKILL"),
    ],
)
def test_a_run_whose_worker_exited_without_ending_it_is_ended(launcher, status, how, ended, said):
    instance = launcher._instance
    run = instance.add_run(dg.DagsterRun(job_name=JOB, run_id=str(uuid.uuid4()), status=status))
    worker = ended_worker(how)
    launcher._end_unfinished(run.run_id, worker)
    assert instance.get_run_by_id(run.run_id).status == ended
    messages = [e.message for e in instance.all_logs(run.run_id) if e.is_dagster_event]
    assert f"Run worker (pid {worker.pid}) {said} before the run ended." in messages


def test_a_finished_run_is_left_as_it_ended(launcher):
    instance = launcher._instance
    run = instance.add_run(
        dg.DagsterRun(job_name=JOB, run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.SUCCESS)
    )
    launcher._end_unfinished(run.run_id, ended_worker("kill"))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS
    assert instance.all_logs(run.run_id) == []
