"""One real stack for every integration test: `mlflow server` + `dagster dev` with the registry sensor on.

Both servers start once per session and are stopped by process group at the end, whatever happened.
The webhook receiver on 127.0.0.1 stands in for a chat or incident tool, so alerts are checked end to end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

from tests.integration.servers import (
    Server,
    apt_install,
    dagster_dev,
    free_port,
    mlflow_server,
    wait_dagster,
    wait_for,
    wait_mlflow,
)
from tests.support import Receiver, webhook_receiver

SENSOR_INTERVAL = 5
CHROMIUM = Path("/usr/bin/chromium")
MODEL = "e2e_churn"


@dataclass
class Stack:
    root: Path
    mlflow: Server
    mlflow_port: int
    dagster: Server
    dagster_port: int
    hook: Receiver
    registered_at: dict[str, float] = field(default_factory=dict)
    _instance: dg.DagsterInstance | None = None

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def backend_uri(self) -> str:
        """The server's own sqlite store: lets a test change the registry while the server is down."""
        return f"sqlite:///{self.root / 'mlflow' / 'mlflow.db'}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.dagster_port}"

    @property
    def evidence(self) -> Path:
        return self.root / "evidence"

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def instance(self) -> dg.DagsterInstance:
        """The instance `dagster dev` writes to, read from its DAGSTER_HOME."""
        if self._instance is None:
            self._instance = dg.DagsterInstance.from_config(str(self.home))
        return self._instance

    def restart_mlflow(self) -> None:
        self.mlflow.start()
        wait_mlflow(self.mlflow, self.mlflow_port)


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("e2e")
    mlflow_port, dagster_port = free_port(), free_port()
    with webhook_receiver() as hook:
        mlflow = mlflow_server(root / "mlflow", mlflow_port).start()
        dagster = dagster_dev(
            root / "dagster_home",
            dagster_port,
            {
                "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
                "ASSURANCE_EVIDENCE_ROOT": str(root / "evidence"),
                "ASSURANCE_SENSOR_INTERVAL": str(SENSOR_INTERVAL),
                "ASSURANCE_SENSOR_SETTLE_SECONDS": "5",
                "ASSURANCE_ALERT_WEBHOOK": hook.url,
                "ASSURANCE_DAGSTER_URL": f"http://127.0.0.1:{dagster_port}",
            },
        ).start()
        stack = Stack(root, mlflow, mlflow_port, dagster, dagster_port, hook)
        try:
            wait_mlflow(mlflow, mlflow_port)
            wait_dagster(dagster, dagster_port)
            wait_for(
                "the registry sensor's first tick", lambda: sensor_ticks(stack.instance), 120, alive=dagster
            )
            yield stack
        finally:
            dagster.stop()
            mlflow.stop()
            if stack._instance is not None:
                stack._instance.dispose()


def sensor_state(instance: dg.DagsterInstance, name: str = "registry_sensor"):
    from dagster._core.scheduler.instigation import InstigatorType

    states = [
        s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR) if s.name == name
    ]
    return states[0] if states else None


def sensor_ticks(
    instance: dg.DagsterInstance, name: str = "registry_sensor", after: float | None = None
) -> list:
    """Ticks of a sensor, newest first (optionally only those started after a timestamp)."""
    state = sensor_state(instance, name)
    if state is None:
        return []
    return list(instance.get_ticks(state.instigator_origin_id, state.selector_id, after=after, limit=50))


def partition_runs(instance: dg.DagsterInstance, key: str, **tags: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(tags={"dagster/partition": key, **tags})))


def wait_run(stack: Stack, key: str, timeout: float, **tags: str) -> dg.DagsterRun:
    """The first run of `key` (with `tags`) to finish; fails fast with the run's status if it did not succeed."""

    def finished():
        runs = [r for r in partition_runs(stack.instance, key, **tags) if r.is_finished]
        return runs[0] if runs else None

    run = wait_for(f"a finished run of {key} with {tags}", finished, timeout, interval=2, alive=stack.dagster)
    assert run.status == dg.DagsterRunStatus.SUCCESS, f"run {run.run_id} of {key} ended {run.status}"
    return run


@pytest.fixture(scope="session")
def registered(stack) -> Stack:
    """Versions 1 (behind `production`) and 2 of a model registered through the MLflow client over HTTP."""
    from assurance.demo.registry_builder import register_version
    from tests.conftest import FEATURES, LABEL, fit_model, make_frame

    reference = make_frame(1200, 11)
    model = fit_model(reference)
    common = {
        "label": LABEL,
        "features": FEATURES,
        "data_dir": stack.root / "data",
        "tracking_uri": stack.tracking_uri,
        "model_tags": {"owner": "retention-team", "use_case": "internal churn outreach"},
        "documents": {
            "model_card.md": "# Churn\n\nPredicts churn for outreach campaigns, trained on 2025 data."
        },
    }
    for version, aliases in (("1", ["production"]), ("2", [])):
        got = register_version(
            MODEL, model, reference, make_frame(1200, 12 + int(version)), aliases=aliases, **common
        )
        assert got == version
        stack.registered_at[version] = time.time()
    return stack


@pytest.fixture(scope="session")
def validated(registered) -> dict[str, dg.DagsterRun]:
    """Both versions validated by sensor-started runs, evidence published."""
    return {
        v: wait_run(registered, f"{MODEL}/{v}", 420, **{"assurance/trigger": "new_version"})
        for v in ("1", "2")
    }


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed with apt-get the first time; a browser test never silently skips."""
    if not CHROMIUM.exists():
        apt_install("chromium")
    if not CHROMIUM.exists():
        pytest.fail(f"apt-get install chromium finished but {CHROMIUM} is still missing")
    return CHROMIUM
