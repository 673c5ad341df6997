"""The alert outbox: every alert reaches the webhook at least once; none is lost while the webhook is down.

The alert sensors only queue alerts, and a sensor moves its cursor on only once its alerts are queued (a
tick that cannot queue fails, and the next one reads the same evidence again). One consumer, the
delivery sensor, posts them in delivery rounds, oldest first:

- a post the webhook takes moves the alert to `sent/`;
- when the webhook is down (no answer, a 5xx, 408 or 429) the round stops, so a dead endpoint costs one
  timeout per round, and every alert due in the round counts a failed attempt: each would have failed;
- when the webhook refuses one alert (any other 4xx) only that alert counts the attempt, so one alert
  the receiver cannot take never holds the others back;
- after its n-th failed attempt an alert waits `first_seconds * 2**(n-1)` (at most an hour) before it is
  due again; after `max_attempts` it moves to `undeliverable/` with its last error and the sensor log
  says so. Nothing is dropped silently.

Layout under the evidence root, one JSON object per alert named by its `alert_id`:
`_portfolio/alerts/pending/` (queued: the alert, attempts, next attempt time, last error),
`_portfolio/alerts/sent/` (with `sent_at`) and `_portfolio/alerts/undeliverable/` (with `given_up_at`).
Queueing is create-only and skips an alert already sent or given up, so reading the same evidence again
never sends an alert twice; after queueing only the single delivery sensor writes, so rounds never race.
What at-least-once leaves open: a post whose answer is lost, or a crash between a post and its record,
is posted again in a later round, and the receiver drops the copy by `alert_id`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from assurance.domain.errors import AlertDeliveryError
from assurance.evidence.store import PORTFOLIO, EvidenceStore, safe_segment

OUTBOX = f"{PORTFOLIO}/alerts"
PENDING, SENT, UNDELIVERABLE = "pending", "sent", "undeliverable"
MAX_DELAY_SECONDS = 3600
ROUND_LIMIT = 50  # posts per round: a large backlog drains over several ticks, within a tick's time limit


@dataclass(frozen=True)
class Backoff:
    """The retry budget and spacing (settings: ASSURANCE_ALERT_RETRY_SECONDS, ASSURANCE_ALERT_MAX_ATTEMPTS)."""

    first_seconds: float = 30
    max_attempts: int = 30
    max_seconds: float = MAX_DELAY_SECONDS

    def delay(self, attempts: int) -> timedelta:
        """The wait after an alert's `attempts`-th failed attempt: doubling, so a long outage costs few posts."""
        doublings = min(max(attempts - 1, 0), 32)
        return timedelta(seconds=min(self.first_seconds * 2**doublings, self.max_seconds))

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


@dataclass(frozen=True)
class Entry:
    """One queued alert and where its delivery stands; `position` keeps a batch's order."""

    alert: Mapping[str, Any]
    queued_at: datetime
    position: int = 0
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None

    @property
    def alert_id(self) -> str:
        return str(self.alert["alert_id"])

    def due(self, now: datetime) -> bool:
        return self.next_attempt_at is None or self.next_attempt_at <= now

    def failed(self, error: str, now: datetime, backoff: Backoff) -> Entry:
        attempts = self.attempts + 1
        return replace(
            self, attempts=attempts, next_attempt_at=now + backoff.delay(attempts), last_error=error
        )

    def to_json(self, **stamps: datetime) -> bytes:
        record = {
            "alert_id": self.alert_id,
            "alert": dict(self.alert),
            "queued_at": self.queued_at.isoformat(),
            "position": self.position,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "last_error": self.last_error,
            **{name: stamp.isoformat() for name, stamp in stamps.items()},
        }
        return json.dumps(record, indent=1, sort_keys=True, default=str).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Entry:
        record = json.loads(data)
        alert = dict(record["alert"])
        if "alert_id" not in alert:
            raise KeyError("alert_id")
        upcoming = record.get("next_attempt_at")
        return cls(
            alert=alert,
            queued_at=datetime.fromisoformat(record["queued_at"]),
            position=int(record.get("position", 0)),
            attempts=int(record.get("attempts", 0)),
            next_attempt_at=datetime.fromisoformat(upcoming) if upcoming else None,
            last_error=record.get("last_error"),
        )


class Outbox:
    """The queue of alerts in an evidence store (see the module docstring for its layout and guarantees)."""

    def __init__(self, store: EvidenceStore):
        self.store = store

    def path(self, state: str, alert_id: str) -> str:
        """Where an alert's record lives in `state`, relative to the evidence root."""
        return f"{OUTBOX}/{state}/{safe_segment(alert_id)}.json"

    def _abs(self, rel: str) -> str:
        return f"{self.store.base.rstrip('/')}/{rel}"

    def _exists(self, state: str, alert_id: str) -> bool:
        return self.store.fs.exists(self._abs(self.path(state, alert_id)))

    def _folder(self, state: str) -> None:
        self.store.makedirs(self._abs(f"{OUTBOX}/{state}"))

    def _write(self, state: str, entry: Entry, mode: str = "wb", **stamps: datetime) -> str:
        """Write a record; a local replacement goes through a rename, so a crash never leaves half a record
        (an object store's put is whole already)."""
        rel = self.path(state, entry.alert_id)
        target = self._abs(rel)
        staging = f"{target}.staging" if self.store.local and mode == "wb" else target
        with self.store.fs.open(staging, mode) as fh:
            fh.write(entry.to_json(**stamps))
        if staging != target:
            self.store.fs.mv(staging, target)
        return rel

    def enqueue(self, alerts: Iterable[Mapping[str, Any]], now: datetime) -> list[str]:
        """Queue alerts not queued, sent or given up before; returns the ids queued now."""
        self.store.refresh()
        self._folder(PENDING)
        queued = []
        for position, alert in enumerate(alerts):
            entry = Entry(alert=alert, queued_at=now, position=position)
            if self._exists(SENT, entry.alert_id) or self._exists(UNDELIVERABLE, entry.alert_id):
                continue
            try:
                self._write(PENDING, entry, mode="xb")
            except FileExistsError:
                continue
            queued.append(entry.alert_id)
        return queued

    def pending(self) -> tuple[list[Entry], list[str]]:
        """Queued alerts, oldest first, and the paths of records that cannot be read (kept for an operator)."""
        folder = self._abs(f"{OUTBOX}/{PENDING}")
        self.store.refresh()
        if not self.store.fs.exists(folder):
            return [], []
        paths = sorted(p for p in self.store.fs.ls(folder, detail=False) if p.endswith(".json"))
        entries: list[Entry] = []
        unreadable: list[str] = []
        if not paths:
            return entries, unreadable
        for path, data in self.store.fs.cat(paths, on_error="return").items():
            try:
                entries.append(Entry.from_json(data))
            except (TypeError, ValueError, KeyError):
                unreadable.append(path)
        entries.sort(key=lambda e: (e.queued_at, e.position, e.alert_id))
        return entries, sorted(unreadable)

    def retry_later(self, entry: Entry) -> None:
        self._write(PENDING, entry)

    def record_sent(self, entry: Entry, now: datetime) -> None:
        self._folder(SENT)
        self._write(SENT, entry, sent_at=now)
        self.store.fs.rm(self._abs(self.path(PENDING, entry.alert_id)))

    def give_up(self, entry: Entry, now: datetime) -> str:
        """Move an alert whose budget is spent to `undeliverable/`; returns where its record is."""
        self._folder(UNDELIVERABLE)
        rel = self._write(UNDELIVERABLE, entry, given_up_at=now)
        self.store.fs.rm(self._abs(self.path(PENDING, entry.alert_id)))
        return rel


@dataclass(frozen=True)
class Round:
    """What one delivery round did, for the sensor's tick."""

    sent: int = 0
    retrying: int = 0
    undeliverable: int = 0
    waiting: int = 0
    unreadable: int = 0
    error: str | None = None

    def summary(self) -> str:
        parts = [f"{self.sent} sent"]
        if self.retrying:
            parts.append(f"{self.retrying} to retry ({self.error})")
        if self.undeliverable:
            parts.append(f"{self.undeliverable} undeliverable (recorded under {OUTBOX}/{UNDELIVERABLE}/)")
        if self.waiting:
            parts.append(f"{self.waiting} waiting for their next attempt")
        if self.unreadable:
            parts.append(f"{self.unreadable} unreadable outbox records (see the log)")
        return ", ".join(parts)


def _attempt(
    post: Callable[[Mapping[str, Any]], None], alert: Mapping[str, Any]
) -> AlertDeliveryError | None:
    try:
        post(alert)
    except AlertDeliveryError as exc:
        return exc
    return None


def deliver_due(
    outbox: Outbox,
    post: Callable[[Mapping[str, Any]], None],
    backoff: Backoff,
    now: datetime,
    logger: Any,
    limit: int = ROUND_LIMIT,
) -> Round:
    """One delivery round: post the alerts due at `now`, oldest first, and record what became of each."""
    entries, unreadable = outbox.pending()
    for path in unreadable:
        logger.error(f"alert outbox record {path} cannot be read; it is kept for an operator to inspect")
    due = [e for e in entries if e.due(now)][:limit]
    down: AlertDeliveryError | None = None
    last: AlertDeliveryError | None = None
    sent = retrying = given_up = 0
    for entry in due:
        error = down or _attempt(post, entry.alert)
        if error is None:
            outbox.record_sent(entry, now)
            sent += 1
            continue
        last = error
        down = error if error.webhook_down else down
        charged = entry.failed(str(error), now, backoff)
        if backoff.exhausted(charged.attempts):
            where = outbox.give_up(charged, now)
            given_up += 1
            logger.error(
                f"alert {charged.alert_id} undeliverable after {charged.attempts} attempts ({error}); "
                f"recorded in {where}: {charged.alert.get('text', '')}"
            )
        else:
            outbox.retry_later(charged)
            retrying += 1
    if retrying:
        logger.warning(f"{retrying} alerts not delivered, retrying on a later tick: {last}")
    return Round(
        sent=sent,
        retrying=retrying,
        undeliverable=given_up,
        waiting=len(entries) - len(due),
        unreadable=len(unreadable),
        error=str(last) if last else None,
    )
