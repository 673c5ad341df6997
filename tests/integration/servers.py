"""Real processes for end-to-end tests and the benchmark, each in its own process group so that stopping one
stops every child it started: `mlflow server` (and its workers), `dagster dev`, and the production shape's
parts run separately (a throw-away PostgreSQL cluster, `dagster code-server start`, `dagster-daemon run`,
`dagster-webserver`). moto's S3 server runs in process.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg

    from assurance.evidence.store import EvidenceStore
    from tests.support import Receiver

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PRODUCTION_INSTANCE = REPO / "deploy" / "dagster-postgres.yaml"
PRODUCTION_WORKSPACE = REPO / "deploy" / "workspace-grpc.yaml"
LOCATION_NAME = "model_assurance"
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
    stop_signal: int = signal.SIGTERM

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
        """Signal the whole group (SIGTERM unless set), then SIGKILL whatever is still alive after `grace` seconds."""
        if self.process is None:
            return
        pgid = self.process.pid
        for sig, wait in ((self.stop_signal, grace), (signal.SIGKILL, 10.0)):
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


def _group_stats(pgid: int) -> dict[int, list[str]]:
    """/proc/<pid>/stat fields (from the state on) of every process in the group."""
    members = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:  # a process may end between the listing and the read
            fields = Path("/proc", pid, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            members[int(pid)] = fields
    return members


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (an init that never reaps must not stall teardown)."""
    return [pid for pid, fields in _group_stats(pgid).items() if fields[0] != "Z"]


def reaped_children_cpu(server: Server) -> float:
    """CPU seconds of the finished children the server's processes have reaped (cutime + cstime): for a
    code server, the run workers it launched."""
    if server.process is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    stats = _group_stats(server.process.pid).values()
    return sum(int(fields[13]) + int(fields[14]) for fields in stats) / ticks


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


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """One query to the webserver's GraphQL endpoint, as the UI sends it; GraphQL errors raise."""
    import json

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.load(response)
    assert not body.get("errors"), body["errors"]
    return body["data"]


BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""


def launch_backfill(port: int, partitions: list[str]) -> str:
    """What the UI's "Materialize" over the chosen versions launches: a backfill of every per-version asset.

    The daemon splits it into runs of up to `assets.partitions.VERSIONS_PER_RUN` versions each.
    """
    from assurance.definitions import defs

    graph = defs.resolve_asset_graph()
    assets = [{"path": k.path} for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None]
    params = {"partitionNames": partitions, "assetSelection": assets, "title": "revalidate the fleet"}
    launched = graphql(port, BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def apt_install(package: str) -> None:
    """Install a Debian package the first time a test needs it; a test never silently skips for lack of it."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise AssertionError(f"{package} is missing and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise AssertionError(
                f"`{' '.join(cmd)}` failed, so {package} cannot be installed:\n{done.stderr[-2000:]}"
            )


# --- PostgreSQL ---------------------------------------------------------------------------------------


def postgres_bin() -> Path:
    """Debian's PostgreSQL server binaries (newest major version), installed with apt-get when missing."""

    def found() -> list[Path]:
        return sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))

    if not found():
        apt_install("postgresql")
    if not found():
        raise AssertionError("apt-get install postgresql finished but no /usr/lib/postgresql/*/bin/postgres")
    return found()[-1].parent


@dataclass(frozen=True)
class Postgres:
    """A running cluster and the DAGSTER_PG_* variables `deploy/dagster-postgres.yaml` reads to reach it."""

    port: int
    password: str
    user: str = "dagster"
    database: str = "dagster"
    host: str = "127.0.0.1"

    @property
    def env(self) -> dict[str, str]:
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.database,
        }


@contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    """A throw-away cluster: initdb in a temp dir, served on a free loopback port, removed afterwards.

    PostgreSQL refuses to run as root, so as root the cluster belongs to `nobody` (its folder is created
    outside pytest's private temp tree, which `nobody` cannot enter). Password authentication (scram) is
    on, as a real server's would be. SIGINT is PostgreSQL's fast shutdown: open sessions do not hold it up.
    """
    bin_dir = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="assurance-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
        run_as = ["runuser", "-u", "nobody", "--"]
    cluster = Postgres(port=free_port(), password=secrets.token_urlsafe(12))
    server = None
    try:
        (root / "pwfile").write_text(cluster.password)
        (root / "sockets").mkdir()
        if run_as:
            for path in (root / "pwfile", root / "sockets"):
                shutil.chown(path, "nobody")
        initdb = [
            *run_as, str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", cluster.user,
            f"--pwfile={root / 'pwfile'}", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync",
        ]  # fmt: skip
        done = subprocess.run(initdb, capture_output=True, text=True, timeout=120, env=base_env())
        assert done.returncode == 0, f"initdb failed:\n{done.stderr[-2000:]}"
        args = [
            *run_as, str(bin_dir / "postgres"), "-D", str(root / "data"), "-p", str(cluster.port),
            "-h", cluster.host, "-k", str(root / "sockets"), "-c", "fsync=off",
        ]  # fmt: skip
        server = Server(
            "postgres", args, base_env(), root / "postgres.log", root, stop_signal=signal.SIGINT
        ).start()
        client_env = base_env(PGPASSWORD=cluster.password)
        ready = [str(bin_dir / "pg_isready"), "-q", "-h", cluster.host, "-p", str(cluster.port)]
        wait_for(
            "postgres accepting connections",
            lambda: subprocess.run(ready, env=client_env).returncode == 0,
            60,
            interval=0.3,
            alive=server,
        )
        createdb = [
            str(bin_dir / "createdb"), "-h", cluster.host, "-p", str(cluster.port), "-U", cluster.user,
            cluster.database,
        ]  # fmt: skip
        done = subprocess.run(createdb, env=client_env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"createdb failed:\n{done.stderr[-2000:]}"
        yield cluster
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- S3 -------------------------------------------------------------------------------------------------


@contextmanager
def moto_s3() -> Iterator[dict[str, str]]:
    """moto's S3 server on loopback; yields the standard AWS variables that point any SDK (s3fs, boto3) at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        }
    finally:
        server.stop()


# --- Dagster as separate services -------------------------------------------------------------------------


def production_home(home: Path) -> Path:
    """A DAGSTER_HOME holding the production instance file (PostgreSQL storage, queued runs) as dagster.yaml."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PRODUCTION_INSTANCE, home / "dagster.yaml")
    return home


def code_server(home: Path, env: dict[str, str]) -> Server:
    """`dagster code-server start` for the code location; host and port come from DAGSTER_CODE_SERVER_*."""
    args = [
        str(BIN / "dagster"), "code-server", "start", "-m", "assurance.definitions", "-a", "defs",
        "--location-name", LOCATION_NAME,
    ]  # fmt: skip
    return Server("dagster code-server", args, env, home / "code-server.log", REPO)


def dagster_daemon(home: Path, env: dict[str, str]) -> Server:
    args = [str(BIN / "dagster-daemon"), "run", "-w", str(PRODUCTION_WORKSPACE)]
    return Server("dagster-daemon", args, env, home / "daemon.log", REPO)


def dagster_webserver(home: Path, port: int, env: dict[str, str]) -> Server:
    args = [
        str(BIN / "dagster-webserver"), "-w", str(PRODUCTION_WORKSPACE), "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    return Server("dagster-webserver", args, env, home / "webserver.log", REPO)


def grpc_ready(host: str, port: int) -> bool:
    check = [str(BIN / "dagster"), "api", "grpc-health-check", "-h", host, "-p", str(port)]
    return subprocess.run(check, capture_output=True, timeout=60).returncode == 0


# --- dagster dev over an embedded registry ---------------------------------------------------------------


@dataclass
class Deployment:
    """`dagster dev` with the shipped dagster.yaml over an embedded (sqlite) MLflow registry, all under `root`."""

    root: Path
    port: int
    env: dict[str, str]
    hook: Receiver | None = None
    dagster: Server | None = None

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def tracking_uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]

    @property
    def evidence(self) -> EvidenceStore:
        from assurance.evidence.store import EvidenceStore

        return EvidenceStore(self.env["ASSURANCE_EVIDENCE_ROOT"])

    def start(self) -> None:
        self.dagster = dagster_dev(self.home, self.port, self.env).start()
        wait_dagster(self.dagster, self.port)

    def crash(self) -> None:
        """Every process of the stack (webserver, daemon, code server, run workers) killed at once."""
        os.killpg(self.dagster.process.pid, signal.SIGKILL)
        self.dagster.process.wait()
        self.dagster.stop()

    def instance(self) -> dg.DagsterInstance:
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.home))


@contextmanager
def embedded_deployment(root: Path, sensor_interval: int, **env: str) -> Iterator[Deployment]:
    """A started `Deployment` whose sensors tick every `sensor_interval` seconds and run new versions at
    once; stopped by process group afterwards."""
    from mlflow import MlflowClient

    from assurance.demo.registry_builder import embedded_tracking_uri

    env = {
        "MLFLOW_TRACKING_URI": embedded_tracking_uri(root / "mlflow"),
        "ASSURANCE_EVIDENCE_ROOT": str(root / "evidence"),
        "ASSURANCE_SENSOR_INTERVAL": str(sensor_interval),
        "ASSURANCE_SENSOR_SETTLE_SECONDS": "0",
        **env,
    }
    (root / "mlflow").mkdir()
    uri = env["MLFLOW_TRACKING_URI"]
    MlflowClient(uri, uri).search_registered_models()  # one process creates the schema, not two at once
    deployment = Deployment(root, free_port(), env)
    try:
        deployment.start()
        yield deployment
    finally:
        if deployment.dagster is not None:
            deployment.dagster.stop()


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid the run's process logged when it started ("Started process for run (pid: N).")."""
    import dagster as dg

    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        pid = entry.dagster_event.engine_event_data.metadata.get("pid")
        if pid is not None:
            return int(pid.value)
    return None


def sensor_run(instance: dg.DagsterInstance, model: str, version: str) -> dg.DagsterRun | None:
    """The registry sensor's run of a new version, once requested."""
    import dagster as dg

    tags = {"dagster/partition": f"{model}/{version}", "assurance/trigger": "new_version"}
    runs = instance.get_runs(dg.RunsFilter(tags=tags))
    return runs[0] if runs else None


def run_mid_way(deployment: Deployment, model: str, version: str, bound: float) -> tuple[dg.DagsterRun, int]:
    """The sensor's run of a new version once it has finished two steps (still STARTED), and its worker's pid."""
    import dagster as dg

    instance = deployment.instance()
    run = wait_for(
        f"a started run of version {version}", lambda: sensor_run(instance, model, version), 180,
        alive=deployment.dagster,
    )  # fmt: skip
    wait_for(
        "its first two steps",
        lambda: len(instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)) >= 2,
        bound, interval=0.3, alive=deployment.dagster,
    )  # fmt: skip
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    return run, worker_pid(instance, run.run_id)
