"""Kill -9 anywhere leaves no half-written evidence: `assurance run` killed with SIGKILL at seeded random moments.

One published run comes first, timed phase by phase (its progress lines and its publication). Then six runs
of the same version are killed: five at a random moment between two of those phases, one during
publication (once its staging folder appears). After each kill every run folder a reader can see, through
the store's listing, the run history and the raw file system, must be whole and match its manifest, and no
published run may be lost. A final run then publishes normally and sweeps what killed runs left aside.

The command's main runs in processes forked from a forkserver that imported the heavy libraries once, so
each run spends its time on the work that writes (Dagster's run, the analyses, publication) and not on
imports. Runs are recorded in a Dagster home, as a deployment's are: every run a kill left STARTED must be
seen dead by the dead-run sensor's check.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from assurance.evidence.history import run_folders
from assurance.evidence.store import STAGING, EvidenceStore
from assurance.governance.run_workers import this_host
from sensors.dead_runs import dead_runs
from tests.integration.servers import REPO

pytestmark = pytest.mark.integration
SEED = 20260513
KILLS = 6
PRELOAD = [
    "assurance.cli.main",
    "assurance.definitions",
    "mlflow",
    "evidently",
    "great_expectations",
    "shap",
    "sklearn.ensemble",
    "matplotlib.pyplot",
]
RUN_BOUND_SECONDS = 300
POLL_SECONDS = 0.005


def run_cli(argv: list[str], env: dict[str, str], log: str) -> None:
    """The `assurance` command in this process, its output to `log` (the forkserver's target)."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(env)
    from assurance.cli.main import main

    sys.exit(main(argv))


@dataclass
class Target:
    root: Path
    argv: list[str]
    env: dict[str, str]
    version_dir: Path
    progress_marker: bytes
    ctx: multiprocessing.context.BaseContext

    def start(self, log: Path) -> multiprocessing.Process:
        process = self.ctx.Process(target=run_cli, args=(self.argv, self.env, str(log)))
        process.start()
        return process


def progress_lines(target: Target, log: Path) -> int:
    """Progress lines the run printed so far (`  MODEL/VERSION: ...`, one per step that finished)."""
    return log.read_bytes().count(target.progress_marker) if log.exists() else 0


def staging(version_dir: Path) -> list[str]:
    return (
        [p.name for p in version_dir.iterdir() if p.name.startswith(STAGING)] if version_dir.exists() else []
    )


def entries(version_dir: Path) -> set[str]:
    return {p.name for p in version_dir.iterdir()} if version_dir.exists() else set()


def timed_run(target: Target, log: Path) -> tuple[list[float], float]:
    """A run to completion: when each progress line before publication appeared, and how long publication took
    (from its staging folder appearing to its run folder appearing)."""
    before = entries(target.version_dir)
    process = target.start(log)
    start, lines = time.monotonic(), []
    staged_at = published_at = None
    while process.is_alive() and published_at is None and time.monotonic() - start < RUN_BOUND_SECONDS:
        now, new = time.monotonic(), entries(target.version_dir) - before
        lines += [now - start] * (progress_lines(target, log) - len(lines))
        if new and staged_at is None:
            staged_at = now
        if any(not name.startswith(".") for name in new):
            published_at = now
        time.sleep(POLL_SECONDS)
    process.join(RUN_BOUND_SECONDS)
    assert process.exitcode == 0, log.read_text(errors="replace")[-3000:]
    assert staged_at is not None and published_at is not None, "the run's publication was not seen"
    return [t for t in lines if t < staged_at - start], max(published_at - staged_at, POLL_SECONDS)


def kill_when(target: Target, log: Path, after_line: int | None, delay: float) -> str:
    """Start a run, wait for its progress line `after_line` (None: for a new staging folder, i.e. publication),
    then SIGKILL it `delay` seconds later. Says whether it was killed or had ended first."""
    before = set(staging(target.version_dir))  # folders earlier kills left do not count as this run's
    process = target.start(log)
    start = time.monotonic()

    def ready() -> bool:
        if after_line is None:
            return bool(set(staging(target.version_dir)) - before)
        return progress_lines(target, log) >= after_line

    while process.is_alive() and not ready() and time.monotonic() - start < RUN_BOUND_SECONDS:
        time.sleep(POLL_SECONDS)
    time.sleep(delay)
    outcome = "killed" if process.is_alive() else f"ended first (exit {process.exitcode})"
    process.kill()
    process.join(10)
    return outcome


def assert_readers_see_whole_runs(target: Target, model: str, version: str, published: set[str]) -> set[str]:
    """Every run a reader can find is whole and verifies; no published run went missing. Returns the runs."""
    store = EvidenceStore(str(target.root))
    listed = set(store.runs(model, version))
    assert published <= listed, f"published runs lost: {published - listed}"
    assert {f.run_id for f in run_folders(store)} == listed, "the history and the listing disagree"
    for run_id in listed:
        assert store.verify(f"{store.version_path(model, version)}/{run_id}") == [], run_id
    raw = {p.name for p in target.version_dir.iterdir()} if target.version_dir.exists() else set()
    visible = {name for name in raw if not name.startswith(".")}
    assert visible == listed, f"folders on disk a reader would take for runs: {visible - listed}"
    return listed


def test_kill_9_at_any_moment_leaves_only_whole_evidence(small_registry, tmp_path):
    rng = random.Random(SEED)
    evidence, home = tmp_path / "evidence", tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")  # a deployment's instance settings
    model, version = small_registry.model, small_registry.healthy
    store = EvidenceStore(str(evidence))
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    target = Target(
        evidence,
        ["run", "--tracking-uri", small_registry.tracking_uri, "--model", model, "--version", version,
         "--evidence", str(evidence)],
        {"DAGSTER_HOME": str(home)},
        evidence / store.version_path(model, version),
        f"{model}/{version}: ".encode(),
        ctx,
    )  # fmt: skip

    lines, publication = timed_run(target, tmp_path / "run-0.log")
    published = assert_readers_see_whole_runs(target, model, version, set())
    assert len(published) == 1

    plans: list[tuple[int | None, float]] = [(None, rng.uniform(0, publication))]
    anchors = [0.0, *lines]
    for _ in range(KILLS - 1):
        i = rng.randrange(len(anchors) - 1)  # after progress line i, a random share of the gap to the next
        plans.append((i, rng.uniform(0, anchors[i + 1] - anchors[i])))
    rng.shuffle(plans)
    outcomes = []
    for k, (line, delay) in enumerate(plans):
        moment = "publication" if line is None else f"after line {line}"
        outcomes.append((moment, round(delay, 3), kill_when(target, tmp_path / f"kill-{k}.log", line, delay)))
        published = assert_readers_see_whole_runs(target, model, version, published)
    print("\nkills:", outcomes)
    assert all(o == "killed" for *_, o in outcomes), outcomes

    with dg.DagsterInstance.from_config(str(home)) as instance:
        stuck = {r.run_id for r in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))}
        assert stuck, "no kill left a started run behind"
        dead, unjudged = dead_runs(instance, this_host())
        assert {run.run_id for run, _ in dead} == stuck and unjudged == 0

    leftovers = staging(target.version_dir)
    two_hours_ago = time.time() - 2 * 3600  # past the store's staleness limit, as if a later day's run
    for name in leftovers:
        os.utime(target.version_dir / name, (two_hours_ago, two_hours_ago))
    timed_run(target, tmp_path / "final.log")
    final = assert_readers_see_whole_runs(target, model, version, published)
    assert len(final) == len(published) + 1
    assert staging(target.version_dir) == [], "staging folders of killed runs were not swept"
    print(f"published runs: {len(final)}; staging folders left by kills and swept: {len(leftovers)}")
