"""Where the registry sensor keeps what it has seen: small values in a key-value store, named by a tiny cursor.

Storing the whole state as the cursor wrote ~33 KB at 5,000 versions on every tick, changed or not (and
every tick record kept a copy). Here the state is split by model into BUCKETS buckets; each bucket's
encoded state (`watch.encode_state`) is one value in the key-value store, a root value lists each bucket's
slot and digest, and the cursor names the root by its slot and digest. A tick that changes nothing writes nothing and returns the
same cursor; a tick that changes a few versions writes their buckets and a new root.

Nothing the committed cursor references is ever overwritten: every bucket and the root have two slots,
and a tick writes into the slot the committed root does not use. The orchestrator stores the new cursor
only when the tick succeeds; until then the old cursor still names intact values, so a tick that fails
leaves the state, and every pending change, as it was, and the next tick reuses the abandoned slot. Every
value is checked against the digest its parent recorded: a value overwritten meanwhile (an evaluation of
the sensor from the UI writes the same slots) counts as not seen, so its versions are looked at again and
run keys keep states already validated from running twice. No cursor means nothing seen (first tick or a
reset); a cursor of the older whole-state format is read as it is and moved to the store on the next save.
Plain Python: the store is anything with Dagster's `get_cursor_values` / `set_cursor_values`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from assurance.domain.errors import CursorError
from assurance.domain.values import split_partition_key
from assurance.registry.watch import State, decode_state, encode_state

# 256 buckets: at 5,000 versions a bucket holds one or two models (~300 bytes) and the root ~2.8 KB
BUCKETS = 256
CURSOR_PREFIX = "kv1:"  # ':' never occurs in the base64 of the older whole-state cursors
DIGEST_HEX = 16
BUCKET_DIGEST_HEX = 8  # only tells a value overwritten by another evaluation from ours
_ENTRY = 2 + 1 + BUCKET_DIGEST_HEX  # root entry: bucket (2 hex), slot, digest


class KeyValueStore(Protocol):
    """The key-value store of a Dagster instance (`instance.daemon_cursor_storage`)."""

    def get_cursor_values(self, keys: set[str]) -> Mapping[str, str]: ...

    def set_cursor_values(self, pairs: Mapping[str, str]) -> None: ...


def _digest(value: str, length: int = DIGEST_HEX) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def bucket_of(model: str) -> int:
    """A model's bucket: all its versions together, as aliases move between them."""
    return int(hashlib.sha256(model.encode()).hexdigest()[:8], 16) % BUCKETS


@dataclass(frozen=True)
class Loaded:
    """The state a cursor names, and where its values live (bucket -> (slot, digest; empty when the value
    was unreadable)), for the next save."""

    state: State
    cursor: str | None = None
    root_slot: int | None = None
    root_digest: str | None = None
    buckets: Mapping[int, tuple[int, str]] = field(default_factory=dict)
    unreadable: int = 0


@dataclass(frozen=True)
class Saved:
    cursor: str
    written_bytes: int


class SensorStateStore:
    """One sensor's state in a key-value store; `scope` names the sensor, so others never share its values."""

    def __init__(self, values: KeyValueStore, scope: str):
        self.values = values
        self.prefix = f"assurance.sensor.{_digest(scope)[:12]}"

    def _root_key(self, slot: int) -> str:
        return f"{self.prefix}.root.{slot}"

    def _bucket_key(self, bucket: int, slot: int) -> str:
        return f"{self.prefix}.b{bucket}.{slot}"

    def load(self, cursor: str | None) -> Loaded:
        """The state `cursor` names; CursorError when the cursor is not one this sensor wrote."""
        if not cursor:
            return Loaded({})
        if not cursor.startswith(CURSOR_PREFIX):
            return Loaded(decode_state(cursor), cursor)
        slot, root_digest = _parse(cursor)
        root = self.values.get_cursor_values({self._root_key(slot)}).get(self._root_key(slot))
        if root is None or _digest(root) != root_digest:
            return Loaded({}, cursor, slot, unreadable=BUCKETS)
        buckets = _parse_root(root)
        keys = {b: self._bucket_key(b, s) for b, (s, _) in buckets.items()}
        found = self.values.get_cursor_values(set(keys.values()))
        state: State = {}
        unreadable = 0
        for bucket, (bucket_slot, digest) in buckets.items():
            value = found.get(keys[bucket])
            if value is None or _digest(value, BUCKET_DIGEST_HEX) != digest:
                unreadable += 1
                buckets[bucket] = (bucket_slot, "")  # so the next save writes it again
                continue
            state.update(decode_state(value))
        return Loaded(state, cursor, slot, root_digest if not unreadable else None, buckets, unreadable)

    def save(self, state: State, loaded: Loaded) -> Saved:
        """Store `state`, writing only buckets that changed (into their free slot) and then a new root."""
        writes: dict[str, str] = {}
        buckets: dict[int, tuple[int, str]] = {}
        for bucket, value in sorted(_bucket_values(state).items()):
            digest = _digest(value, BUCKET_DIGEST_HEX)
            slot, before = loaded.buckets.get(bucket, (1, None))
            if digest != before:
                slot = 1 - slot
                writes[self._bucket_key(bucket, slot)] = value
            buckets[bucket] = (slot, digest)
        root = "".join(f"{b:02x}{slot}{digest}" for b, (slot, digest) in sorted(buckets.items()))
        if loaded.cursor and _digest(root) == loaded.root_digest:
            return Saved(loaded.cursor, 0)
        slot = 0 if loaded.root_slot is None else 1 - loaded.root_slot
        writes[self._root_key(slot)] = root
        self._write(writes)
        return Saved(
            f"{CURSOR_PREFIX}{slot}:{_digest(root)}", sum(len(k) + len(v) for k, v in writes.items())
        )

    def _write(self, pairs: dict[str, str]) -> None:
        """New keys and existing keys in separate calls: Dagster's SQL storage, given a batch that mixes
        them, updates the existing ones and silently drops the new ones."""
        existing = set(self.values.get_cursor_values(set(pairs)))
        for batch in ({k: v for k, v in pairs.items() if k not in existing}, {k: pairs[k] for k in existing}):
            if batch:
                self.values.set_cursor_values(batch)


def _bucket_values(state: State) -> dict[int, str]:
    grouped: dict[int, State] = {}
    for key, seen in state.items():
        grouped.setdefault(bucket_of(split_partition_key(key)[0]), {})[key] = seen
    return {bucket: encode_state(entries) for bucket, entries in grouped.items()}


def _parse_root(root: str) -> dict[int, tuple[int, str]]:
    """bucket -> (slot, digest) from the root's fixed-width entries."""
    entries = (root[i : i + _ENTRY] for i in range(0, len(root), _ENTRY))
    return {int(e[:2], 16): (int(e[2]), e[3:]) for e in entries}


def _parse(cursor: str) -> tuple[int, str]:
    try:
        slot, digest = cursor[len(CURSOR_PREFIX) :].split(":")
        if slot not in ("0", "1") or len(digest) != DIGEST_HEX:
            raise ValueError(cursor)
        int(digest, 16)
    except ValueError as exc:
        raise CursorError(
            f"the registry sensor's cursor {cursor[:40]!r} cannot be read; reset it with "
            "`dagster sensor cursor --delete` (the next tick rescans the registry; run keys keep "
            "already validated states from running again)"
        ) from exc
    return int(slot), digest
