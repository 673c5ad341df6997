"""Registry sensor tick time against large registries (registration to evidence: `bench_fleet`).

    python -m benchmarks.bench_sensor             # tick times at 1,250 / 2,500 / 5,000 versions
    python -m benchmarks.bench_sensor --http      # also: the 5,000-version tick through `mlflow server`

The registries are sqlite MLflow registries of 25 versions per model with onboarding tags and a
production alias, created through `MlflowClient` without logging models (the sensor never loads them);
they are cached under benchmarks/.cache (building 5,000 versions takes a few minutes once). Each tick
is the real sensor function against a persistent Dagster instance: one paginated snapshot, the diff
against the stored state, the run requests, the changed state entries and the cursor. Beside the tick
times it reports the sensor state stored per tick, before (the whole state as the cursor) and after (a
small cursor plus the changed entries of the instance's key-value store).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
VERSIONS_PER_MODEL = 25
SIZES = (1_250, 2_500, 5_000)
CHANGED = 50
REPEATS = 3


def registry_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def build_registries() -> dict[int, Path]:
    """Cached registries of each size, built once (each size extends the previous one)."""
    from mlflow import MlflowClient

    CACHE.mkdir(exist_ok=True)
    wanted = {n: CACHE / f"registry_{n}.db" for n in SIZES}
    if all(p.exists() for p in wanted.values()):
        return wanted
    work = CACHE / "building.db"
    work.unlink(missing_ok=True)
    uri = registry_uri(work)
    client = MlflowClient(uri, uri)
    started = time.perf_counter()
    for m in range(max(SIZES) // VERSIONS_PER_MODEL):
        name = f"bench_model_{m:04d}"
        client.create_registered_model(
            name, tags={"owner": f"team-{m % 17}", "use_case": "internal forecasting", "risk_tier": "medium"}
        )
        for v in range(1, VERSIONS_PER_MODEL + 1):
            tags = {"assurance.current": f"s3://bench/{name}/{v}/current.parquet", "assurance.label": "y"}
            client.create_model_version(name, source=f"s3://bench/{name}/{v}/model", tags=tags)
        client.set_registered_model_alias(name, "production", str(VERSIONS_PER_MODEL))
        count = (m + 1) * VERSIONS_PER_MODEL
        if count in wanted:
            shutil.copy(work, wanted[count])
            print(f"  built {count:,} versions in {time.perf_counter() - started:.0f} s", flush=True)
    work.unlink(missing_ok=True)
    return wanted


def timed_tick(instance, uri: str, cursor: str | None):
    import dagster as dg

    from assurance.settings import Settings
    from resources import RegistryResource
    from sensors.registry_sensor import build_registry_sensor

    # the changed tick requests all CHANGED versions; the versions here are seconds old
    registry_sensor = build_registry_sensor(Settings(sensor_max_runs=CHANGED, sensor_settle_seconds=0))
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"registry": RegistryResource(tracking_uri=uri)}
    )
    start = time.perf_counter()
    result = registry_sensor(context)
    return time.perf_counter() - start, result


def measure(db: Path) -> dict[str, float]:
    """Median tick seconds with nothing changed and with CHANGED versions re-tagged, plus the cursor size."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "mlflow.db"
        shutil.copy(db, copy)
        return measure_uri(registry_uri(copy))


def measure_over_http(db: Path) -> dict[str, float]:
    """The same ticks against `mlflow server` serving a copy of the registry over HTTP on loopback."""
    from tests.integration.servers import free_port, mlflow_server, wait_mlflow

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copy(db, root / "mlflow.db")
        port = free_port()
        server = mlflow_server(root, port).start()
        try:
            wait_mlflow(server, port)
            return measure_uri(f"http://127.0.0.1:{port}")
        finally:
            server.stop()


def retagged(snapshot: list, count: int) -> list:
    """The snapshot with `count` versions, spread over the registry, pointed at a new data window."""
    from dataclasses import replace

    out = list(snapshot)
    for i in range(0, len(out), len(out) // count)[:count]:
        out[i] = replace(out[i], tags={**out[i].tags, "assurance.current": "s3://bench/new-window.parquet"})
    return out


def state_per_tick(instance, snapshot: list) -> dict[str, float]:
    """Bytes stored per tick and seconds spent on the state, before (the whole state as the cursor, decoded
    and re-encoded every tick) and after (a small cursor plus the key-value entries that changed)."""
    from assurance.registry.sensor_state import SensorStateStore
    from assurance.registry.watch import decode_state, encode_state, plan_tick

    whole = encode_state(plan_tick(snapshot, {}, len(snapshot)).state)
    store = SensorStateStore(instance.daemon_cursor_storage, "bench/state")
    cursor = store.save(decode_state(whole), store.load(None)).cursor
    out: dict[str, float] = {"before_bytes": len(whole)}
    for label, count in (("unchanged", 0), ("one", 1), ("changed", CHANGED)):
        refs = retagged(snapshot, count) if count else snapshot
        before, after = [], []
        for _ in range(REPEATS):
            start = time.perf_counter()
            encode_state(plan_tick(refs, decode_state(whole), CHANGED).state)
            before.append(time.perf_counter() - start)
            start = time.perf_counter()
            loaded = store.load(cursor)
            saved = store.save(plan_tick(refs, loaded.state, CHANGED).state, loaded)
            after.append(time.perf_counter() - start)
        out[f"{label}_state_s_before"] = statistics.median(before)
        out[f"{label}_state_s_after"] = statistics.median(after)
        out[f"{label}_bytes_after"] = len(saved.cursor) + saved.written_bytes
    return out


def measure_uri(uri: str) -> dict[str, float]:
    import dagster as dg
    from mlflow import MlflowClient

    from assurance.registry.client import Registry
    from assurance.registry.watch import encode_state, plan_tick

    with dg.instance_for_test() as instance:
        registry = Registry(uri)
        start = time.perf_counter()
        snapshot = registry.snapshot()
        snapshot_s = time.perf_counter() - start
        state = state_per_tick(instance, snapshot)
        # a cursor of the whole-state format: the first tick moves it into the instance's key-value store
        cursor = timed_tick(instance, uri, encode_state(plan_tick(snapshot, {}, len(snapshot)).state))[
            1
        ].cursor
        timed_tick(instance, uri, cursor)  # warm the MLflow client and SQLAlchemy
        unchanged = []
        for _ in range(REPEATS):
            seconds, result = timed_tick(instance, uri, cursor)
            assert not result.run_requests and result.cursor == cursor
            unchanged.append(seconds)
        client = MlflowClient(uri, uri)
        for ref in snapshot[:: len(snapshot) // CHANGED][:CHANGED]:
            client.set_model_version_tag(
                ref.name, ref.version, "assurance.current", "s3://bench/new-window.parquet"
            )
        changed = []
        for _ in range(REPEATS):
            seconds, result = timed_tick(instance, uri, cursor)
            assert len(result.run_requests) == CHANGED, len(result.run_requests)
            changed.append(seconds)
        return {
            "versions": len(snapshot),
            "snapshot_s": snapshot_s,
            "unchanged_s": statistics.median(unchanged),
            "changed_s": statistics.median(changed),
            "cursor_bytes": len(cursor),
            **state,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--http", action="store_true", help="also time the 5,000-version tick over mlflow server"
    )
    args = parser.parse_args()
    from assurance.registry.client import mlflow_process_defaults

    mlflow_process_defaults()
    registries = build_registries()
    print(
        f"{'versions':>9} {'snapshot s':>11} {'tick, unchanged s':>18} {'tick, 50 changed s':>19} {'cursor bytes':>13}"
    )
    rows = []
    for size in SIZES:
        rows.append(measure(registries[size]))
        row = rows[-1]
        print(
            f"{row['versions']:>9,} {row['snapshot_s']:>11.2f} {row['unchanged_s']:>18.2f} "
            f"{row['changed_s']:>19.2f} {row['cursor_bytes']:>13,}",
            flush=True,
        )
    print(
        "\nsensor state stored per tick, bytes (before: the whole state as the cursor, every tick; after: "
        "the cursor plus the key-value entries that changed), and seconds spent on it (before -> after)"
    )
    print(
        f"{'versions':>9} {'before, any tick':>17} {'after, unchanged':>17} {'after, 1 changed':>17} "
        f"{'after, 50 changed':>18} {'state s, unchanged':>19} {'state s, 50 changed':>20}"
    )
    for row in rows:
        print(
            f"{row['versions']:>9,} {row['before_bytes']:>17,} {row['unchanged_bytes_after']:>17,} "
            f"{row['one_bytes_after']:>17,} {row['changed_bytes_after']:>18,} "
            f"{row['unchanged_state_s_before']:>8.3f} -> {row['unchanged_state_s_after']:.3f} "
            f"{row['changed_state_s_before']:>9.3f} -> {row['changed_state_s_after']:.3f}",
            flush=True,
        )
    if args.http:
        row = measure_over_http(registries[max(SIZES)])
        print(
            f"over HTTP: {row['versions']:,} versions, snapshot {row['snapshot_s']:.2f} s, tick unchanged "
            f"{row['unchanged_s']:.2f} s, 50 changed {row['changed_s']:.2f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
