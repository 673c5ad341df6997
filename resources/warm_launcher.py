"""A run launcher whose run workers start warm: imports and library set-up are paid once per machine.

Dagster's default launcher has the code server start every run in a freshly spawned Python process, which
imports the code location and, at its first step, pandas, scikit-learn, MLflow, Evidently, Great
Expectations and SHAP: 15-20 s of a demo-sized version's run on two cores, where the assurance itself takes
a few seconds. This launcher starts each run in a process forked from a server that has imported all of
that once (Python's `forkserver`), so a run worker is ready in milliseconds. A run is still one run of one
partition in its own process, with the same steps, events, checks, lineage and evidence as under the
default launcher: only the process start changes. Batched partition runs would amortize the same cost, but
Dagster 1.13 records a range run's check results without their partition, which would lose the
per-version check status the UI shows.

Only locations Dagster starts itself (`dagster dev`, or the daemon loading workspace.yaml) run warm: they
share the daemon's environment, which holds the settings. Runs of a code server started on its own (the
production shape in deploy/, whose environment the daemon cannot see) or with another Python go to the
default launcher, and so do runs launched after the code location's source changed (edited under
`dagster dev`, or deployed): the fork server holds the code as it was when it started, and a run must
execute the code its plan was made from. Restarting the daemon warms the new code up. A fork server that
cannot start sends every run to the default launcher too, with an engine event saying why.

Each worker is tagged with its host and pid, so the dead-run sensor judges it; when a worker exits without
ending its run (killed, out of memory) the launcher fails the run within a second, as the code server does
for its own workers (or cancels it, when it was being canceled: a failed run would be retried).
"""

from __future__ import annotations

import ast
import hashlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._cli.api import _execute_run_command_body
from dagster._core.launcher import LaunchRunContext
from dagster._serdes import ConfigurableClassData
from dagster._utils.interrupts import capture_interrupts

from assurance.governance.run_workers import Worker, this_host, worker_from_tags, worker_tags

PACKAGES = ("assurance", "assets", "resources", "sensors")
WARM_UP_MODULE = "resources.warm_worker"
LAUNCHER_TAG = "assurance/launcher"
COLD_BECAUSE_BROKEN = (
    "The warm fork server could not start ({}): this run starts in its own process, as under Dagster's "
    "default launcher. Restart the daemon to start runs warm again."
)
COLD_BECAUSE_CHANGED = (
    "The code location's source changed since the warm fork server imported it: this run starts in its own "
    "process, as under Dagster's default launcher. Restart the daemon to start runs warm again."
)


def preload_modules(packages: Iterable[str] = PACKAGES) -> list[str]:
    """Every module the code location imports, at module level or inside a function.

    Heavy libraries are imported inside the functions that use them, so importing the code location alone
    would leave them to each run; reading the imports from the source keeps this list from going stale.
    """
    names: set[str] = set()
    for path in _sources(packages):
        names.update(_imports(path))
    return sorted(n for n in names if not n.endswith("__main__"))


def source_fingerprint(packages: Iterable[str] = PACKAGES) -> str:
    """Each source file's path, size and modification time, hashed: it changes when the code is edited or
    deployed, which tells a fork server holding the code as it was from one holding the code as it is."""
    digest = hashlib.sha256()
    for path in sorted(_sources(packages)):
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _sources(packages: Iterable[str]) -> Iterator[Path]:
    for package in packages:
        spec = __import__(package).__spec__
        for folder in spec.submodule_search_locations or []:
            yield from Path(folder).rglob("*.py")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def execute_run(run_id: str, instance_ref: Any) -> None:
    """The run worker: what `dagster api execute_run` does, in a process forked from the warm server."""
    with capture_interrupts(), dg.DagsterInstance.from_ref(instance_ref) as instance:
        _execute_run_command_body(run_id, instance, lambda _event: None, set_exit_code_on_failure=False)


def exit_description(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class WarmRunLauncher(dg.DefaultRunLauncher):
    """Launches each run in a worker forked from a process that imported the code location and its libraries."""

    def __init__(self, inst_data: ConfigurableClassData | None = None):
        super().__init__(inst_data=inst_data)
        self._context: multiprocessing.context.ForkServerContext | None = None
        self._fingerprint: str | None = None  # of the source the fork server imported
        self._broken: str | None = None  # why the fork server could not start, once it failed
        self._workers: dict[str, multiprocessing.process.BaseProcess] = {}
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        if not self.runs_here(run):
            super().launch_run(context)
            return
        if self._broken:
            self._launch_cold(context, COLD_BECAUSE_BROKEN.format(self._broken))
            return
        if self._context is not None and source_fingerprint() != self._fingerprint:
            self._launch_cold(context, COLD_BECAUSE_CHANGED)
            return
        worker = self._fork_context().Process(
            target=execute_run, args=(run.run_id, self._instance.get_ref()), name=f"dagster-run-{run.run_id}"
        )
        try:
            worker.start()
        except (OSError, EOFError) as exc:  # the fork server died starting (an import it preloads raised)
            self._broken = f"{type(exc).__name__}: {exc}"
            self._launch_cold(context, COLD_BECAUSE_BROKEN.format(self._broken))
            return
        self._instance.add_run_tags(
            run.run_id, {**worker_tags(Worker(this_host(), worker.pid)), LAUNCHER_TAG: "warm"}
        )
        with self._lock:
            self._workers[run.run_id] = worker
        self._ensure_watcher()

    def _launch_cold(self, context: LaunchRunContext, message: str) -> None:
        """The run in its own process, as under Dagster's default launcher, with an engine event saying why."""
        self._instance.report_engine_event(message, context.dagster_run, cls=self.__class__)
        super().launch_run(context)

    @staticmethod
    def runs_here(run: dg.DagsterRun) -> bool:
        """Whether this process can execute the run as the location's own server would: the location is one
        Dagster started on this machine (served on a local socket), with this Python. Such a server inherits
        the environment of the process that started it, which holds the settings; a code server started on
        its own (deploy/workspace-grpc.yaml) may have settings the daemon cannot see."""
        origin, code = run.remote_job_origin, run.job_code_origin
        if origin is None or code is None or code.executable_path != sys.executable:
            return False
        location = origin.repository_origin.code_location_origin
        return getattr(location, "socket", None) is not None

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished or run.tags.get(LAUNCHER_TAG) != "warm":
            return super().terminate(run_id)
        worker = worker_from_tags(run.tags)
        if worker is None or worker.host != this_host():
            return False
        self._instance.report_run_canceling(run)
        try:
            os.kill(worker.pid, signal.SIGINT)  # the worker's interrupt handler stops between steps
        except ProcessLookupError:
            return False
        return True

    def _fork_context(self) -> multiprocessing.context.ForkServerContext:
        if self._context is None:
            context = multiprocessing.get_context("forkserver")
            self._fingerprint = source_fingerprint()
            context.set_forkserver_preload([*preload_modules(), WARM_UP_MODULE])
            self._context = context
        return self._context

    def _ensure_watcher(self) -> None:
        with self._lock:
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._watch, name="warm-run-workers", daemon=True)
                self._watcher.start()

    def _watch(self) -> None:
        """Reap workers as they exit; end the run of one that exited without ending it."""
        while True:
            with self._lock:
                workers = dict(self._workers)
            if not workers:
                with self._lock:
                    if not self._workers:
                        self._watcher = None
                        return
                continue
            multiprocessing.connection.wait([w.sentinel for w in workers.values()], timeout=1.0)
            for run_id, worker in workers.items():
                if worker.exitcode is None:
                    continue
                with self._lock:
                    del self._workers[run_id]
                self._end_unfinished(run_id, worker)
                worker.close()

    def _end_unfinished(self, run_id: str, worker: multiprocessing.process.BaseProcess) -> None:
        """A run being canceled is canceled however its worker ended: failed, the daemon would retry it."""
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return
        message = f"Run worker (pid {worker.pid}) {exit_description(worker.exitcode)} before the run ended."
        self._instance.report_engine_event(message, run, cls=self.__class__)
        if run.status == dg.DagsterRunStatus.CANCELING:
            self._instance.report_run_canceled(run, message)
        else:
            self._instance.report_run_failed(run, message)
