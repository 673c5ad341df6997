import json
import os
import time

import pandas as pd
import pytest

from assurance.domain.errors import EvidenceError
from assurance.evidence.store import (
    STAGING,
    STALE_STAGING_SECONDS,
    EvidenceStore,
    parquet_bytes,
    safe_segment,
)


@pytest.mark.parametrize("name", ["..", "a/b", "a\\b", "x\ny", "../../etc", "mod%2Fel", "名前", "a b;rm -rf"])
def test_safe_segment_never_climbs_or_splits(name):
    seg = safe_segment(name)
    assert "/" not in seg and "\\" not in seg and "\n" not in seg and seg not in (".", "..")
    assert not seg.startswith(".")


def test_safe_segment_is_injective_on_lookalikes():
    assert safe_segment("a.b") != safe_segment("a%2Eb")
    assert safe_segment("a/b") != safe_segment("a_b")


def test_publish_writes_whole_folder_with_manifest(tmp_path):
    store = EvidenceStore(str(tmp_path))
    files = {"a.parquet": parquet_bytes(pd.DataFrame({"x": [1, 2]})), "plots/p.png": b"\x89PNG"}
    pub = store.publish_run("m/odd", "1", "r1", files, {"model": "m/odd"})
    assert store.runs("m/odd", "1") == ["r1"]
    manifest = json.loads((tmp_path / pub.path / "manifest.json").read_text())
    assert {f["path"] for f in manifest["files"]} == set(files)
    assert store.verify(pub.path) == []
    assert not any(
        p.name.startswith(".staging") for p in (tmp_path / store.version_path("m/odd", "1")).iterdir()
    )


def test_publish_never_overwrites(tmp_path):
    store = EvidenceStore(str(tmp_path))
    store.publish_run("m", "1", "r1", {"a.txt": b"1"}, {})
    with pytest.raises(EvidenceError, match="never overwritten"):
        store.publish_run("m", "1", "r1", {"a.txt": b"2"}, {})
    assert store.read_bytes(f"{store.latest_run_path('m', '1')}/a.txt") == b"1"


def test_failed_publish_leaves_nothing(tmp_path, monkeypatch):
    store = EvidenceStore(str(tmp_path))

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(store.fs, "mv", boom)
    with pytest.raises(EvidenceError, match="disk full"):
        store.publish_run("m", "1", "r1", {"a.txt": b"1"}, {})
    assert store.runs("m", "1") == []
    assert list((tmp_path / "m" / "1").iterdir()) == []


def test_publish_sweeps_staging_folders_killed_publishers_left_and_keeps_live_ones(tmp_path):
    store = EvidenceStore(str(tmp_path))
    store.publish_run("m", "1", "r1", {"a.txt": b"1"}, {})
    version = tmp_path / "m" / "1"
    left, live = version / f"{STAGING}r2", version / f"{STAGING}r3"
    for folder in (left, live):
        folder.mkdir()
        (folder / "a.txt").write_bytes(b"half")
    long_ago = time.time() - STALE_STAGING_SECONDS - 60
    os.utime(left, (long_ago, long_ago))
    assert store.runs("m", "1") == ["r1"]  # never listed, swept or not
    store.publish_run("m", "1", "r4", {"a.txt": b"4"}, {})
    assert not left.exists() and live.exists()
    assert store.runs("m", "1") == ["r1", "r4"]


def test_verify_reports_changed_missing_and_extra(tmp_path):
    store = EvidenceStore(str(tmp_path))
    pub = store.publish_run("m", "1", "r1", {"a.txt": b"1", "b.txt": b"2"}, {})
    run = tmp_path / pub.path
    (run / "a.txt").write_bytes(b"x")
    (run / "b.txt").unlink()
    (run / "c.txt").write_bytes(b"3")
    problems = store.verify(pub.path)
    assert any("changed file: a.txt" in p for p in problems)
    assert any("missing file: b.txt" in p for p in problems)
    assert any("extra file" in p and "c.txt" in p for p in problems)


def test_latest_table_reads_newest_published_run(tmp_path):
    store = EvidenceStore(str(tmp_path))
    store.publish_run(
        "m", "1", "20260101T000000Z-a", {"t.parquet": parquet_bytes(pd.DataFrame({"v": [1]}))}, {}
    )
    store.publish_run(
        "m", "1", "20260102T000000Z-b", {"t.parquet": parquet_bytes(pd.DataFrame({"v": [2]}))}, {}
    )
    assert store.latest_table("m", "1", "t")["v"].tolist() == [2]
    assert store.latest_table("m", "2", "t") is None


def test_unwritable_root_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(EvidenceError, match="not writable"):
        EvidenceStore(str(blocker / "evidence")).check_writable()
