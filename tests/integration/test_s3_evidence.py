"""The evidence store and its readers on an object store: moto's S3 server on loopback, reached through s3fs.

The endpoint comes from `AWS_ENDPOINT_URL_S3`, the variable every AWS SDK honours, so
`EvidenceStore("s3://bucket/prefix")` runs unchanged, as a platform team would configure it. "Another
process" is a plain boto3 client writing objects, which is what a second Dagster run does to this one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest

from assurance.domain.errors import DataError, EvidenceError
from assurance.evidence.store import MANIFEST, EvidenceStore, manifest_entries, parquet_bytes

pytestmark = pytest.mark.integration

MODEL = "churn/odd name"
FRAME = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})


@dataclass(frozen=True)
class S3:
    endpoint: str
    client: object

    def bucket(self) -> str:
        """A fresh bucket, so tests never see each other's objects."""
        name = f"evidence-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    import boto3
    import s3fs

    from tests.integration.servers import moto_s3

    with moto_s3() as aws, pytest.MonkeyPatch.context() as env:
        for name, value in aws.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            yield S3(aws["AWS_ENDPOINT_URL_S3"], boto3.client("s3"))
        finally:
            s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def root(s3) -> str:
    return f"s3://{s3.bucket()}/assurance/evidence"


def publish_elsewhere(s3: S3, store: EvidenceStore, run_id: str, files: dict[str, bytes]) -> str:
    """Publish a run as another process would (files first, manifest last), bypassing this process's client."""
    bucket, _, prefix = store.base.partition("/")
    rel = f"{store.version_path(MODEL, '1')}/{run_id}"
    for name, body in files.items():
        s3.put(bucket, f"{prefix}/{rel}/{name}", body)
    manifest = {"model": MODEL, "files": manifest_entries(files)}
    s3.put(bucket, f"{prefix}/{rel}/{MANIFEST}", json.dumps(manifest).encode())
    return rel


def test_published_run_is_listed_verified_and_read(root):
    store = EvidenceStore(root)
    store.check_writable()
    files = {"quality.parquet": parquet_bytes(FRAME), "plots/a.png": b"\x89PNG"}
    pub = store.publish_run(MODEL, "1", "20260101T000000Z-aaaa", files, {"model": MODEL})
    assert pub.url == f"{root}/{pub.path}"
    reader = EvidenceStore(root + "/")
    assert reader.runs(MODEL, "1") == ["20260101T000000Z-aaaa"]
    assert reader.verify(pub.path) == []
    assert reader.read_manifest(pub.path)["model"] == MODEL
    pd.testing.assert_frame_equal(reader.latest_table(MODEL, "1", "quality"), FRAME)
    assert reader.latest_table(MODEL, "1", "drift") is None
    assert not [p for p in store.fs.find(store.base) if ".write-probe" in p]


def test_reader_sees_runs_published_by_another_process(s3, root):
    from assurance.evidence.history import run_folders

    store = EvidenceStore(root)
    first = store.publish_run(MODEL, "1", "20260101T000000Z-aaaa", {"quality.parquet": b"1"}, {})
    assert store.runs(MODEL, "1") == [first.run_id]
    assert store.latest_table(MODEL, "1", "drift") is None
    newer = parquet_bytes(FRAME.head(1))
    rel = publish_elsewhere(s3, store, "20260102T000000Z-bbbb", {"drift.parquet": newer})
    assert store.runs(MODEL, "1") == [first.run_id, "20260102T000000Z-bbbb"]
    assert store.latest_run_path(MODEL, "1") == rel
    pd.testing.assert_frame_equal(store.latest_table(MODEL, "1", "drift"), FRAME.head(1))
    assert [r.run_id for r in run_folders(store, MODEL)] == [first.run_id, "20260102T000000Z-bbbb"]


def test_run_without_manifest_is_not_listed(s3, root):
    """A crash between the files and the manifest leaves objects that no reader may trust."""
    from assurance.evidence.history import run_folders

    store = EvidenceStore(root)
    good = store.publish_run(MODEL, "1", "20260101T000000Z-aaaa", {"quality.parquet": b"1"}, {})
    assert store.runs(MODEL, "1") == [good.run_id]
    bucket, _, prefix = store.base.partition("/")
    crashed = f"{store.version_path(MODEL, '1')}/20260102T000000Z-crash"
    s3.put(bucket, f"{prefix}/{crashed}/quality.parquet", parquet_bytes(FRAME))
    assert store.runs(MODEL, "1") == [good.run_id]
    assert store.latest_run_path(MODEL, "1") == good.path
    assert [r.run_id for r in run_folders(store)] == [good.run_id]
    assert store.verify(crashed) == [f"{crashed}: no {MANIFEST}"]


def test_same_run_id_is_refused(root):
    store = EvidenceStore(root)
    pub = store.publish_run(MODEL, "1", "r1", {"a.txt": b"1"}, {})
    with pytest.raises(EvidenceError, match="never overwritten"):
        store.publish_run(MODEL, "1", "r1", {"a.txt": b"2"}, {})
    assert store.read_bytes(f"{pub.path}/a.txt") == b"1"
    assert store.verify(pub.path) == []


def test_manifest_is_create_only_when_a_publisher_races_past_the_check(root, monkeypatch):
    """Object stores have no rename: the manifest write itself must refuse to replace a published one."""
    store = EvidenceStore(root)
    pub = store.publish_run(MODEL, "1", "r1", {"a.txt": b"1"}, {"writer": "first"})
    monkeypatch.setattr(store.fs, "exists", lambda path, **kw: False)
    with pytest.raises(EvidenceError, match="could not publish"):
        store.publish_run(MODEL, "1", "r1", {"b.txt": b"2"}, {"writer": "second"})
    monkeypatch.undo()
    assert store.read_manifest(pub.path)["writer"] == "first"


def test_verify_reports_changed_missing_and_extra_objects(s3, root):
    store = EvidenceStore(root)
    pub = store.publish_run(MODEL, "1", "r1", {"a.txt": b"1", "b.txt": b"2"}, {})
    assert store.verify(pub.path) == []
    bucket, _, prefix = store.base.partition("/")
    s3.put(bucket, f"{prefix}/{pub.path}/a.txt", b"tampered")
    s3.client.delete_object(Bucket=bucket, Key=f"{prefix}/{pub.path}/b.txt")
    s3.put(bucket, f"{prefix}/{pub.path}/c.txt", b"3")
    assert sorted(store.verify(pub.path)) == [
        "changed file: a.txt (sha256 does not match the manifest)",
        "extra file not in the manifest: c.txt",
        "missing file: b.txt",
    ]


def test_concurrent_accepts_on_s3_lose_nothing(root):
    """Twenty analysts accepting at once: each acceptance is its own create-only object, so none is lost."""
    from datetime import UTC, datetime

    from assurance.domain.findings import Finding, findings_frame
    from assurance.governance.ledger import ACCEPTANCES, build_ledger, read_acceptances
    from assurance.policy.model import Policy
    from tests.support import accept_concurrently, make_record

    now = datetime.now(UTC)
    finding = Finding("drift", "drift.feature", "x", "high", "x drifted.", observed=0.3, threshold=0.1)
    frame = findings_frame([finding], make_record(name=MODEL), Policy(), now=now)
    store = EvidenceStore(root)
    store.publish_run(MODEL, "1", "r1", {"findings.parquet": parquet_bytes(frame)}, {})
    written = accept_concurrently(root, frame["finding_id"].item(), 20, now=now)
    reader = EvidenceStore(root)
    saved = read_acceptances(reader)
    assert len(written) == 20 and sorted(saved["by"]) == sorted(r["by"] for r in written)
    assert saved["by"].nunique() == 20 and len(reader.read_folder(ACCEPTANCES)) == 20
    assert build_ledger(reader, now=now)["status"].tolist() == ["accepted"]


def test_concurrent_decisions_on_s3_lose_nothing(root):
    """Twenty reviewers recording a decision on one version at once: each record is its own create-only object,
    all bound to the same evidence, and all twenty read back."""
    from datetime import UTC, datetime

    from assurance.evidence.store import sha256_bytes
    from assurance.governance.decisions import DECISIONS, latest_decisions, read_decisions
    from tests.support import decide_concurrently

    store = EvidenceStore(root)
    pub = store.publish_run(
        MODEL, "1", "r1", {"findings.parquet": parquet_bytes(FRAME)}, {"recommendation": "hold"}
    )
    written = decide_concurrently(root, MODEL, "1", 20, now=datetime.now(UTC))
    reader = EvidenceStore(root)
    saved = read_decisions(reader, MODEL, "1")
    assert len(written) == 20 and sorted(saved["decision_id"]) == sorted(r["decision_id"] for r in written)
    assert saved["by"].nunique() == 20 and len(reader.read_folder(DECISIONS)) == 20
    manifest = sha256_bytes(reader.read_bytes(f"{pub.path}/{MANIFEST}"))
    assert set(saved["run_id"]) == {"r1"} and set(saved["manifest_sha256"]) == {manifest}
    assert len(latest_decisions(saved)) == 1


def test_bundle_exported_from_s3_verifies_offline(root, tmp_path):
    from assurance.evidence import bundle

    store = EvidenceStore(root)
    store.publish_run(MODEL, "3", "r1", {"quality.parquet": parquet_bytes(FRAME), "plots/a.png": b"p"}, {})
    path = bundle.export(store, MODEL, "3", tmp_path)
    assert path.parent == tmp_path and bundle.verify(path) == []


def test_missing_bucket_is_a_clear_error_and_is_not_created(s3):
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    with pytest.raises(EvidenceError, match=rf"s3://{bucket}/evidence.* is not writable"):
        EvidenceStore(f"s3://{bucket}/evidence").check_writable()
    existing = {b["Name"] for b in s3.client.list_buckets()["Buckets"]}
    assert bucket not in existing


def test_datasources_read_parquet_and_csv_from_s3(s3):
    from assurance.data.sources import fingerprint, read_table

    bucket = s3.bucket()
    s3.put(bucket, "data/ref.parquet", parquet_bytes(FRAME))
    s3.put(bucket, "data/cur.csv", FRAME.to_csv(index=False).encode())
    s3.put(bucket, "data/parts/part-0.parquet", parquet_bytes(FRAME.head(2)))
    s3.put(bucket, "data/parts/part-1.parquet", parquet_bytes(FRAME.tail(1)))
    s3.put(bucket, "data/parts/_SUCCESS", b"")
    pd.testing.assert_frame_equal(read_table(f"s3://{bucket}/data/ref.parquet"), FRAME)
    pd.testing.assert_frame_equal(read_table(f"s3://{bucket}/data/cur.csv"), FRAME)
    parts = read_table(f"s3://{bucket}/data/parts")
    assert sorted(parts["x"]) == [1, 2, 3]
    s3.put(bucket, "data/parts/part-2.parquet", parquet_bytes(FRAME.head(1)))
    assert sorted(read_table(f"s3://{bucket}/data/parts")["x"]) == [1, 1, 2, 3]
    assert fingerprint(f"s3://{bucket}/data/ref.parquet") != fingerprint(f"s3://{bucket}/data/parts")
    with pytest.raises(DataError, match="nothing exists"):
        read_table(f"s3://{bucket}/data/absent.parquet")


def test_data_above_the_memory_budget_is_sampled_from_s3(s3):
    """A hive-partitioned Parquet folder and a CSV, each several times a 1 MB budget, read as samples."""
    import numpy as np

    from assurance.data.sources import read_table, read_within

    bucket = s3.bucket()
    rows = 40_000
    data = pd.DataFrame(
        {"row_id": np.arange(rows), "text": [f"row number {i} of the big one" for i in range(rows)]}
    ).assign(part=lambda f: f["row_id"] % 2)
    for part, group in data.groupby("part"):
        s3.put(bucket, f"data/big/part={part}/0.parquet", parquet_bytes(group.drop(columns="part")))
    s3.put(bucket, "data/big.csv", data.to_csv(index=False).encode())
    for uri in (f"s3://{bucket}/data/big", f"s3://{bucket}/data/big.csv"):
        got, sampling = read_within(uri, budget_mb=1)
        assert sampling is not None and sampling.rows_total == rows and 0 < len(got) < rows // 2, uri
        whole = read_table(uri).set_index("row_id").loc[got["row_id"]].reset_index()
        pd.testing.assert_frame_equal(got, whole)


def test_dagster_graph_publishes_a_versions_evidence_to_s3(s3, root, small_registry):
    import dagster as dg

    from assurance.cli.launcher import run_portfolio, run_version
    from assurance.evidence.history import run_folders
    from assurance.evidence.sql import connect
    from assurance.settings import Settings

    settings = Settings(tracking_uri=small_registry.tracking_uri, evidence_root=root)
    instance = dg.DagsterInstance.ephemeral()
    outcome = run_version(small_registry.model, small_registry.healthy, settings, instance)
    assert outcome.success, outcome.error
    store = EvidenceStore(root)
    rel = store.latest_run_path(small_registry.model, small_registry.healthy)
    assert rel and store.verify(rel) == []
    names = {f["path"] for f in store.read_manifest(rel)["files"]}
    assert {"findings.parquet", "quality.parquet", "report.html"} <= names
    saved = store.latest_table(small_registry.model, small_registry.healthy, "findings")
    assert set(saved["finding_id"]) == set(outcome.findings["finding_id"])
    assert [r.path for r in run_folders(store)] == [rel]
    assert run_portfolio(settings, instance).success
    con = connect(root)
    assert con.execute("SELECT count(*) FROM findings").fetchone()[0] == len(outcome.findings)
    last_run = con.execute("SELECT last_run FROM inventory WHERE version = ?", [small_registry.healthy])
    assert last_run.fetchall() == [(rel,)]


def test_the_alert_outbox_queues_once_retries_and_delivers_on_s3(root):
    import logging
    from datetime import UTC, datetime, timedelta
    from functools import partial

    from assurance.governance.alerts import finding_alert, post_json
    from assurance.governance.outbox import PENDING, SENT, Backoff, Outbox, deliver_due
    from tests.support import webhook_receiver

    outbox, log = Outbox(EvidenceStore(root)), logging.getLogger("tests.outbox")
    now = datetime(2026, 3, 1, tzinfo=UTC)
    alerts = [
        finding_alert(MODEL, "1", "r1", {"finding_id": f, "severity": "high", "message": f}, None)
        for f in "ab"
    ]
    ids = [a["alert_id"] for a in alerts]
    assert outbox.enqueue(alerts, now) == ids and outbox.enqueue(alerts, now) == []
    with webhook_receiver(status=503) as hook:
        post = partial(post_json, hook.url)
        down = deliver_due(outbox, post, Backoff(first_seconds=10), now, log)
        hook.status = 200
        up = deliver_due(outbox, post, Backoff(first_seconds=10), now + timedelta(seconds=10), log)
    assert (down.retrying, up.sent) == (2, 2) and [a["alert_id"] for a in hook.accepted] == ids
    assert outbox.pending() == ([], []) and outbox.enqueue(alerts, now) == []
    sent = json.loads(outbox.store.read_bytes(outbox.path(SENT, ids[0])))
    assert sent["attempts"] == 1 and not outbox.store.fs.exists(
        f"{outbox.store.base}/{outbox.path(PENDING, ids[0])}"
    )


def test_ledger_snapshot_on_s3_covers_runs_and_reads_only_the_tail(s3, root):
    from datetime import UTC, datetime, timedelta

    from assurance.domain.findings import Finding, findings_frame
    from assurance.evidence.store import new_run_id
    from assurance.governance import ledger_snapshot
    from assurance.governance.ledger import build_ledger
    from assurance.policy.model import Policy
    from tests.support import make_record

    store, t0 = EvidenceStore(root), datetime(2025, 1, 1, tzinfo=UTC)
    drift = Finding("drift", "drift.feature", "amount", "medium", "Amount drifted.")
    gap = Finding("performance", "performance.floor", "auc", "high", "AUC below the floor.")
    for day, found in enumerate([[drift, gap], [drift], [drift, gap]]):
        at = t0 + timedelta(days=day)
        frame = findings_frame(found, make_record(name=MODEL), Policy(), now=at)
        files = {"findings.parquet": parquet_bytes(frame)}
        if day < 2:
            store.publish_run(MODEL, "1", new_run_id(at), files, {"finished_at": at.isoformat()})
            first = build_ledger(store, now=at, model=MODEL, version="1")
        else:
            publish_elsewhere(s3, store, new_run_id(at), files)
    snapshot = ledger_snapshot.read_latest(store, store.version_path(MODEL, "1"), [])
    assert snapshot is not None and len(snapshot.runs) == 2 and len(first) == 2
    now = t0 + timedelta(days=3)
    ledger = build_ledger(store, now=now, model=MODEL, version="1")
    store.fs.rm(f"{store.base}/{store.version_path(MODEL, '1')}/{ledger_snapshot.FOLDER}", recursive=True)
    pd.testing.assert_frame_equal(ledger, build_ledger(store, now=now, model=MODEL, version="1"))
    assert sorted(ledger["status"]) == ["open", "open"] and sorted(ledger["runs_seen"]) == [2, 3]
    assert len(store.runs(MODEL, "1")) == 3
