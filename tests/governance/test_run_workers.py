"""Telling a dead run worker from a live one, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from assurance.governance.run_workers import (
    Worker,
    current_worker,
    this_host,
    worker_from_tags,
    worker_gone,
    worker_tags,
)


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_live_worker_is_not_gone_and_a_killed_one_is():
    proc = sleeper()
    worker = Worker(this_host(), proc.pid)
    started = time.time()
    try:
        assert worker_gone(worker, started, this_host()) is False
        os.kill(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
        assert worker_gone(worker, started, this_host()) is True  # a zombie nobody reaped yet is dead
        proc.wait()
        assert worker_gone(worker, started, this_host()) is True
    finally:
        proc.kill()
        proc.wait()


def test_a_reused_pid_is_not_the_run_worker():
    """A process with the worker's id that started after the run began is someone else."""
    proc = sleeper()
    try:
        assert worker_gone(Worker(this_host(), proc.pid), time.time() - 60, this_host()) is True
    finally:
        proc.kill()
        proc.wait()


def test_a_worker_on_another_host_is_not_judged():
    assert worker_gone(Worker("elsewhere.invalid", os.getpid()), time.time(), this_host()) is None


def test_the_command_line_tags_its_own_process():
    tags = worker_tags(current_worker())
    assert worker_from_tags(tags) == Worker(this_host(), os.getpid())
    assert worker_from_tags({}) is None and worker_from_tags({**tags, "assurance/worker_pid": "x"}) is None
