"""The alert outbox: backoff and budget, queueing once, and delivery rounds against a real local webhook."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from assurance.evidence.store import EvidenceStore
from assurance.governance.alerts import finding_alert, post_json
from assurance.governance.outbox import OUTBOX, PENDING, SENT, UNDELIVERABLE, Backoff, Outbox, deliver_due
from tests.support import webhook_receiver

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
log = logging.getLogger("tests.outbox")


def alerts(n: int, run_id: str = "r1") -> list[dict]:
    return [
        finding_alert(
            "credit",
            "3",
            run_id,
            {"finding_id": f"f{i}", "severity": "high", "message": f"Problem {i}."},
            None,
        )
        for i in range(n)
    ]


@pytest.fixture
def outbox(tmp_path) -> Outbox:
    return Outbox(EvidenceStore(str(tmp_path / "ev")))


def ids(payloads: list[dict]) -> list[str]:
    return [p["alert_id"] for p in payloads]


def stored(outbox: Outbox, state: str) -> list[str]:
    folder = outbox.store.root + f"/{OUTBOX}/{state}"
    fs = outbox.store.fs
    return (
        sorted(p.rsplit("/", 1)[-1].removesuffix(".json") for p in fs.ls(folder)) if fs.exists(folder) else []
    )


def test_backoff_doubles_from_the_first_delay_up_to_the_cap_and_the_budget_ends_retries():
    backoff = Backoff(first_seconds=30, max_attempts=5)
    waits = [backoff.delay(n).total_seconds() for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff.delay(10_000) == timedelta(hours=1)  # no overflow however long the outage
    assert [backoff.exhausted(n) for n in (1, 4, 5, 6)] == [False, False, True, True]
    assert Backoff(first_seconds=0).delay(7) == timedelta(0)
    default = Backoff()
    total = sum((default.delay(n) for n in range(1, default.max_attempts)), timedelta())
    assert timedelta(hours=20) < total < timedelta(hours=26)  # the documented "about a day"


def test_an_alert_is_queued_once_and_never_again_once_sent_or_given_up(outbox):
    batch = alerts(3)
    assert outbox.enqueue(batch, T0) == ids(batch)
    assert outbox.enqueue(batch, T0 + timedelta(seconds=5)) == []
    entries, unreadable = outbox.pending()
    assert [e.alert_id for e in entries] == ids(batch) and unreadable == []
    assert all(e.queued_at == T0 and e.attempts == 0 and e.due(T0) for e in entries)
    outbox.record_sent(entries[0], T0)
    outbox.give_up(entries[1], T0)
    assert outbox.enqueue(batch, T0 + timedelta(minutes=1)) == []
    assert stored(outbox, SENT) == [ids(batch)[0]] and stored(outbox, UNDELIVERABLE) == [ids(batch)[1]]
    assert stored(outbox, PENDING) == [ids(batch)[2]]


def test_a_down_webhook_costs_one_post_per_round_and_every_due_alert_waits_its_backoff(outbox):
    backoff = Backoff(first_seconds=30, max_attempts=5)
    batch = alerts(3)
    outbox.enqueue(batch, T0)
    with webhook_receiver(status=503) as hook:
        post = partial(post_json, hook.url)
        down = deliver_due(outbox, post, backoff, T0, log)
        assert len(hook.received) == 1 and hook.accepted == []
        assert (down.sent, down.retrying, down.waiting) == (0, 3, 0) and "HTTP Error 503" in down.error
        entries, _ = outbox.pending()
        assert {(e.attempts, e.next_attempt_at) for e in entries} == {(1, T0 + timedelta(seconds=30))}

        early = deliver_due(outbox, post, backoff, T0 + timedelta(seconds=29), log)
        assert len(hook.received) == 1 and (early.sent, early.retrying, early.waiting) == (0, 0, 3)

        hook.status = 200
        up = deliver_due(outbox, post, backoff, T0 + timedelta(seconds=30), log)
    assert ids(hook.accepted) == ids(batch) and (up.sent, up.retrying, up.waiting) == (3, 0, 0)
    assert stored(outbox, PENDING) == [] and stored(outbox, SENT) == sorted(ids(batch))
    sent = json.loads(outbox.store.read_bytes(outbox.path(SENT, ids(batch)[0])))
    assert sent["attempts"] == 1 and sent["sent_at"] == (T0 + timedelta(seconds=30)).isoformat()


def test_a_spent_budget_is_recorded_and_logged_never_retried_again(outbox, caplog):
    backoff = Backoff(first_seconds=0, max_attempts=2)
    (alert,) = alerts(1)
    outbox.enqueue([alert], T0)
    with webhook_receiver(status=503) as hook, caplog.at_level(logging.WARNING, logger=log.name):
        post = partial(post_json, hook.url)
        first = deliver_due(outbox, post, backoff, T0, log)
        second = deliver_due(outbox, post, backoff, T0 + timedelta(seconds=1), log)
        hook.status = 200
        after = deliver_due(outbox, post, backoff, T0 + timedelta(seconds=2), log)
    assert (first.retrying, first.undeliverable) == (1, 0) and (second.retrying, second.undeliverable) == (
        0,
        1,
    )
    assert len(hook.received) == 2 and hook.accepted == [] and after.sent == 0
    record = json.loads(outbox.store.read_bytes(outbox.path(UNDELIVERABLE, alert["alert_id"])))
    assert record["attempts"] == 2 and "HTTP Error 503" in record["last_error"] and record["alert"] == alert
    assert f"alert {alert['alert_id']} undeliverable after 2 attempts" in caplog.text
    assert alert["text"] in caplog.text and "undeliverable" in second.summary()


def test_an_alert_the_receiver_refuses_does_not_hold_back_the_others(outbox):
    backoff = Backoff(first_seconds=30, max_attempts=5)
    outbox.enqueue(alerts(3), T0)
    with webhook_receiver(status=400) as hook:
        refused = deliver_due(outbox, partial(post_json, hook.url), backoff, T0, log)
    assert len(hook.received) == 3 and refused.retrying == 3  # each one tried: the webhook itself is up


def test_a_round_posts_at_most_its_limit_oldest_first_and_charges_only_those(outbox):
    first, later = alerts(2, "r1"), alerts(2, "r2")
    outbox.enqueue(later, T0 + timedelta(seconds=1))
    outbox.enqueue(first, T0)
    with webhook_receiver() as hook:
        post = partial(post_json, hook.url)
        part = deliver_due(outbox, post, Backoff(), T0 + timedelta(seconds=2), log, limit=3)
        assert ids(hook.accepted) == ids(first + later)[:3] and (part.sent, part.waiting) == (3, 1)
        rest = deliver_due(outbox, post, Backoff(), T0 + timedelta(seconds=3), log, limit=3)
    assert ids(hook.accepted) == ids(first + later) and rest.sent == 1


def test_an_unreadable_record_is_reported_and_kept_while_the_rest_is_delivered(outbox, caplog):
    outbox.enqueue(alerts(1), T0)
    broken = f"{outbox.store.root}/{OUTBOX}/{PENDING}/broken.json"
    with open(broken, "w") as fh:
        fh.write('{"alert": ')
    with webhook_receiver() as hook, caplog.at_level(logging.ERROR, logger=log.name):
        done = deliver_due(outbox, partial(post_json, hook.url), Backoff(), T0, log)
    assert len(hook.accepted) == 1 and (done.sent, done.unreadable) == (1, 1)
    assert "broken.json cannot be read" in caplog.text and stored(outbox, PENDING) == ["broken"]
