"""Alerts that reach people: new critical or high findings, findings past their due date, and runs that failed.

Each alert is one JSON object posted to the configured webhook (ASSURANCE_ALERT_WEBHOOK: any endpoint
that takes a JSON POST; the `text` field makes it readable in chat tools that show it). Without a
webhook the alert is only logged. With one, alerts go through the outbox (`assurance.governance.outbox`),
which posts them at least once, retrying across sensor ticks. Plain Python (stdlib urllib).

Every alert carries `alert_id`, a hash of what it is about: the event, model, version, finding id and
evidence run id of a finding alert, the event, model, version, finding id and due date of an overdue
alert (so a finding is reported overdue once per due date), or the event and Dagster run id of a
run-failure alert. The same alert always has the same id, so a receiver that sees an id twice (a retry
after a post whose answer was lost) can drop the second copy.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from typing import Any

import pandas as pd

from assurance.domain.errors import AlertDeliveryError
from assurance.evidence.history import read_table
from assurance.evidence.store import EvidenceStore

ALERT_SEVERITIES = ("critical", "high")
TIMEOUT_SECONDS = 5.0


def dagster_run_link(dagster_url: str | None, run_id: str) -> str | None:
    """Link to the run in the Dagster UI when its URL is known (ASSURANCE_DAGSTER_URL)."""
    base = (dagster_url or "").strip().rstrip("/")
    return f"{base}/runs/{run_id}" if base else None


def alert_id(*parts: object) -> str:
    """Hash of what an alert is about: stable across retries and restarts, so receivers can drop repeats."""
    return hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:16]


def severe_open(findings: pd.DataFrame | None) -> pd.DataFrame:
    """Open findings of alerting severity (critical, high)."""
    if findings is None or findings.empty:
        return pd.DataFrame(columns=["finding_id", "severity", "check", "subject", "message"])
    mask = findings["severity"].isin(ALERT_SEVERITIES) & (findings["status"] == "open")
    return findings[mask]


def new_severe_findings(current: pd.DataFrame | None, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Critical/high open findings of this run that were not critical/high and open in the previous run.

    A finding that escalated (medium before, high now) is new; one that merely reproduces is not.
    """
    now = severe_open(current)
    before = set(severe_open(previous)["finding_id"])
    return now[~now["finding_id"].isin(before)]


def finding_payload(finding: Mapping[str, Any]) -> dict[str, str]:
    """The finding as every alert about one carries it."""
    return {
        "id": str(finding["finding_id"]),
        "severity": str(finding["severity"]),
        "check": str(finding.get("check", "")),
        "subject": str(finding.get("subject", "")),
        "message": str(finding["message"]),
    }


def finding_alert(
    model: str, version: str, run_id: str, finding: Mapping[str, Any], report: str | None
) -> dict:
    """The JSON posted for one new critical/high finding."""
    severity = str(finding["severity"])
    message = str(finding["message"])
    event = "assurance.finding"
    return {
        "alert_id": alert_id(event, model, version, finding["finding_id"], run_id),
        "event": event,
        "model": model,
        "version": str(version),
        "run_id": run_id,
        "finding": finding_payload(finding),
        "report": report,
        "text": f"[{severity.upper()}] {model} version {version}: {message}"
        + (f" Report: {report}" if report else ""),
    }


def run_failure_alert(
    model: str | None, version: str | None, dagster_run_id: str, job: str, error: str, link: str | None
) -> dict:
    """The JSON posted when an assurance run fails (the product could not work: registry, storage, bug)."""
    subject = f"{model} version {version}" if model else f"job {job}"
    event = "assurance.run_failure"
    return {
        "alert_id": alert_id(event, dagster_run_id),
        "event": event,
        "model": model,
        "version": version,
        "dagster_run_id": dagster_run_id,
        "job": job,
        "error": error,
        "link": link,
        "text": f"[RUN FAILED] assurance of {subject}: {error}" + (f" Run: {link}" if link else ""),
    }


def alerts_for_run(
    store: EvidenceStore, model: str, version: str, run_id: str, report: str | None
) -> list[dict]:
    """One alert per new critical/high finding of a published run, compared with the version's previous run."""
    runs = store.runs(model, version)
    if run_id not in runs:
        return []
    folder = store.version_path(model, version)
    current = read_table(store, f"{folder}/{run_id}", "findings")
    position = runs.index(run_id)
    previous = read_table(store, f"{folder}/{runs[position - 1]}", "findings") if position else None
    fresh = new_severe_findings(current, previous)
    return [finding_alert(model, version, run_id, row, report) for row in fresh.to_dict("records")]


def overdue_alert(finding: Mapping[str, Any]) -> dict:
    """The JSON posted for one open finding past its due date (a ledger row), naming who remediates it."""
    event = "assurance.overdue"
    due = pd.Timestamp(finding["due"])
    model, version, severity = str(finding["model"]), str(finding["version"]), str(finding["severity"])
    assignee = finding.get("assignee") if isinstance(finding.get("assignee"), str) else None
    owner = f"assigned to {assignee}" if assignee else "not assigned (assurance assign)"
    return {
        "alert_id": alert_id(event, model, version, finding["finding_id"], due.isoformat()),
        "event": event,
        "model": model,
        "version": version,
        "finding": finding_payload(finding),
        "due": due.isoformat(),
        "assignee": assignee,
        "plan": finding.get("plan") if isinstance(finding.get("plan"), str) else None,
        "text": f"[OVERDUE {severity.upper()}] {model} version {version}: {finding['message']} "
        f"Due {due:%Y-%m-%d}, {owner}.",
    }


def overdue_alerts(ledger: pd.DataFrame) -> list[dict]:
    """One alert per open finding past its due date, most overdue first."""
    if ledger.empty:
        return []
    late = ledger[ledger["overdue"].astype(bool)].sort_values(["due", "model", "version", "finding_id"])
    return [overdue_alert(row) for row in late.to_dict("records")]


def encode_ids(ids: list[str]) -> str:
    """A compact cursor holding alert ids (about 9 bytes each once compressed)."""
    return base64.b64encode(zlib.compress("\n".join(sorted(ids)).encode(), 9)).decode()


def decode_ids(cursor: str | None) -> set[str]:
    """The alert ids an `encode_ids` cursor holds; none for no cursor or one this code did not write."""
    if not cursor:
        return set()
    try:
        return set(
            filter(None, zlib.decompress(base64.b64decode(cursor, validate=True)).decode().split("\n"))
        )
    except (binascii.Error, zlib.error, UnicodeDecodeError):
        return set()


def post_json(url: str, payload: Mapping[str, Any], timeout: float = TIMEOUT_SECONDS) -> None:
    """POST one JSON object; any answer outside 2xx, or no answer, is an AlertDeliveryError with its status."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "model-assurance-alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - operator-set URL
            status = response.status
    except urllib.error.HTTPError as exc:
        raise AlertDeliveryError(f"webhook {url} did not take the alert: {exc}", status=exc.code) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise AlertDeliveryError(f"webhook {url} did not take the alert: {exc}") from exc
    if not 200 <= status < 300:
        raise AlertDeliveryError(f"webhook {url} answered HTTP {status}", status=status)
