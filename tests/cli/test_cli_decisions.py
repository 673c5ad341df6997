"""Governance on the record, end to end: `decide`, `assign` and `close` as a user runs them (real processes)
against a real sqlite registry, between two real runs of the per-version graph, then the portfolio twice.

The story: version 1 goes behind `production` with neither approval nor model card nor use case, and the
first run holds it. A reviewer approves it anyway, with conditions; the owner is assigned the missing use
case; the approval finding and the model card finding are both closed by hand, but only the approval is
really fixed (approval tags, dated before the first evidence), and the current data moves on. The second
run confirms one closure, reopens the other, and questions the approval.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime
from types import SimpleNamespace

import dagster as dg
import pandas as pd
import pytest

from assurance.evidence.store import MANIFEST, EvidenceStore
from assurance.governance.decisions import read_decisions
from assurance.governance.ledger import build_ledger
from assurance.settings import Settings
from tests.support import FEATURES, LABEL, classifier, make_frame

MODEL = "decided_check"
CONDITION_DUE = "2099-06-30"


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI")}
    return subprocess.run(
        [sys.executable, "-m", "assurance.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def finding_id(frame: pd.DataFrame, check: str, subject: str) -> str:
    return frame[(frame["check"] == check) & (frame["subject"] == subject)]["finding_id"].item()


def fingerprint_now(uri: str, version: str) -> str:
    from assurance.registry.client import Registry
    from assurance.registry.watch import fingerprint

    (ref,) = [r for r in Registry(uri).snapshot() if r.name == MODEL and r.version == version]
    return fingerprint(ref)


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """Version 1 behind production, undocumented and unapproved, assured once."""
    from mlflow import MlflowClient

    from assurance.cli.launcher import run_version
    from assurance.demo.registry_builder import embedded_tracking_uri, register_version

    root = tmp_path_factory.mktemp("decisions")
    uri = embedded_tracking_uri(root)
    training = make_frame(2000, 0)
    model = classifier().fit(training[FEATURES], training[LABEL])
    version = register_version(
        MODEL,
        model,
        make_frame(2000, 1),
        make_frame(2000, 2),
        label=LABEL,
        features=FEATURES,
        data_dir=root / "data",
        tracking_uri=uri,
        model_tags={"owner": "retention-team"},
        aliases=["production"],
    )
    client = MlflowClient(uri, uri)
    registered = pd.Timestamp(client.get_model_version(MODEL, version).creation_timestamp, unit="ms", tz=UTC)
    settings = Settings(tracking_uri=uri, evidence_root=str(root / "evidence"))
    instance = dg.DagsterInstance.ephemeral()
    outcome = run_version(MODEL, version, settings, instance)
    assert outcome.success, outcome.error
    return SimpleNamespace(
        root=root,
        uri=uri,
        client=client,
        version=version,
        registered=registered,
        settings=settings,
        instance=instance,
        outcome=outcome,
        store=EvidenceStore(settings.evidence_root),
    )


@pytest.fixture(scope="module")
def second(first):
    """The people's records through the CLI, the registry changed, and the second run."""
    from assurance.checks.change_control import alias_history
    from assurance.cli.launcher import run_version
    from assurance.demo.registry_builder import write_parquet

    found = first.outcome.findings
    ids = {
        "approval": finding_id(found, "change_control.unapproved", "approval"),
        "card": finding_id(found, "documentation.missing_artifact", "model_card.md"),
        "use_case": finding_id(found, "documentation.missing_tag", "use_case"),
    }
    evidence, uri, v = first.settings.evidence_root, first.uri, first.version
    before = fingerprint_now(uri, v)
    decided = cli(
        "decide", MODEL, v, "--decision", "approve_with_conditions", "--by", "cro", "--reason",
        "business need; compensating manual review", "--condition", "record the approval", "--due",
        CONDITION_DUE, "--condition", "monthly review", "--tracking-uri", uri, "--evidence", evidence,
    )  # fmt: skip
    after = fingerprint_now(uri, v)
    assigned = cli(
        "assign", ids["use_case"], "--to", "retention-team", "--plan", "tag the intended use",
        "--due", "2099-12-31", "--by", "mrm-lead", "--evidence", evidence,
    )  # fmt: skip
    closed = [
        cli("close", ids["approval"], "--evidence", "https://tickets.example.com/CHG-9", "--by", "cro",
            "--note", "approval recorded", "--evidence-root", evidence),
        cli("close", ids["card"], "--evidence", "https://tickets.example.com/DOC-1", "--by", "owner",
            "--evidence-root", evidence),
    ]  # fmt: skip
    claimed = build_ledger(first.store).set_index("finding_id")
    # the approval is really recorded, dated after registration and before the first run saw the version
    # live (so before its first evidence too); the card is not
    seen_live = alias_history(first.store, MODEL, v)["observed_at"].min()
    approved_at = first.registered + (seen_live - first.registered) / 2
    for key, value in {
        "approval.ticket": "CHG-9",
        "approval.approved_by": "cro",
        "approval.approved_at": approved_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "assurance.current": write_parquet(make_frame(2000, 7), first.root / "data" / "june.parquet"),
    }.items():
        first.client.set_model_version_tag(MODEL, v, key, value)
    again = run_version(MODEL, v, first.settings, first.instance)
    assert again.success, again.error
    return SimpleNamespace(
        ids=ids,
        fingerprints=(before, after),
        decided=decided,
        assigned=assigned,
        closed=closed,
        claimed=claimed,
        outcome=again,
        ledger=build_ledger(first.store).set_index("finding_id"),
    )


def test_decide_binds_the_decision_to_the_evidence_and_tags_the_version_without_starting_a_run(first, second):
    assert second.decided.returncode == 0, second.decided.stderr
    run_id = first.outcome.summary["run_id"]
    assert (
        f"Recorded approve_with_conditions of {MODEL} version {first.version} by cro" in second.decided.stdout
    )
    assert f"bound to run {run_id}" in second.decided.stdout and "recommended hold" in second.decided.stdout
    (record,) = read_decisions(first.store).to_dict("records")
    manifest = first.store.read_bytes(f"{first.store.version_path(MODEL, first.version)}/{run_id}/{MANIFEST}")
    assert (record["run_id"], record["recommendation"]) == (run_id, "hold")
    assert record["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    assert record["conditions"] == [
        {"condition": "record the approval", "due": "2099-07-01T00:00:00+00:00"},
        {"condition": "monthly review", "due": None},
    ]
    tags = first.client.get_model_version(MODEL, first.version).tags
    assert tags["assurance.decision"] == "approve_with_conditions" and tags["assurance.decision.by"] == "cro"
    assert (
        tags["assurance.decision.run_id"] == run_id
        and tags["assurance.decision.at"] == record["decided_at"].isoformat()
    )
    before, after = second.fingerprints
    assert before == after  # the registry sensor sees no change: recording a decision starts no run


def test_decide_refuses_what_it_cannot_stand_on(first, tmp_path):
    empty = cli(
        "decide", MODEL, first.version, "--decision", "hold", "--by", "cro", "--reason", "x",
        "--tracking-uri", first.uri, "--evidence", str(tmp_path / "no-evidence"),
    )  # fmt: skip
    assert empty.returncode == 2 and "has no published evidence" in empty.stderr
    assert "Traceback" not in empty.stderr
    unknown = cli(
        "decide", MODEL, "99", "--decision", "hold", "--by", "cro", "--reason", "x",
        "--tracking-uri", first.uri, "--evidence", first.settings.evidence_root,
    )  # fmt: skip
    assert unknown.returncode == 2 and "not found in the registry" in unknown.stderr
    stray_due = cli(
        "decide", MODEL, first.version, "--decision", "approve_with_conditions", "--by", "cro",
        "--reason", "x", "--due", "2099-01-01", "--condition", "y",
    )  # fmt: skip
    assert stray_due.returncode == 2 and "--due dates the --condition just before it" in stray_due.stderr
    unconditional = cli(
        "decide", MODEL, first.version, "--decision", "approve_with_conditions", "--by", "cro",
        "--reason", "x", "--tracking-uri", first.uri, "--evidence", first.settings.evidence_root,
    )  # fmt: skip
    assert unconditional.returncode == 2 and "needs at least one --condition" in unconditional.stderr


def test_the_next_run_confirms_a_real_fix_and_reopens_a_claimed_one(second):
    assert all(p.returncode == 0 for p in second.closed), [p.stderr for p in second.closed]
    assert "the next run of the version confirms the closure" in second.closed[0].stdout
    approval, card = second.ids["approval"], second.ids["card"]
    for fid in (approval, card):  # after `close`, before the next run: closed on someone's word
        assert (second.claimed.loc[fid, "status"], second.claimed.loc[fid, "verified"]) == ("closed", False)
    fixed = second.ledger.loc[approval]
    assert (fixed["status"], fixed["verified"]) == ("closed", True)
    assert fixed["closed_by"] == second.outcome.summary["run_id"]
    assert (fixed["closed_manually_by"], fixed["closure_evidence"]) == (
        "cro",
        "https://tickets.example.com/CHG-9",
    )
    assert (
        fixed["closure_note"] == "approval recorded" and fixed["resolved_at"] == fixed["closed_manually_at"]
    )
    reopened = second.ledger.loc[card]
    assert (reopened["status"], reopened["verified"]) == ("open", False)
    assert (
        "Closed by owner" in reopened["note"]
        and f"run {second.outcome.summary['run_id']} reproduced it" in reopened["note"]
    )
    assert approval not in set(second.outcome.findings["finding_id"])
    assert card in set(second.outcome.findings["finding_id"])


def test_an_assignment_is_on_the_ledger_with_its_plan_and_due_date(second):
    assert second.assigned.returncode == 0, second.assigned.stderr
    assert "to retention-team, due 2100-01-01" in second.assigned.stdout
    row = second.ledger.loc[second.ids["use_case"]]
    assert (row["status"], row["assignee"], row["plan"], row["assigned_by"]) == (
        "open",
        "retention-team",
        "tag the intended use",
        "mrm-lead",
    )
    assert row["due"] == pd.Timestamp("2100-01-01", tz=UTC) and not row["overdue"]


def test_the_second_run_questions_the_approval(first, second):
    def checks(frame):
        return set(frame.loc[frame["category"] == "change_control", "check"])

    assert checks(first.outcome.findings) == {"change_control.unapproved"}
    assert checks(second.outcome.findings) == {
        "change_control.approval_before_evidence",
        "change_control.approval_overrules_hold",
        "change_control.approval_outdated",
    }
    messages = second.outcome.findings.set_index("check")["message"]
    assert "overrules the hold recommended by run" in messages["change_control.approval_overrules_hold"]
    outdated = messages["change_control.approval_outdated"]
    assert "but this run" in outdated and "current data changed" in outdated
    assert "approval tags" in messages["change_control.approval_before_evidence"]


def test_two_portfolio_runs_give_a_kpi_trend_in_status_and_the_report(first, second):
    from assets.portfolio import portfolio_assets
    from assurance.governance.portfolio import read_kpi_history
    from resources import build_resources

    for _ in range(2):
        result = dg.materialize(
            portfolio_assets, resources=build_resources(first.settings), instance=first.instance
        )
        assert result.success
    history = read_kpi_history(first.store)
    assert len(history) == 2 and history["median_days_to_decision"].notna().all()
    report = first.store.read_bytes("_portfolio/report.html").decode()
    assert "KPI trend (last 2 portfolio runs)" in report and "sla_adherence" in report
    status = cli("status", "--tracking-uri", first.uri, "--evidence", first.settings.evidence_root)
    assert status.returncode == 0, status.stderr
    assert "KPI trend (last 2 of 2 portfolio runs, oldest first):" in status.stdout
    assert "median_days_to_decision" in status.stdout.split("KPI trend")[1]
    assert datetime.now(UTC).strftime("%Y-%m-%d") in status.stdout
