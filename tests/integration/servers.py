"""Real processes for end-to-end tests and the benchmark: `mlflow server` and `dagster dev`, each in its own
process group so that stopping one stops every child it started (MLflow's workers, Dagster's webserver,
daemon and code server).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "PYTHONUNBUFFERED": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0, alive=None) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` (and the process log) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if alive is not None and not alive.running:
            raise AssertionError(f"{alive.name} exited while waiting for {what}:\n{alive.log_tail()}")
        if time.monotonic() > deadline:
            tail = f"\n{alive.name} log:\n{alive.log_tail()}" if alive is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{tail}")
        time.sleep(interval)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 200 <= response.status < 300
    except OSError:
        return False


@dataclass
class Server:
    """A started process group and where its output goes."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path
    process: subprocess.Popen | None = None

    def start(self) -> Server:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is still alive after `grace` seconds."""
        if self.process is None:
            return
        pgid = self.process.pid
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            if _wait_group(self.process, pgid, wait):
                break
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (an init that never reaps must not stall teardown)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _wait_group(process: subprocess.Popen, pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()
        if not _live_members(pgid):
            return True
        time.sleep(0.2)
    return False


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DAGSTER_", "ASSURANCE_"))}
    return {**env, **QUIET_ENV, **extra}


def mlflow_server(root: Path, port: int) -> Server:
    """`mlflow server` on loopback with a sqlite backend under `root`, artifacts proxied from `root/artifacts`."""
    root.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = base_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    return Server("mlflow server", args, env, root / "mlflow-server.log", root)


def wait_mlflow(server: Server, port: int, timeout: float = 90) -> None:
    wait_for(
        "mlflow server /health", lambda: http_ok(f"http://127.0.0.1:{port}/health"), timeout, alive=server
    )


def dagster_dev(home: Path, port: int, env: dict[str, str]) -> Server:
    """`dagster dev -w workspace.yaml` from the repository, with the shipped dagster.yaml in a fresh DAGSTER_HOME."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    args = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        "workspace.yaml",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    return Server(
        "dagster dev", args, base_env(DAGSTER_HOME=str(home), **env), home / "dagster-dev.log", REPO
    )


def wait_dagster(server: Server, port: int, timeout: float = 120) -> None:
    wait_for(
        "dagster webserver", lambda: http_ok(f"http://127.0.0.1:{port}/server_info"), timeout, alive=server
    )
