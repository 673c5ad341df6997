"""Is the process that runs an assurance still there? Dead runs must not look like running ones forever.

A run whose process is killed (the out-of-memory killer, SIGKILL, a machine restart) never reports its end.
Where the process that launched it survives, Dagster's code server notices within a second; when that
process died too (the whole code location went down, or the run was the `assurance` command's own process)
nothing does, and the version keeps a run that never ends. A worker is identified by its host (and pid
namespace) and process id; a process id can be reused, so a process that started after the run did is not
the run's worker.
Plain Python (psutil).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import psutil

HOST_TAG = "assurance/worker_host"
PID_TAG = "assurance/worker_pid"
# process start times come from boot time plus clock ticks: allow for their rounding
START_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class Worker:
    """The process that executes a run, on a named host."""

    host: str
    pid: int

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"


def this_host() -> str:
    """Where a pid means one process: the host name, plus the pid namespace on Linux (containers on one host
    may share a name, never a namespace)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/pidns:{namespace}"


def current_worker() -> Worker:
    return Worker(this_host(), os.getpid())


def worker_tags(worker: Worker) -> dict[str, str]:
    """Run tags that name the worker, for runs no launcher records (the command line executes in its own process)."""
    return {HOST_TAG: worker.host, PID_TAG: str(worker.pid)}


def worker_from_tags(tags: dict[str, str]) -> Worker | None:
    host, pid = tags.get(HOST_TAG), tags.get(PID_TAG)
    if not host or not pid or not pid.isdigit():
        return None
    return Worker(host, int(pid))


def worker_gone(worker: Worker, run_started_at: float, host: str) -> bool | None:
    """Whether the run's worker no longer exists; None when it runs on another host, which this one cannot see.

    The worker is gone when no process has its id, when that process is a zombie (dead, not yet reaped), or
    when it started after the run did (the id was reused).
    """
    if worker.host != host:
        return None
    try:
        process = psutil.Process(worker.pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        return process.create_time() > run_started_at + START_SLACK_SECONDS
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:  # another user's process exists: alive as far as this host can tell
        return False
