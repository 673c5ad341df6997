"""Alert payloads and their ids, which findings are new, and posting to a real local webhook (and to broken ones)."""

from __future__ import annotations

import socket
import time

import pandas as pd
import pytest

from assurance.domain.errors import AlertDeliveryError
from assurance.evidence.store import EvidenceStore, new_run_id, parquet_bytes
from assurance.governance.alerts import (
    alert_id,
    alerts_for_run,
    dagster_run_link,
    decode_ids,
    encode_ids,
    finding_alert,
    new_severe_findings,
    overdue_alert,
    overdue_alerts,
    post_json,
    run_failure_alert,
)
from tests.support import webhook_receiver


def findings(*rows) -> pd.DataFrame:
    cols = ["finding_id", "severity", "status", "check", "subject", "message"]
    return pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows], columns=cols)


CURRENT = findings(
    ("a", "high", "open", "drift.feature", "amount", "Amount drifted."),
    ("b", "critical", "open", "schema.missing_column", "rate", "Column rate is missing."),
    ("c", "high", "accepted", "fairness.parity", "sex", "Parity gap."),
    ("d", "medium", "open", "quality.missing_values", "tenure", "Tenure has gaps."),
    ("e", "high", "open", "performance.floor", "roc_auc", "AUC below floor."),
    ("f", "high", "open", "drift.prediction", "score", "Scores drifted."),
)
PREVIOUS = findings(
    ("e", "high", "open", "performance.floor", "roc_auc", "AUC below floor."),
    ("f", "medium", "open", "drift.prediction", "score", "Scores drifted."),
)


def test_new_severe_findings_are_open_critical_or_high_and_not_already_so_before():
    assert list(new_severe_findings(CURRENT, PREVIOUS)["finding_id"]) == ["a", "b", "f"]
    assert list(new_severe_findings(CURRENT, None)["finding_id"]) == ["a", "b", "e", "f"]
    assert new_severe_findings(findings(), PREVIOUS).empty


def test_finding_payload_names_model_version_finding_and_report():
    payload = finding_alert(
        "credit", "3", "20250101T000000Z-abc", CURRENT.iloc[1].to_dict(), "file:///e/report.html"
    )
    assert payload["model"] == "credit" and payload["version"] == "3"
    assert payload["finding"] == {
        "id": "b",
        "severity": "critical",
        "check": "schema.missing_column",
        "subject": "rate",
        "message": "Column rate is missing.",
    }
    assert payload["report"] == "file:///e/report.html"
    assert payload["text"].startswith("[CRITICAL] credit version 3: Column rate is missing.")


def test_run_failure_payload_links_the_run_when_the_ui_url_is_known():
    assert dagster_run_link(None, "r1") is None
    link = dagster_run_link("http://dagster.internal:3000/", "r1")
    payload = run_failure_alert("credit", "3", "r1", "assure_model_version", "step x failed", link)
    assert payload["link"] == "http://dagster.internal:3000/runs/r1"
    assert payload["event"] == "assurance.run_failure" and "step x failed" in payload["text"]


def test_alerts_for_a_published_run_compare_with_the_versions_previous_run(tmp_path):
    store = EvidenceStore(str(tmp_path))
    first, second = (
        new_run_id(pd.Timestamp("2025-01-01", tz="UTC")),
        new_run_id(pd.Timestamp("2025-02-01", tz="UTC")),
    )
    store.publish_run("credit", "3", first, {"findings.parquet": parquet_bytes(PREVIOUS)}, {})
    store.publish_run("credit", "3", second, {"findings.parquet": parquet_bytes(CURRENT)}, {})
    alerts = alerts_for_run(store, "credit", "3", second, "file:///r.html")
    assert [a["finding"]["id"] for a in alerts] == ["a", "b", "f"]
    assert [a["finding"]["id"] for a in alerts_for_run(store, "credit", "3", first, None)] == ["e"]
    assert alerts_for_run(store, "credit", "3", "not-published", None) == []


def test_alert_ids_are_stable_and_name_what_the_alert_is_about():
    row = CURRENT.iloc[0].to_dict()
    first = finding_alert("m", "1", "run-a", row, None)
    assert first["alert_id"] == finding_alert("m", "1", "run-a", row, "file:///other.html")["alert_id"]
    others = {
        finding_alert("m", "1", "run-b", row, None)["alert_id"],
        finding_alert("m", "2", "run-a", row, None)["alert_id"],
        finding_alert("m", "1", "run-a", CURRENT.iloc[1].to_dict(), None)["alert_id"],
        run_failure_alert("m", "1", "run-a", "job", "boom", None)["alert_id"],
    }
    assert first["alert_id"] not in others and len(others) == 4
    failure = run_failure_alert("m", "1", "dagster-run", "job", "boom", None)
    assert failure["alert_id"] == run_failure_alert("m", "1", "dagster-run", "job", "other", "x")["alert_id"]
    assert alert_id("a", None) == alert_id("a", "") and alert_id("a", "b") != alert_id("ab")


def test_overdue_alerts_name_the_finding_its_due_date_and_who_remediates_it():
    base = {
        "finding_id": "a",
        "model": "credit",
        "version": "3",
        "severity": "high",
        "check": "drift.feature",
        "subject": "amount",
        "message": "Amount drifted.",
        "due": pd.Timestamp("2025-02-01", tz="UTC"),
        "overdue": True,
        "assignee": None,
        "plan": None,
    }
    ledger = pd.DataFrame(
        [
            base,
            base
            | {
                "finding_id": "b",
                "due": pd.Timestamp("2025-01-15", tz="UTC"),
                "assignee": "bo",
                "plan": "refit",
            },
            base | {"finding_id": "c", "overdue": False},
        ]
    )
    late, later = overdue_alerts(ledger)
    assert [late["finding"]["id"], later["finding"]["id"]] == ["b", "a"]  # most overdue first
    assert late["event"] == "assurance.overdue" and late["due"] == "2025-01-15T00:00:00+00:00"
    assert (late["assignee"], late["plan"]) == ("bo", "refit")
    assert late["text"] == "[OVERDUE HIGH] credit version 3: Amount drifted. Due 2025-01-15, assigned to bo."
    assert "not assigned (assurance assign)" in later["text"]
    # once per finding and due date: the same due keeps the id, a new due date is a new alert
    assert overdue_alert(base)["alert_id"] == overdue_alert(base | {"assignee": "cy"})["alert_id"]
    assert (
        overdue_alert(base)["alert_id"]
        != overdue_alert(base | {"due": pd.Timestamp("2025-03-01", tz="UTC")})["alert_id"]
    )
    assert overdue_alerts(ledger.iloc[0:0]) == []


def test_alert_id_cursors_round_trip_and_forgive_a_foreign_cursor():
    ids = [f"{i:016x}" for i in range(500)]
    cursor = encode_ids(ids)
    assert decode_ids(cursor) == set(ids) and len(cursor) < 16 * len(ids) / 2
    assert decode_ids(None) == set() and decode_ids(encode_ids([])) == set()
    assert decode_ids("not a cursor!") == set()


def test_post_json_posts_the_alert():
    payload = finding_alert("m", "1", "r", CURRENT.iloc[0].to_dict(), None)
    with webhook_receiver() as hook:
        post_json(hook.url, payload)
    assert hook.accepted == [payload]


@pytest.mark.parametrize(
    ("status", "down"), [(503, True), (500, True), (429, True), (400, False), (404, False)]
)
def test_a_refusal_says_whether_the_webhook_is_down_or_refused_only_this_alert(status, down):
    with webhook_receiver(status=status) as hook, pytest.raises(AlertDeliveryError) as caught:
        post_json(hook.url, {"text": "x"})
    assert caught.value.status == status and caught.value.webhook_down is down
    assert f"HTTP Error {status}" in str(caught.value)


def test_an_unreachable_webhook_fails_fast():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(AlertDeliveryError, match="did not take the alert") as caught:
        post_json(f"http://127.0.0.1:{port}/hook", {"text": "x"})
    assert time.perf_counter() - start < 5
    assert caught.value.status is None and caught.value.webhook_down
