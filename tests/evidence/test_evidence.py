import json
import os
import time

import pandas as pd
import pytest

from assurance.domain.errors import EvidenceError
from assurance.evidence.store import (
    MAX_SEGMENT,
    PORTFOLIO,
    STAGING,
    STALE_STAGING_SECONDS,
    EvidenceStore,
    parquet_bytes,
    safe_segment,
    segment_name,
)

AWKWARD = [
    "..",
    ".",
    "a/b",
    "a\\b",
    "x\ny",
    "\x00\x1b[31m",
    "../../etc",
    "mod%2Fel",
    "名前",
    "a b;rm -rf",
    "churn\u2215v2",  # DIVISION SLASH
    "churn\uff0fv2",  # FULLWIDTH SOLIDUS
    "churn\u2044v2",  # FRACTION SLASH
    "_portfolio",
    "_PORTFOLIO",
    "_Portfolio",
    "%5Fportfolio",
    "a~b",
    "é",
    "e\u0301",  # the same letter decomposed: a different name, so a different folder
    "x" * 300,
    "x" * 299 + "y",
    "∕" * 300,
]


@pytest.mark.parametrize("name", AWKWARD)
def test_safe_segment_never_climbs_splits_or_overflows(name):
    seg = safe_segment(name)
    assert seg.isascii() and seg.isprintable() and "/" not in seg and "\\" not in seg
    assert not seg.startswith(".") and len(seg.encode()) <= MAX_SEGMENT
    assert seg.casefold() != PORTFOLIO.casefold()
    assert safe_segment(name) == seg


def test_safe_segment_is_injective_and_reversible_below_the_length_limit():
    segments = [safe_segment(n) for n in AWKWARD]
    assert len(set(segments)) == len(AWKWARD)
    for name, seg in zip(AWKWARD, segments, strict=True):
        assert segment_name(seg) == (name if len(name) < 100 else None)


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("churn_model", "churn_model"),
        ("credit-risk_v2", "credit-risk_v2"),
        ("_internal", "_internal"),
        ("credit risk.v2", "credit%20risk%2Ev2"),
        ("名前", "%E5%90%8D%E5%89%8D"),
        ("x" * MAX_SEGMENT, "x" * MAX_SEGMENT),
    ],
)
def test_ordinary_names_keep_their_existing_folders(name, segment):
    """The evidence layout is a contract: only reserved, path-breaking or over-long names change folder."""
    assert safe_segment(name) == segment


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


def test_over_long_names_are_listed_as_typed_and_bundled_under_a_short_name(tmp_path):
    """A shortened folder cannot be decoded: the manifest's name is what the readers show."""
    from assurance.evidence import bundle
    from assurance.evidence.history import run_folders

    store = EvidenceStore(str(tmp_path / "evidence"))
    name = "credit \u2215 " * 40
    store.publish_run(name, "1", "r1", {"a.txt": b"1"}, {"model": name, "version": "1"})
    assert [(r.model, r.version) for r in run_folders(store)] == [(name, "1")]
    assert [r.model for r in run_folders(store, name)] == [name] and store.runs(name, "1") == ["r1"]
    path = bundle.export(store, name, "1", tmp_path / "out")
    assert len(path.name.encode()) <= MAX_SEGMENT and bundle.verify(path) == []
