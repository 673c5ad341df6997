"""Watching the registry: what changed since the last look, and which versions to (re)validate now.

MLflow does not bump timestamps when tags or aliases change, so each version is fingerprinted from
what the product cares about: status, source run, every tag except the ones the product writes itself
(`assurance.result.*` and `assurance.decision*`, or every run would trigger the next), and aliases. The
sensor keeps (see `sensor_state` for where) a short digest of each version's status, run and tags plus
the aliases of each model, and compares every new snapshot against it:

- a READY version it has not seen is new: add its partition and validate it (once it is a few seconds
  old, so the tags its owner sets right after registering it are part of its first run);
- a changed digest (tag, status, run) or an alias gained starts revalidation of that version;
- a version that only lost an alias is not revalidated (moving an alias revalidates the version it
  moved to, once), but its state is updated;
- a version gone from the registry is retired: reported, its partition and evidence kept.

A version is marked seen only when its run is requested, so changes beyond the per-tick cap are
picked up by the next tick, and a tick that fails leaves the stored state (and every pending change) as
it was. Plain Python: no Dagster here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from assurance.domain.errors import CursorError
from assurance.domain.values import partition_key, split_partition_key
from assurance.registry.client import VersionRef, is_product_tag

READY = "READY"
CURSOR_FORMAT = 1
DIGEST_HEX = 8
FINGERPRINT_HEX = 16


def tracked_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags whose change means the version must be looked at again: all but the product's own (results and
    decisions), or every run would trigger the next and every decision a run."""
    return {k: v for k, v in tags.items() if not is_product_tag(k)}


def _sha(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":"), sort_keys=True).encode()).hexdigest()


def content_digest(ref: VersionRef) -> str:
    """Short digest of status, source run and tracked tags: what the cursor stores per version."""
    return _sha([ref.status, ref.run_id or "", sorted(tracked_tags(ref.tags).items())])[:DIGEST_HEX]


def fingerprint(ref: VersionRef) -> str:
    """The version's whole watched state (content and aliases): part of the run key, so a state runs once."""
    return _sha([ref.status, ref.run_id or "", sorted(tracked_tags(ref.tags).items()), sorted(ref.aliases)])[
        :FINGERPRINT_HEX
    ]


def run_key(ref: VersionRef) -> str:
    return f"{partition_key(ref.name, ref.version)}:{fingerprint(ref)}"


@dataclass(frozen=True)
class Seen:
    """What the sensor last acted on for one version."""

    digest: str
    aliases: tuple[str, ...] = ()


def seen(ref: VersionRef) -> Seen:
    return Seen(content_digest(ref), tuple(sorted(ref.aliases)))


State = dict[str, Seen]


def encode_state(state: Mapping[str, Seen]) -> str:
    """Compact text of a state (a bucket of the sensor's stored state, or a cursor of the older format that
    held it all): per model, its versions, their digests run together, and its alias map; zlib + base64.

    Grouping by model writes each name once; the digests dominate (4 bytes per version).
    """
    models: dict[str, tuple[list[str], list[str], dict[str, str]]] = {}
    for key in sorted(state, key=_version_order):
        name, version = split_partition_key(key)
        versions, digests, aliases = models.setdefault(name, ([], [], {}))
        versions.append(version)
        digests.append(state[key].digest)
        aliases.update(dict.fromkeys(state[key].aliases, version))
    body = {"f": CURSOR_FORMAT, "m": {n: [",".join(v), "".join(d), a] for n, (v, d, a) in models.items()}}
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.b64encode(zlib.compress(raw, 9)).decode()


def decode_state(cursor: str | None) -> State:
    """The state `encode_state` wrote; no text means nothing seen yet (first tick, or a reset)."""
    if not cursor:
        return {}
    try:
        body = json.loads(zlib.decompress(base64.b64decode(cursor, validate=True)))
        if body.get("f") != CURSOR_FORMAT:
            raise ValueError(f"cursor format {body.get('f')!r}, expected {CURSOR_FORMAT}")
        return dict(_entries(body["m"]))
    except (binascii.Error, zlib.error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CursorError(
            f"the registry sensor's cursor cannot be read ({exc}); reset it with "
            "`dagster sensor cursor --delete` (the next tick rescans the registry; run keys keep "
            "already validated states from running again)"
        ) from exc


def _entries(models: Mapping[str, list]) -> Iterator[tuple[str, Seen]]:
    for name, (versions, digests, aliases) in models.items():
        names = versions.split(",") if versions else []
        if len(digests) != DIGEST_HEX * len(names):
            raise ValueError(f"model {name!r}: {len(names)} versions but {len(digests)} digest characters")
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        for i, version in enumerate(names):
            digest = digests[i * DIGEST_HEX : (i + 1) * DIGEST_HEX]
            yield partition_key(name, version), Seen(digest, tuple(sorted(by_version.get(version, []))))


def _version_order(key: str) -> tuple:
    name, version = split_partition_key(key)
    return (name, int(version) if version.isdigit() else 0, version)


@dataclass(frozen=True)
class Change:
    """A version to validate now, and why."""

    ref: VersionRef
    trigger: str  # "new_version" or "registry_change"
    detail: str

    @property
    def partition(self) -> str:
        return partition_key(self.ref.name, self.ref.version)

    @property
    def run_key(self) -> str:
        return run_key(self.ref)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.ref)


@dataclass
class TickPlan:
    """One tick's decisions: runs to request now, what waits for the next tick, and the state to store."""

    requested: list[Change]
    deferred: list[Change]
    retired: list[str]
    state: State
    watched: int
    not_ready: int
    settling: int = 0

    def summary(self) -> str:
        parts = [
            f"{self.watched} READY versions watched",
            f"{len(self.requested)} runs requested",
        ]
        if self.deferred:
            parts.append(f"{len(self.deferred)} changes wait for the next tick")
        if self.retired:
            parts.append(
                f"{len(self.retired)} versions retired (gone from the registry): {', '.join(self.retired[:10])}"
            )
        if self.settling:
            parts.append(f"{self.settling} new versions registered moments ago wait for their tags to settle")
        if self.not_ready:
            parts.append(f"{self.not_ready} versions not READY yet")
        return "; ".join(parts)


def detect(ref: VersionRef, before: Seen | None) -> Change | None:
    """The change that makes `ref` worth a run, or None when its last run still covers it."""
    if before is None:
        return Change(ref, "new_version", "new READY version")
    now = seen(ref)
    gained = sorted(set(now.aliases) - set(before.aliases))
    reasons = []
    if now.digest != before.digest:
        reasons.append("tags, status or source run changed")
    if gained:
        reasons.append(f"alias {', '.join(gained)} moved here")
    return Change(ref, "registry_change", "; ".join(reasons)) if reasons else None


def plan_tick(
    snapshot: Iterable[VersionRef],
    previous: Mapping[str, Seen],
    budget: int,
    settled_before_ms: int | None = None,
) -> TickPlan:
    """Compare a registry snapshot with the last state; request at most `budget` runs, new versions first.

    A new version created after `settled_before_ms` waits: owners tag a version right after registering it,
    and its first validation should see those tags. Unrequested changes keep their previous state (or none,
    for new versions) so the next tick finds them again; versions gone from the registry leave the state
    and are reported as retired.
    """
    refs = list(snapshot)
    present = {partition_key(r.name, r.version) for r in refs}
    ready = sorted(
        (r for r in refs if r.status == READY), key=lambda r: (r.created_ms or 0, r.name, _int(r.version))
    )
    state: State = {k: v for k, v in previous.items() if k in present}
    changes = []
    settling = 0
    for ref in ready:
        key = partition_key(ref.name, ref.version)
        change = detect(ref, previous.get(key))
        if change is not None and change.trigger == "new_version" and _too_new(ref, settled_before_ms):
            settling += 1
        elif change is None:
            state[key] = seen(ref)  # aliases it lost, if any, are recorded without a run
        else:
            changes.append(change)
    changes.sort(key=lambda c: c.trigger != "new_version")
    budget = max(0, budget)
    requested, deferred = changes[:budget], changes[budget:]
    for change in requested:
        state[change.partition] = seen(change.ref)
    return TickPlan(
        requested=requested,
        deferred=deferred,
        retired=sorted(set(previous) - present, key=_version_order),
        state=state,
        watched=len(ready),
        not_ready=len(refs) - len(ready),
        settling=settling,
    )


def _too_new(ref: VersionRef, settled_before_ms: int | None) -> bool:
    return settled_before_ms is not None and (ref.created_ms or 0) > settled_before_ms


def _int(version: str) -> int:
    return int(version) if str(version).isdigit() else 0
