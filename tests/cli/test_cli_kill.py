"""Kill -9 anywhere leaves no half-written evidence: `assurance run` killed with SIGKILL at seeded random moments.

One published run comes first, timed phase by phase (its progress lines and its publication). Then six runs
of the same version are killed: five at a random moment between two of those phases (from the start to the
first evidence file written), one at a random step of publication (a file of its staging folder about to be
written, or the folder about to be renamed into place). After each kill every run folder a reader can see, through
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
import signal
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


def run_cli(argv: list[str], env: dict[str, str], log: str, die_at: tuple[str, int] | None) -> None:
    """The `assurance` command in this process, its output to `log` (the forkserver's target).

    With `die_at` (folder, k), the process SIGKILLs itself as publication is about to take its k-th step in
    that folder (opening a file for writing, or renaming): a window of milliseconds that no outside timer
    hits reliably on a busy machine. An audit hook sees each step before it happens.
    """
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(env)
    if die_at is not None:
        sys.addaudithook(dying_at(*die_at))
    from assurance.cli.main import main

    sys.exit(main(argv))


def dying_at(folder: str, step: int):
    steps = 0

    def hook(event: str, args: tuple) -> None:
        nonlocal steps
        writing = event == "open" and args[1] is not None and args[1][0] in "wxa"
        if (writing or event == "os.rename") and str(args[0]).startswith(folder):
            steps += 1
            if steps == step:
                os.kill(os.getpid(), signal.SIGKILL)

    return hook


@dataclass
class Target:
    root: Path
    argv: list[str]
    env: dict[str, str]
    version_dir: Path
    progress_marker: bytes
    ctx: multiprocessing.context.BaseContext

    def start(self, log: Path, die_at_publication_step: int | None = None) -> multiprocessing.Process:
        die_at = (
            None if die_at_publication_step is None else (f"{self.version_dir}/", die_at_publication_step)
        )
        args = (self.argv, self.env, str(log), die_at)
        process = self.ctx.Process(target=run_cli, args=args)
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


@dataclass
class Timeline:
    """One run's phases, in seconds from its start: its progress lines, then publication."""

    lines: list[float]  # when each progress line printed before publication appeared
    publishing: float  # when the first evidence file was written
    publication_steps: int  # files written (the manifest last), then the rename into place


def timed_run(target: Target, log: Path) -> Timeline:
    """A run to completion, timed (publication from the mtimes of the files it wrote)."""
    before = entries(target.version_dir)
    process = target.start(log)
    start, lines = time.time(), []
    while process.is_alive() and time.time() - start < RUN_BOUND_SECONDS:
        lines += [time.time() - start] * (progress_lines(target, log) - len(lines))
        time.sleep(POLL_SECONDS)
    process.join(RUN_BOUND_SECONDS)
    assert process.exitcode == 0, log.read_text(errors="replace")[-3000:]
    (run,) = {name for name in entries(target.version_dir) - before if not name.startswith(".")}
    folder = target.version_dir / run
    files = [p for p in folder.rglob("*") if p.is_file()]
    first = min(p.stat().st_mtime for p in files)
    return Timeline([t for t in lines if t < first - start], first - start, len(files) + 1)


def kill_at(target: Target, log: Path, after_line: int, delay: float) -> str:
    """Start a run, SIGKILL it `delay` seconds after its progress line `after_line`. Says whether it was killed."""
    process = target.start(log)
    start = time.monotonic()
    while process.is_alive() and progress_lines(target, log) < after_line:
        assert time.monotonic() - start < RUN_BOUND_SECONDS, log.read_text(errors="replace")[-3000:]
        time.sleep(POLL_SECONDS)
    time.sleep(delay)
    outcome = "killed" if process.is_alive() else f"ended first (exit {process.exitcode})"
    process.kill()
    process.join(10)
    return outcome


def kill_in_publication(target: Target, log: Path, step: int) -> str:
    """A run that SIGKILLs itself at publication step `step` (see `run_cli`)."""
    process = target.start(log, die_at_publication_step=step)
    process.join(RUN_BOUND_SECONDS)
    return "killed" if process.exitcode == -signal.SIGKILL else f"ended first (exit {process.exitcode})"


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

    timeline = timed_run(target, tmp_path / "run-0.log")
    published = assert_readers_see_whole_runs(target, model, version, set())
    assert len(published) == 1

    anchors = [0.0, *timeline.lines, timeline.publishing]
    plans = [("in publication", rng.randint(1, timeline.publication_steps))]
    for _ in range(KILLS - 1):
        i = rng.randrange(len(anchors) - 1)  # after progress line i, a random share of the gap to the next
        plans.append((i, rng.uniform(0, anchors[i + 1] - anchors[i])))
    rng.shuffle(plans)
    outcomes = []
    for k, (where, at) in enumerate(plans):
        log = tmp_path / f"kill-{k}.log"
        if where == "in publication":
            outcome = kill_in_publication(target, log, at)
            outcomes.append((f"publication step {at} of {timeline.publication_steps}", outcome))
        else:
            outcomes.append((f"{at:.3f} s after line {where}", kill_at(target, log, where, at)))
        published = assert_readers_see_whole_runs(target, model, version, published)
    print("\nkills:", outcomes)
    assert all(outcome == "killed" for _, outcome in outcomes), outcomes

    with dg.DagsterInstance.from_config(str(home)) as instance:
        stuck = {r.run_id for r in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))}
        assert stuck, "no kill left a started run behind"
        dead, unjudged = dead_runs(instance, this_host())
        assert {run.run_id for run, _ in dead} == stuck and unjudged == 0

    leftovers = staging(target.version_dir)
    assert leftovers, "the kill in publication left no staging folder"
    two_hours_ago = time.time() - 2 * 3600  # past the store's staleness limit, as if a later day's run
    for name in leftovers:
        os.utime(target.version_dir / name, (two_hours_ago, two_hours_ago))
    timed_run(target, tmp_path / "final.log")
    final = assert_readers_see_whole_runs(target, model, version, published)
    assert len(final) == len(published) + 1
    assert staging(target.version_dir) == [], "staging folders of killed runs were not swept"
    print(f"published runs: {len(final)}; staging folders left by kills and swept: {len(leftovers)}")
