"""Ledger snapshots: what the ledger needs from a version's runs, kept so a run reads one file, not every run.

A version monitored hourly has thousands of runs; re-reading each one's manifest and findings on every
run made history cost grow without bound. A snapshot holds the version's finding spans (one row per
finding: see `ledger.finding_spans`) and the runs it covers, keyed by the newest of them:

    <root>/<model>/<version>/.ledger/<newest run id>.<sha256 prefix>.parquet

It is a cache, never evidence: the hidden folder is skipped by every listing of runs, and no encoded model,
version or run name can start with a dot, so it never collides with a run. It is written whole or not at
all, its name carries a digest of its bytes, and anything wrong with it (missing, damaged, another format,
a run it covers that is no longer published) makes the reader fall back to reading every run, which gives
the same ledger. The runs a snapshot covers are listed, not implied by time, so a run that finished late
(published after a newer one) is still read as part of the tail.
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from assurance.evidence.store import sha256_bytes

if TYPE_CHECKING:
    from assurance.evidence.store import EvidenceStore

FOLDER = ".ledger"
FORMAT = 1
KEEP = 2  # the newest and one before it: a reader that listed the folder a moment ago still finds its pick
DIGEST_HEX = 16
_METADATA = b"assurance.ledger"


@dataclass(frozen=True)
class LedgerSnapshot:
    """Finding spans of a version's runs, and those runs: `run_id`, `at` (UTC) and `observing` (wrote
    findings); `name` is the file it was read from."""

    spans: pd.DataFrame
    runs: pd.DataFrame
    name: str = ""

    @property
    def newest(self) -> str:
        return max(self.runs["run_id"])


def runs_table(run_ids: list[str], at: list[pd.Timestamp], observing: list[bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": pd.Series(run_ids, dtype=object),
            "at": pd.to_datetime(pd.Series(at, dtype=object), utc=True).astype("datetime64[ns, UTC]"),
            "observing": pd.Series(observing, dtype=bool),
        }
    )


def encode(snapshot: LedgerSnapshot) -> bytes:
    """Parquet of the spans, with the covered runs compressed into the file's metadata (times exact to
    the nanosecond)."""
    runs = snapshot.runs
    covered = {
        "format": FORMAT,
        "run_id": runs["run_id"].tolist(),
        "at_ns": runs["at"].astype("int64").tolist(),
        "observing": runs["observing"].astype(bool).tolist(),
    }
    packed = base64.b64encode(zlib.compress(json.dumps(covered, separators=(",", ":")).encode(), 9))
    table = pa.Table.from_pandas(snapshot.spans, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _METADATA: packed})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def decode(data: bytes) -> LedgerSnapshot:
    """The snapshot in `data`; ValueError (or a Parquet error) when it is not one this code wrote."""
    table = pq.read_table(io.BytesIO(data))
    covered = json.loads(zlib.decompress(base64.b64decode((table.schema.metadata or {})[_METADATA])))
    if covered.get("format") != FORMAT:
        raise ValueError(f"ledger snapshot format {covered.get('format')!r}, expected {FORMAT}")
    run_ids, at_ns, observing = covered["run_id"], covered["at_ns"], covered["observing"]
    if not run_ids or not len(run_ids) == len(at_ns) == len(observing):
        raise ValueError("ledger snapshot lists no runs, or run columns of different lengths")
    at = [pd.Timestamp(ns, tz="UTC") for ns in at_ns]
    return LedgerSnapshot(table.to_pandas(), runs_table(run_ids, at, observing))


def _name(newest: str, data: bytes) -> str:
    return f"{newest}.{sha256_bytes(data)[:DIGEST_HEX]}.parquet"


def _listed(store: EvidenceStore, version_path: str) -> list[str]:
    """Snapshot file names of a version, oldest first (run ids sort by start time)."""
    try:
        entries = store.fs.ls(f"{store.base.rstrip('/')}/{version_path}/{FOLDER}", detail=False)
    except FileNotFoundError:
        return []
    names = (e.rstrip("/").rsplit("/", 1)[-1] for e in entries)
    return sorted(n for n in names if not n.startswith(".") and n.count(".") == 2 and n.endswith(".parquet"))


def read_latest(store: EvidenceStore, version_path: str, columns: list[str]) -> LedgerSnapshot | None:
    """The version's newest snapshot, or None when there is none or it cannot be read; a damaged one (bytes
    that do not match the digest in its name, another format, spans without `columns`) is removed."""
    names = _listed(store, version_path)
    if not names:
        return None
    try:
        data = store.read_bytes(f"{version_path}/{FOLDER}/{names[-1]}")
    except OSError:
        return None
    try:
        if sha256_bytes(data)[:DIGEST_HEX] != names[-1].split(".")[1]:
            raise ValueError("bytes do not match the digest in the name")
        snapshot = decode(data)
        if not set(columns) <= set(snapshot.spans.columns):
            raise ValueError("other span columns")
    except (ValueError, KeyError, TypeError, zlib.error, pa.ArrowException):
        discard(store, version_path, names[-1])  # or it would shadow the next snapshot of the same run id
        return None
    return LedgerSnapshot(snapshot.spans[columns], snapshot.runs, names[-1])


def discard(store: EvidenceStore, version_path: str, name: str) -> None:
    """Remove one snapshot file; one already gone, or a store that refuses, is left as it is."""
    try:
        store.fs.rm(f"{store.base.rstrip('/')}/{version_path}/{FOLDER}/{name}")
    except OSError:
        return


def write(store: EvidenceStore, version_path: str, snapshot: LedgerSnapshot) -> None:
    """Store `snapshot` and drop all but the newest KEEP; a store that refuses the write only costs speed."""
    data = encode(snapshot)
    folder = f"{version_path}/{FOLDER}"
    try:
        store.replace(f"{folder}/{_name(snapshot.newest, data)}", data)
    except OSError:
        return
    for old in _listed(store, version_path)[:-KEEP]:
        discard(store, version_path, old)
