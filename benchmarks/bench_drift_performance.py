"""Benchmark: drift + performance of one version, ours vs the naive way (Evidently's DataDriftPreset).

    python -m benchmarks.bench_drift_performance                  # 1,000,000 current x 100,000 reference
    python -m benchmarks.bench_drift_performance --rows 20000     # a quick smoke run

Each variant runs in its own fresh process, so its peak memory is its own. Every child imports
its libraries first, then builds the same seeded frames (30 features, mixed numeric and
categorical, a few columns with planted drift, a binary label and model scores), then times the
work, with the peak resident memory (Linux VmHWM) reset after the frames are built. "ours" is `assurance.drift.run` + `assurance.performance.run` with the default policy, run
twice: cold, then with the reference profiles cached. "naive" is Evidently's default
DataDriftPreset on the full frames (drift only). The per-column drift verdicts of both are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

LABEL = "label"
CATEGORY_SIZES = (2, 3, 4, 5, 8, 12, 20, 30, 50)


def current_rss_mb() -> float:
    """Resident memory now (Linux /proc), in MB."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory since the last `reset_peak` (Linux VmHWM), in MB."""
    with open("/proc/self/status") as handle:
        line = next(row for row in handle if row.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def reset_peak() -> None:
    """Start peak tracking afresh, so building the frames does not count as the work's peak."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def feature_names(features: int) -> tuple[list[str], list[str]]:
    """Two thirds numeric, one third categorical."""
    categorical = features // 3
    return [f"num_{i}" for i in range(features - categorical)], [f"cat_{i}" for i in range(categorical)]


def make_frame(rows: int, features: int, seed: int, drifted: bool) -> pd.DataFrame:
    """Seeded rows built column by column (so building them peaks at one column of temporaries).

    The distribution's parameters come from a fixed generator, the rows from `seed`. With `drifted`,
    three numeric columns shift by 0.3 sd, one widens by 50%, and two categorical columns move
    share between their top categories; everything else keeps its distribution.
    """
    numeric, categorical = feature_names(features)
    params, rng = np.random.default_rng(0), np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i, name in enumerate(numeric):
        centre, scale = params.normal(0, 10), params.uniform(0.5, 20)
        shape = i % 4
        if shape == 0:
            values = rng.normal(centre, scale, rows)
        elif shape == 1:
            values = rng.lognormal(0, 0.7, rows) * scale
        elif shape == 2:
            values = rng.uniform(0, scale, rows)
        else:
            values = rng.poisson(10 + scale, rows).astype(float)
        if drifted and i in (0, 1, 2):
            values = values + 0.3 * values.std()
        if drifted and i == 3:
            values = values.mean() + 1.5 * (values - values.mean())
        columns[name] = values
    for i, name in enumerate(categorical):
        size = CATEGORY_SIZES[i % len(CATEGORY_SIZES)]
        probs = params.dirichlet(np.full(size, 2.0))
        if drifted and i in (1, 2):
            top = np.argsort(probs)[::-1]
            moved = min(0.15, probs[top[1]] * 0.9)
            probs[top[0]], probs[top[1]] = probs[top[0]] + moved, probs[top[1]] - moved
        levels = np.array([f"{name}_v{j}" for j in range(size)], dtype=object)
        columns[name] = levels[rng.choice(size, rows, p=probs)]
    frame = pd.DataFrame(columns)
    first_level = frame[categorical[0]] == f"{categorical[0]}_v0"
    logit = 0.08 * (frame[numeric[0]] - frame[numeric[0]].mean()) + 0.5 * first_level - 0.2
    truth = 1 / (1 + np.exp(-logit.to_numpy()))
    frame[LABEL] = (rng.random(rows) < truth).astype(int)
    frame["__score"] = np.clip(truth + rng.normal(0, 0.05, rows), 0.001, 0.999)
    return frame


def build(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Reference and current data as a source gives them, and the model's outputs on each."""
    frames = [
        make_frame(args.reference_rows, args.features, args.seed, drifted=False),
        make_frame(args.rows, args.features, args.seed + 1, drifted=True),
    ]
    outputs = []
    for frame in frames:
        score = frame.pop("__score")
        outputs.append(pd.DataFrame({"prediction": (score >= 0.5).astype(int), "score": score}))
    return frames[0], frames[1], outputs[0], outputs[1]


def run_ours(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    ref_scores: pd.DataFrame,
    cur_scores: pd.DataFrame,
    features: list[str],
) -> dict:
    from assurance.checks import drift, performance
    from assurance.domain.values import Dataset, Inputs, Predictions, Scores, VersionRecord
    from assurance.policy.model import Policy

    record = VersionRecord(
        name="bench", version="1", tags={}, model_tags={}, version_tags={}, aliases=[], status="READY",
        source="", run_id=None, model_id=None, created_ms=None, updated_ms=None,
        signature_inputs=[{"name": c, "type": "double"} for c in features],
    )  # fmt: skip
    inputs = Inputs(
        record=record,
        policy=Policy(),
        reference=Dataset(
            "reference", "bench://reference", frame=reference, fingerprint="bench-reference", label=LABEL
        ),
        current=Dataset("current", "bench://current", frame=current, label=LABEL),
        predictions=Predictions("binary", Scores(ref_scores), Scores(cur_scores), positive=1, classes=[0, 1]),
    )
    timings = {}
    for attempt in ("cold", "warm"):
        start = time.perf_counter()
        section = drift.run(inputs)
        middle = time.perf_counter()
        perf = performance.run(inputs)
        timings[attempt] = {"drift": middle - start, "performance": time.perf_counter() - middle}
        if attempt == "cold":
            peak = peak_rss_mb()
    table = section.tables["drift"]
    features_ = table[table["role"] == "feature"]
    return {
        "seconds": sum(timings["cold"].values()),
        "warm_seconds": sum(timings["warm"].values()),
        "parts": timings,
        "peak_mb": peak,
        "verdicts": dict(zip(features_["column"], features_["drifted"].astype(bool), strict=True)),
        "engine": str(features_["engine"].iloc[0]),
        "findings": len(section.findings) + len(perf.findings),
    }


def run_naive(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    ref_scores: pd.DataFrame,
    cur_scores: pd.DataFrame,
    features: list[str],
) -> dict:
    """Evidently's default drift preset on the full feature frames (it has no use for the scores)."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    start = time.perf_counter()
    snapshot = (
        Report([DataDriftPreset()], include_tests=True).run(current[features], reference[features]).dict()
    )
    seconds = time.perf_counter() - start
    columns = {m["id"]: m["config"]["column"] for m in snapshot["metrics"] if "column" in m["config"]}
    verdicts = {columns[t["metric_config"]["metric_id"]]: t["status"] == "FAIL" for t in snapshot["tests"]
                if t["metric_config"]["metric_id"] in columns}  # fmt: skip
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "verdicts": verdicts}


def preload(variant: str) -> None:
    """Import what the variant may need before measuring, so neither timing includes import time.

    Ours imports Evidently too: on small data the default policy runs drift through Evidently.
    """
    import evidently.metrics  # noqa: F401
    import evidently.presets  # noqa: F401

    if variant == "ours":
        import matplotlib.pyplot  # noqa: F401
        import scipy.spatial  # noqa: F401
        import sklearn.isotonic  # noqa: F401

        import assurance.checks.drift  # noqa: F401
        import assurance.checks.performance  # noqa: F401


def release_freed_memory() -> None:
    """Hand memory freed while building the frames back to the OS (glibc keeps it otherwise), so the
    resident size after building is the frames themselves and the work cannot hide in reused heap."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def frames_size_mb(*frames: pd.DataFrame) -> float:
    """Bytes the frames hold: column buffers plus each distinct string object once (rows share them)."""
    size = 0
    for frame in frames:
        size += frame.memory_usage(deep=False, index=True).sum()
        for column in frame.select_dtypes(include="object"):
            size += sum(sys.getsizeof(v) for v in pd.unique(frame[column]))
    return size / 2**20


def child(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    preload(args.variant)
    imports = time.perf_counter() - started
    release_freed_memory()
    before = current_rss_mb()
    reference, current, ref_scores, cur_scores = build(args)
    release_freed_memory()
    resident_mb = current_rss_mb() - before
    reset_peak()
    numeric, categorical = feature_names(args.features)
    runner = run_naive if args.variant == "naive" else run_ours
    result = runner(reference, current, ref_scores, cur_scores, numeric + categorical)
    result.update(
        imports=imports,
        baseline_mb=before,
        resident_mb=resident_mb,
        frames_mb=frames_size_mb(reference, current, ref_scores, cur_scores),
        deep_mb=sum(f.memory_usage(deep=True).sum() for f in (reference, current, ref_scores, cur_scores))
        / 2**20,
    )
    print(json.dumps(result))


def spawn(variant: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "benchmarks.bench_drift_performance", "--variant", variant]
    command += ["--rows", str(args.rows), "--reference-rows", str(args.reference_rows)]
    command += ["--features", str(args.features), "--seed", str(args.seed)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(args: argparse.Namespace, ours: dict, naive: dict) -> None:
    numeric, categorical = feature_names(args.features)
    frames = ours["frames_mb"]
    print(
        f"Drift + performance: {args.rows:,} current x {args.reference_rows:,} reference rows, {args.features} "
        f"features ({len(numeric)} numeric, {len(categorical)} categorical), label and scores"
    )
    print(
        f"Frames in memory: {frames:,.0f} MB (buffers + distinct strings; {ours['resident_mb']:,.0f} MB resident "
        f"after building; pandas' deep size, which counts every string again, {ours['deep_mb']:,.0f} MB)"
    )
    print(f"Imports (not timed): ours {ours['imports']:.1f} s, naive {naive['imports']:.1f} s\n")
    print(
        "Peak RSS: the process's peak while working; data + work: that peak minus the RSS before the frames"
    )
    print("were built (interpreter and libraries); x frames: data + work over the frames' size.\n")
    print(f"{'variant':52} {'wall s':>8} {'peak RSS MB':>12} {'data+work MB':>13} {'x frames':>9}")
    rows = [
        (f"ours, cold (drift {ours['parts']['cold']['drift']:.1f} s + performance "
         f"{ours['parts']['cold']['performance']:.1f} s; {ours['engine']})", ours["seconds"], ours),
        ("ours, warm (reference profiles cached)", ours["warm_seconds"], None),
        ("naive: Evidently DataDriftPreset, full frames, drift only", naive["seconds"], naive),
    ]  # fmt: skip
    for name, seconds, run in rows:
        if run is None:
            print(f"{name:52} {seconds:8.2f}")
            continue
        above = run["peak_mb"] - run["baseline_mb"]
        print(f"{name:52} {seconds:8.2f} {run['peak_mb']:12,.0f} {above:13,.0f} {above / frames:9.2f}")
    print(f"\nSpeed-up, naive / ours cold: {naive['seconds'] / ours['seconds']:.1f}x (target >= 5x)")
    print(f"Speed-up, naive / ours warm: {naive['seconds'] / ours['warm_seconds']:.1f}x")
    agree = [c for c in ours["verdicts"] if naive["verdicts"].get(c) == ours["verdicts"][c]]
    both = sorted(c for c in ours["verdicts"] if ours["verdicts"][c])
    print(
        f"Drift verdicts agree on {len(agree)} of {len(ours['verdicts'])} columns; drifted: {', '.join(both) or 'none'}"
    )
    differ = sorted(set(ours["verdicts"]) - set(agree))
    for column in differ:
        print(f"DISAGREE on {column}: ours {ours['verdicts'][column]}, naive {naive['verdicts'].get(column)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="current rows")
    parser.add_argument("--reference-rows", type=int, default=None, help="reference rows (default rows / 10)")
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variant", choices=["ours", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.reference_rows = args.reference_rows or max(args.rows // 10, 1000)
    if args.variant:
        child(args)
        return
    ours = spawn("ours", args)
    naive = spawn("naive", args)
    report(args, ours, naive)


if __name__ == "__main__":
    main()
