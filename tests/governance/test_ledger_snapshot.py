"""Ledger snapshots: a run reads one snapshot and the runs after it, and gets exactly the full ledger."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from assurance.domain.findings import Finding, findings_frame
from assurance.evidence.history import run_folders
from assurance.evidence.store import EvidenceStore, new_run_id, parquet_bytes
from assurance.governance import ledger_snapshot
from assurance.governance.ledger import (
    accept,
    build_ledger,
    finding_spans,
    findings_history,
    merge_spans,
)
from assurance.policy.model import Policy
from tests.support import make_record

T0 = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = Policy()
CRITICAL = Finding("change_control", "change_control.unapproved", "approval", "critical", "No approval.")
HIGH = Finding("performance", "performance.floor", "roc_auc", "high", "AUC below the floor.")
MEDIUM = Finding("drift", "drift.feature", "amount", "medium", "Amount drifted.", observed=0.3, threshold=0.1)
LOW = Finding("documentation", "documentation.missing", "datasheet.md", "low", "No datasheet.")


def publish(store, findings, at, version="1", started=None, with_findings=True, model="credit"):
    """One published run of `model`/`version` finishing at `at` (started at `started`, default `at`)."""
    record = make_record(name=model, version=version, model_tags={"owner": "ana"})
    frame = findings_frame(findings, record, POLICY, now=at)
    run_id = new_run_id(started or at)
    files = {"findings.parquet": parquet_bytes(frame)} if with_findings else {"report.md": b"partial"}
    store.publish_run(model, version, run_id, files, {"finished_at": at.isoformat()})
    return run_id


def full_ledger(store, tmp_path, now, **scope):
    """The ledger read from every run: the same evidence copied without any snapshot."""
    copy = tmp_path / f"full-{datetime.now(UTC):%H%M%S%f}"
    shutil.copytree(store.base, copy, ignore=shutil.ignore_patterns(ledger_snapshot.FOLDER))
    return build_ledger(EvidenceStore(str(copy)), POLICY, now=now, **scope)


def snapshots(store, version="1", model="credit"):
    """File names in the version's snapshot folder."""
    path = f"{store.base}/{store.version_path(model, version)}/{ledger_snapshot.FOLDER}"
    return (
        sorted(p.rsplit("/", 1)[-1] for p in store.fs.ls(path, detail=False)) if store.fs.exists(path) else []
    )


@pytest.fixture
def store(tmp_path):
    return EvidenceStore(str(tmp_path / "evidence"))


def test_snapshot_and_tail_equal_the_full_ledger_through_closings_reopenings_and_acceptances(store, tmp_path):
    day = timedelta(days=1)
    steps = [
        ("1", [CRITICAL, MEDIUM, LOW], {}),
        ("1", [CRITICAL, MEDIUM], {}),  # LOW closes
        ("2", [HIGH, MEDIUM], {}),
        ("1", [MEDIUM, LOW], {}),  # CRITICAL closes, LOW reopens
        ("1", [], {"with_findings": False}),  # a partial run closes nothing
        ("2", [HIGH], {}),
        ("1", [CRITICAL, MEDIUM, LOW], {}),  # CRITICAL reopens
        ("1", [MEDIUM], {"started": -3}),  # started before the previous runs, published after them
        ("2", [HIGH, MEDIUM], {}),
        ("1", [LOW, LOW], {}),  # the same finding twice in one run
    ]
    statuses = set()
    for i, (version, findings, options) in enumerate(steps):
        at = T0 + i * day
        started = at + options.pop("started", 0) * day
        publish(store, findings, at, version=version, started=started, **options)
        now = at + timedelta(hours=1)
        if i == 3:
            fid = findings_frame([MEDIUM], make_record(), POLICY)["finding_id"].item()
            accept(
                store, fid, "manual review", (now + 3 * day).date().isoformat(), "bo", version="1", now=now
            )
        for scope in ({}, {"model": "credit", "version": version}):
            incremental = build_ledger(store, POLICY, now=now, **scope)
            pd.testing.assert_frame_equal(incremental, full_ledger(store, tmp_path, now, **scope))
            statuses |= set(incremental["status"])
        assert snapshots(store, version)
    final = build_ledger(store, POLICY, now=T0 + 60 * day)
    assert statuses == {"open", "closed", "accepted"} and bool(final["overdue"].any())
    assert final["runs_seen"].max() >= 5 and final["closed_by"].notna().any()


def test_a_run_reads_the_snapshot_and_only_the_runs_after_it(store):
    first = publish(store, [CRITICAL], T0)
    publish(store, [CRITICAL], T0 + timedelta(days=1))
    build_ledger(store, POLICY, model="credit", version="1")
    # were the covered runs read again, the first would no longer report CRITICAL
    store.fs.rm(f"{store.base}/{store.version_path('credit', '1')}/{first}/findings.parquet")
    latest = publish(store, [CRITICAL], T0 + timedelta(days=2))
    (row,) = build_ledger(store, POLICY, now=T0, model="credit", version="1").itertuples()
    assert (row.first_run, row.last_run, row.runs_seen) == (first, latest, 3)
    assert snapshots(store)[-1].startswith(latest)


@pytest.mark.parametrize("damage", ["bytes changed", "not parquet", "covers a run no longer published"])
def test_a_damaged_or_stale_snapshot_falls_back_to_reading_every_run(store, tmp_path, damage):
    first = publish(store, [CRITICAL, MEDIUM], T0)
    publish(store, [MEDIUM], T0 + timedelta(days=1))
    build_ledger(store, POLICY)
    folder = f"{store.base}/{store.version_path('credit', '1')}"
    (name,) = snapshots(store)
    path = f"{folder}/{ledger_snapshot.FOLDER}/{name}"
    if damage == "bytes changed":
        data = bytearray(store.fs.cat_file(path))
        data[len(data) // 2] ^= 0xFF
        store.fs.pipe_file(path, bytes(data))
    elif damage == "not parquet":
        junk = b"not a snapshot"
        store.fs.rm(path)
        digest = ledger_snapshot.sha256_bytes(junk)[: ledger_snapshot.DIGEST_HEX]
        store.fs.pipe_file(f"{folder}/{ledger_snapshot.FOLDER}/{name.split('.')[0]}.{digest}.parquet", junk)
    else:
        store.fs.rm(f"{folder}/{first}", recursive=True)
    now = T0 + timedelta(days=2)
    ledger = build_ledger(store, POLICY, now=now)
    pd.testing.assert_frame_equal(ledger, full_ledger(store, tmp_path, now))
    assert len(ledger) == (1 if damage.startswith("covers") else 2)
    fresh = ledger_snapshot.read_latest(store, store.version_path("credit", "1"), [])
    assert fresh is not None and set(fresh.runs["run_id"]) == set(store.runs("credit", "1"))


def test_snapshots_stay_out_of_run_listings_and_only_the_newest_are_kept(store):
    for i in range(5):
        publish(store, [MEDIUM], T0 + timedelta(days=i))
        build_ledger(store, POLICY)
    names = snapshots(store)
    assert len(names) == ledger_snapshot.KEEP and not any(n.startswith(".") for n in names)
    assert len(store.runs("credit", "1")) == len(run_folders(store)) == 5
    assert all(store.verify(r.path) == [] for r in run_folders(store))


def test_a_store_that_refuses_the_snapshot_still_gives_the_ledger(store, tmp_path):
    publish(store, [MEDIUM], T0)
    # a file where the snapshot folder belongs: every snapshot write fails
    store.fs.pipe_file(f"{store.base}/{store.version_path('credit', '1')}/{ledger_snapshot.FOLDER}", b"x")
    now = T0 + timedelta(days=1)
    pd.testing.assert_frame_equal(build_ledger(store, POLICY, now=now), full_ledger(store, tmp_path, now))


@pytest.mark.parametrize("seed", range(5))
def test_spans_of_any_split_of_the_runs_merge_into_the_spans_of_all(store, seed):
    rng = random.Random(seed)
    pool = [CRITICAL, HIGH, MEDIUM, LOW]
    for i in range(12):
        at = T0 + timedelta(hours=rng.choice([i, i, i - 1]))  # some runs finish at the same time
        publish(
            store, rng.sample(pool, rng.randint(0, 3)), at, started=at - timedelta(hours=rng.randint(0, 5))
        )
    folders = run_folders(store)
    everything = finding_spans(findings_history(store, folders))
    rng.shuffle(folders)
    cut = rng.randint(1, len(folders) - 1)
    parts = [finding_spans(findings_history(store, part)) for part in (folders[:cut], folders[cut:])]
    merged = merge_spans(pd.concat([p for p in parts if len(p)], ignore_index=True))
    key = ["finding_id", "version"]
    pd.testing.assert_frame_equal(
        merged.sort_values(key).reset_index(drop=True), everything.sort_values(key).reset_index(drop=True)
    )
