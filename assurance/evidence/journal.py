"""Append-only journals in the evidence store: a folder of small JSON Lines objects, each written once.

Appending by rewriting one shared object loses records on an object store: two writers read the old
object, both write it back with their line, and the last one wins. Here every append is a new object
under a fresh name (UTC time, then a random id), written create-only, so no two writers ever target
the same object and a reader sees each append whole or not at all. Human decisions recorded against
evidence (risk acceptances, later decision records) are journals.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assurance.evidence.store import EvidenceStore

SUFFIX = ".jsonl"


def entry_name(now: datetime | None = None) -> str:
    """Sorts by write time to the microsecond; the random part keeps simultaneous writers apart."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}{SUFFIX}"


def append(store: EvidenceStore, folder: str, records: list[dict]) -> str:
    """Write `records` as one new object of the journal at `folder` (relative to the root); returns its path.

    One object per call, so the records of one decision land together or not at all.
    """
    rel = f"{folder}/{entry_name()}"
    store.create(rel, "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records).encode())
    return rel


def read(store: EvidenceStore, folder: str, legacy: str | None = None) -> list[dict]:
    """Every record of the journal, in write order: first the lines of `legacy`, the single file such
    records were appended to before journals existed, so existing evidence roots keep them."""
    blobs = []
    if legacy is not None:
        try:
            blobs.append(store.read_bytes(legacy))
        except FileNotFoundError:
            pass
    blobs += [data for name, data in sorted(store.read_folder(folder).items()) if name.endswith(SUFFIX)]
    return [record for blob in blobs for record in _records(blob)]


def _records(blob: bytes) -> Iterator[dict]:
    """The JSON objects of a JSON Lines blob; a damaged line is skipped rather than failing every reader."""
    for line in blob.decode(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record
