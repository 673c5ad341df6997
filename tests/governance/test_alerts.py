"""Alert payloads, which findings are new, and delivery to a real local webhook (and to a broken one)."""

from __future__ import annotations

import logging
import socket
import time

import pandas as pd
import pytest

from assurance.domain.errors import AlertDeliveryError
from assurance.evidence.store import EvidenceStore, new_run_id, parquet_bytes
from assurance.governance.alerts import (
    alerts_for_run,
    dagster_run_link,
    deliver,
    finding_alert,
    new_severe_findings,
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


def test_deliver_posts_json_to_the_webhook():
    payloads = [finding_alert("m", "1", "r", row, None) for row in CURRENT.head(2).to_dict("records")]
    with webhook_receiver() as hook:
        assert deliver(payloads, hook.url) == 2
    assert [p["finding"]["id"] for p in hook.received] == ["a", "b"]


def test_a_failing_webhook_is_logged_not_raised_and_not_retried_per_alert(caplog):
    payloads = [finding_alert("m", "1", "r", row, None) for row in CURRENT.to_dict("records")]
    with (
        webhook_receiver(status=500) as hook,
        caplog.at_level(logging.INFO, logger="assurance.governance.alerts"),
    ):
        assert deliver(payloads, hook.url) == 0
    assert len(hook.received) == 1
    assert "HTTP Error 500" in caplog.text and caplog.text.count("assurance alert:") == len(payloads)


def test_an_unreachable_webhook_fails_fast():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(AlertDeliveryError, match="did not take the alert"):
        post_json(f"http://127.0.0.1:{port}/hook", {"text": "x"})
    assert time.perf_counter() - start < 5


def test_without_a_webhook_alerts_are_logged(caplog):
    with caplog.at_level(logging.INFO, logger="assurance.governance.alerts"):
        assert deliver([finding_alert("m", "1", "r", CURRENT.iloc[0].to_dict(), None)], None) == 0
    assert "[HIGH] m version 1: Amount drifted." in caplog.text
