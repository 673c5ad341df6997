"""Fleet scale, through the real path: a registry with many versions, `dagster dev`, Dagster runs, evidence.

    python -m benchmarks.bench_fleet                        # 60 versions warm, 6 with the default launcher
    python -m benchmarks.bench_fleet --versions 20 --baseline-versions 0 --large-rows 100000

Three figures, against the targets of issue 12:
1. Fleet revalidation: demo-sized versions (8,000 reference and 10,000 current rows of the demo's credit
   model, each version its own logged model and Parquet data) registered in an embedded registry; `dagster
   dev` with the shipped dagster.yaml (two concurrent runs, the warm run launcher) assures every one from
   the registry sensor's requests. Versions per hour = versions / (last run's end - first run's start); CPU
   seconds per version count every process of the deployment (webserver, daemon, code server, fork server
   and run workers). The same fleet under Dagster's default launcher (one fresh process per run) is the
   baseline beside it. Each step's mean time shows where a run's time goes.
2. Registration to published evidence for one demo-sized version at a time, on a warm deployment (sensor
   every 2 s, new versions settle 3 s; both are settings, README "Run it by itself"). The fleet's
   deployment ticks every 10 s, which keeps its queue fed with less sensor work.
3. One large version (default 1,000,000 current rows, 30 features) assured by `assurance run` in a fresh
   process: wall seconds and peak resident memory.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from assurance.demo import generator as demo

TARGET_PER_HOUR, TARGET_LATENCY_S, TARGET_LARGE_S, TARGET_LARGE_MB = 3000, 20.0, 60.0, 3072
MODELS = 4
EXTRA_FEATURES = 30 - len(demo.FEATURES)
# the fleet is requested in waves of 25 runs per tick; a tick every 10 s keeps the queue fed
FLEET_SENSOR = {"ASSURANCE_SENSOR_INTERVAL": "10", "ASSURANCE_SENSOR_SETTLE_SECONDS": "3"}
LATENCY_SENSOR = {"ASSURANCE_SENSOR_INTERVAL": "2", "ASSURANCE_SENSOR_SETTLE_SECONDS": "3"}


@dataclass
class Fleet:
    """An embedded registry, its data and evidence folders, and the fitted model every version logs."""

    root: Path
    model: object = None
    versions: list[tuple[str, str]] = field(default_factory=list)

    @property
    def uri(self) -> str:
        from assurance.demo.registry_builder import embedded_tracking_uri

        return embedded_tracking_uri(self.root / "mlflow")

    def register(self, name: str, seed: int) -> str:
        from assurance.demo.registry_builder import register_version

        version = register_version(
            name, self.model, demo.generate(8_000, seed), demo.generate(10_000, seed + 1),
            label=demo.LABEL, features=demo.FEATURES, data_dir=self.root / "data", tracking_uri=self.uri,
            model_tags={"owner": "fleet-bench", "use_case": "internal credit scoring benchmark"},
        )  # fmt: skip
        self.versions.append((name, version))
        return version


def build_fleet(root: Path, versions: int) -> Fleet:
    from mlflow import MlflowClient

    (root / "mlflow").mkdir(parents=True)
    fleet = Fleet(root)
    MlflowClient(fleet.uri, fleet.uri).search_registered_models()  # one process creates the schema
    train = demo.generate(15_000, 1)
    fleet.model = demo.classifier(seed=1).fit(train[demo.FEATURES], train[demo.LABEL])
    started = time.perf_counter()
    for i in range(versions):
        fleet.register(f"fleet_credit_{i % MODELS}", 100 + 2 * i)
    print(f"  registered {versions} versions in {time.perf_counter() - started:.0f} s", flush=True)
    return fleet


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process tree: each living process's own time plus that of the children it reaped."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            t = process.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def validation_runs(home: Path) -> list:
    import dagster as dg

    from sensors.validation_job import VALIDATION_JOB

    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_run_records(dg.RunsFilter(job_name=VALIDATION_JOB)))


def step_seconds(home: Path, run_ids: list[str]) -> dict[str, list[float]]:
    """Each step's duration in each run, from the STEP_START and STEP_SUCCESS events."""
    import dagster as dg

    durations: dict[str, list[float]] = defaultdict(list)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run_id in run_ids:
            started: dict[str, float] = {}
            for entry in instance.all_logs(run_id):
                event = entry.dagster_event
                if event is None or entry.step_key is None:
                    continue
                if event.event_type_value == "STEP_START":
                    started[entry.step_key] = entry.timestamp
                elif event.event_type_value == "STEP_SUCCESS" and entry.step_key in started:
                    durations[entry.step_key].append(entry.timestamp - started[entry.step_key])
    return durations


def deployment(fleet: Fleet, warm: bool, sensor: dict[str, str]):
    """`dagster dev` over the fleet's registry with the shipped instance settings, or without the warm
    launcher for the baseline."""
    import yaml

    from tests.integration.servers import dagster_dev, free_port, wait_dagster

    home = fleet.root / ("home-warm" if warm else "home-default")
    env = {
        "MLFLOW_TRACKING_URI": fleet.uri,
        "ASSURANCE_EVIDENCE_ROOT": str(fleet.root / "evidence"),
        **sensor,
    }
    port = free_port()
    server = dagster_dev(home, port, {**env, "OMP_NUM_THREADS": "1"})
    if not warm:
        settings = yaml.safe_load((home / "dagster.yaml").read_text())
        settings.pop("run_launcher")
        (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    server.start()
    wait_dagster(server, port)
    return server, home


@dataclass
class FleetResult:
    versions: int
    wall_s: float
    cpu_s: float
    warm_up_s: float
    steps: dict[str, list[float]]
    runs_wall: list[float]

    @property
    def per_hour(self) -> float:
        return self.versions / self.wall_s * 3600

    @property
    def cpu_per_version(self) -> float:
        return self.cpu_s / self.versions


def assure_fleet(fleet: Fleet, server, home: Path) -> FleetResult:
    """Let the registry sensor request every version of a started deployment; wait for every run to succeed."""
    from assurance.evidence.store import EvidenceStore
    from tests.integration.servers import wait_for

    up = time.time()
    expected = len(fleet.versions)
    first = wait_for("the first run to start", lambda: _started(home), 600, 0.2, alive=server)
    cpu_start = tree_cpu_seconds(server.process.pid)

    def finished():
        records = validation_runs(home)
        failed = [r for r in records if r.dagster_run.status.value == "FAILURE"]
        if failed:
            raise SystemExit(f"run {failed[0].dagster_run.run_id} failed: see {home}/dagster-dev.log")
        done = [r for r in records if r.dagster_run.status.value == "SUCCESS"]
        return done if len(done) >= expected else None

    done = wait_for(f"{expected} successful runs", finished, 3600, 1.0, alive=server)
    cpu = tree_cpu_seconds(server.process.pid) - cpu_start
    wall = max(r.end_time for r in done) - min(r.start_time for r in done)
    store = EvidenceStore(str(fleet.root / "evidence"))
    unverified = [v for v in fleet.versions if (p := store.latest_run_path(*v)) is None or store.verify(p)]
    if unverified:
        raise SystemExit(f"{len(unverified)} versions lack verified evidence, e.g. {unverified[0]}")
    run_ids = [r.dagster_run.run_id for r in done]
    return FleetResult(
        versions=len(done), wall_s=wall, cpu_s=cpu, warm_up_s=first - up,
        steps=step_seconds(home, run_ids), runs_wall=[r.end_time - r.start_time for r in done],
    )  # fmt: skip


def _started(home: Path) -> float | None:
    starts = [r.start_time for r in validation_runs(home) if r.start_time]
    return time.time() if starts else None


def registration_to_evidence(fleet: Fleet, server, repeats: int) -> list[float]:
    """Seconds from registering a demo-sized version to its verified evidence, one version at a time."""
    from assurance.evidence.store import EvidenceStore
    from tests.integration.servers import wait_for

    store = EvidenceStore(str(fleet.root / "evidence"))
    seconds = []
    for i in range(repeats):
        started = time.time()
        version = fleet.register("fleet_latency", 900 + 2 * i)
        folder = wait_for(
            "published evidence", lambda v=version: store.latest_run_path("fleet_latency", v), 600, 0.2,
            alive=server,
        )  # fmt: skip
        seconds.append(time.time() - started)
        assert store.verify(folder) == []
    return seconds


def wide(rows: int, seed: int) -> pd.DataFrame:
    """The demo's credit data with noise features added up to 30 features."""
    frame = demo.generate(rows, seed)
    noise = np.random.default_rng(seed).normal(size=(rows, EXTRA_FEATURES)).astype("float32")
    return frame.join(pd.DataFrame(noise, columns=[f"signal_{i:02d}" for i in range(EXTRA_FEATURES)]))


def large_version(root: Path, rows: int) -> dict[str, float]:
    """One version with `rows` current rows and 30 features, assured by `assurance run` in a fresh process."""
    from assurance.demo.registry_builder import embedded_tracking_uri, register_version
    from benchmarks.bench_capacity import assure_once

    features = [*demo.FEATURES, *(f"signal_{i:02d}" for i in range(EXTRA_FEATURES))]
    train = wide(50_000, 1)
    model = demo.classifier(seed=1).fit(train[features], train[demo.LABEL])
    uri = embedded_tracking_uri(root)
    register_version(
        "fleet_large", model, wide(rows * 4 // 5, 2), wide(rows, 3), label=demo.LABEL, features=features,
        data_dir=root / "data", tracking_uri=uri, model_tags={"owner": "fleet-bench", "use_case": "credit"},
    )  # fmt: skip
    return {"rows": rows, **assure_once(uri, root / "evidence", model="fleet_large")}


def verdict(ok: bool) -> str:
    return "meets the target" if ok else "MISSES the target"


def print_fleet(warm: FleetResult, baseline: FleetResult | None) -> None:
    print(
        f"\n{'fleet revalidation':<28} {'versions':>8} {'wall s':>8} {'versions/h':>11} {'CPU s/version':>14}"
    )
    rows = [("warm launcher", warm)] + ([("default launcher", baseline)] if baseline else [])
    for label, r in rows:
        print(f"{label:<28} {r.versions:>8} {r.wall_s:>8.0f} {r.per_hour:>11.0f} {r.cpu_per_version:>14.1f}")
    if baseline:
        print(
            f"ratio warm / default: {warm.per_hour / baseline.per_hour:.1f}x versions per hour, "
            f"{baseline.cpu_per_version / warm.cpu_per_version:.1f}x less CPU per version"
        )
    print(
        f"target >= {TARGET_PER_HOUR:,} versions/hour: {warm.per_hour:,.0f}, {verdict(warm.per_hour >= TARGET_PER_HOUR)}"
    )
    print(f"fork server ready, first run started {warm.warm_up_s:.0f} s after the deployment came up")
    print(f"\nper-step time (mean s per run, warm{' | default' if baseline else ''}):")
    for step, seconds in sorted(warm.steps.items(), key=lambda kv: -statistics.mean(kv[1])):
        base = (
            f" | {statistics.mean(baseline.steps[step]):6.2f}" if baseline and step in baseline.steps else ""
        )
        print(f"  {step:<22} {statistics.mean(seconds):6.2f}{base}")
    in_steps = sum(statistics.mean(s) for s in warm.steps.values())
    run_wall = statistics.mean(warm.runs_wall)
    print(
        f"  {'run total':<22} {run_wall:6.2f} (steps {in_steps:.2f}, run start/end {run_wall - in_steps:.2f})"
    )


def baseline_fleet(root: Path, versions: int) -> FleetResult:
    print(f"Baseline: {versions} versions, default launcher", flush=True)
    fleet = build_fleet(root, versions)
    server, home = deployment(fleet, warm=False, sensor=FLEET_SENSOR)
    try:
        return assure_fleet(fleet, server, home)
    finally:
        server.stop()


def fleet_part(root: Path, versions: int, baseline: FleetResult | None) -> None:
    print(f"Fleet: {versions} versions, warm launcher", flush=True)
    fleet = build_fleet(root, versions)
    server, home = deployment(fleet, warm=True, sensor=FLEET_SENSOR)
    try:
        print_fleet(assure_fleet(fleet, server, home), baseline)
    finally:
        server.stop()


def latency_part(root: Path, repeats: int) -> None:
    """A warm deployment (its first version, untimed, starts the fork server), then versions one at a time."""
    print(f"\nRegistration to evidence: {repeats} versions, warm launcher", flush=True)
    fleet = build_fleet(root, 1)
    server, home = deployment(fleet, warm=True, sensor=LATENCY_SENSOR)
    try:
        assure_fleet(fleet, server, home)
        seconds = registration_to_evidence(fleet, server, repeats)
    finally:
        server.stop()
    worst = max(seconds)
    settings = ", ".join(f"{k}={v}" for k, v in LATENCY_SENSOR.items())
    print(
        f"registration -> published evidence (demo-sized; {settings}): "
        f"{', '.join(f'{s:.1f}' for s in seconds)} s; worst {worst:.1f} s, target <= "
        f"{TARGET_LATENCY_S:.0f} s: {verdict(worst <= TARGET_LATENCY_S)}"
    )


def print_large(rows: int, root: Path) -> None:
    print(f"\nLarge version: {rows:,} current rows, 30 features", flush=True)
    large = large_version(root, rows)
    ok = large["wall_s"] <= TARGET_LARGE_S and large["peak_mb"] < TARGET_LARGE_MB
    print(
        f"{large['rows']:,} rows: {large['wall_s']:.1f} s wall, {large['cpu_s']:.1f} s CPU, peak "
        f"{large['peak_mb']:,.0f} MB; target <= {TARGET_LARGE_S:.0f} s and < {TARGET_LARGE_MB:,} MB: {verdict(ok)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=60, help="demo-sized versions in the fleet (0: skip)")
    parser.add_argument(
        "--baseline-versions", type=int, default=6, help="fleet under the default launcher (0: skip)"
    )
    parser.add_argument(
        "--latency-repeats", type=int, default=3, help="versions registered one at a time (0: skip)"
    )
    parser.add_argument(
        "--large-rows", type=int, default=1_000_000, help="current rows of the large version (0: skip)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the registries, instances and evidence")
    args = parser.parse_args()
    from assurance.registry.client import mlflow_process_defaults

    mlflow_process_defaults()
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    try:
        baseline = (
            baseline_fleet(root / "baseline", args.baseline_versions) if args.baseline_versions else None
        )
        if args.versions:
            fleet_part(root / "warm", args.versions, baseline)
        if args.latency_repeats:
            latency_part(root / "latency", args.latency_repeats)
        if args.large_rows:
            print_large(args.large_rows, root / "large")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
