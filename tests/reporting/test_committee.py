"""The committee parts of the version report: scope, conclusion by root cause, conditions, limitations,
residual risk, next review and sign-off, all derived from the run's own evidence."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from assurance.domain.findings import Finding, findings_frame
from assurance.domain.values import Section
from assurance.evidence.publication import review
from assurance.policy.model import Policy
from assurance.policy.recommendation import recommend
from assurance.reporting import committee
from tests.support import make_record

RECORD = make_record(name="credit", version="3", model_tags={"owner": "risk-team", "risk_tier": "high"})
FINDINGS = [
    Finding("drift", "drift.feature", "income", "medium", "Feature 'income' drifted."),
    Finding("data_quality", "quality.missing_values", "age", "high", "Column 'age' lost values."),
    Finding("performance", "performance.degradation", "roc_auc", "high", "ROC AUC dropped by 0.08."),
    Finding("documentation", "documentation.missing_tag", "use_case", "medium", "Tag use_case is not set."),
    Finding("robustness", "robustness.sensitivity", "tenure", "low", "Scores move with tenure noise."),
]


def frame(findings: list[Finding]) -> pd.DataFrame:
    return findings_frame(findings, RECORD, Policy())


def provenance(**extra) -> dict:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    return {
        "run_id": "20261201T000000Z-abcd",
        "policy_source": "default",
        "policy_hash": "f" * 64,
        "review": review(RECORD, Policy(), at),
        "data": {"reference": {"uri": "s3://b/ref.parquet", "rows": 8000, "fingerprint": "a" * 64}},
        **extra,
    }


def test_the_conclusion_groups_open_findings_by_where_they_come_from():
    found = frame(FINDINGS)
    part = committee.conclusion(recommend(found, Policy()), found)
    body = part.body
    assert "**hold**" in body
    assert body.index("data feed") < body.index("model") < body.index("documentation")
    assert "1 high, 1 medium" in body and "Column 'age' lost values." in body
    assert "process" not in body  # no change-control or monitoring finding is open


def test_conditions_name_owner_due_date_and_exit_criterion_for_each_medium_or_worse_finding():
    found = frame(FINDINGS)
    body = committee.conditions(recommend(found, Policy()), found).body
    assert body.count("a later run no longer reports") == 4  # the low robustness finding is no condition
    assert "`performance.degradation` on roc_auc" in body and "risk-team" in body
    due = found.loc[found["check"] == "performance.degradation", "due"].iloc[0]
    assert pd.Timestamp(due).date().isoformat() in body
    healthy = frame([])
    assert committee.conditions(recommend(healthy, Policy()), healthy).body.startswith("None")


def test_scope_tells_initial_validation_from_monitoring_and_names_the_data_windows():
    sections = [
        Section("drift", "Drift", tables={"drift": pd.DataFrame({"a": [1]})}),
        Section("fairness", "Fairness"),
    ]
    first = committee.scope(provenance(), sections, earlier_runs=0).body
    assert "initial validation" in first and "s3://b/ref.parquet, 8,000 rows" in first
    assert "high:" in first and "Drift" in first and "Fairness" not in first.split("Analyses run")[1]
    assert "monitoring: run 4 of this version" in committee.scope(provenance(), sections, earlier_runs=3).body


def test_limitations_residual_risk_and_sign_off_come_from_the_evidence():
    skipped = Section("fairness", "Fairness").skip(
        "no protected attributes: the version has no assurance.protected tag"
    )
    prov = provenance(data={"current": {"uri": "x", "rows": 10, "sampling": {"rows_total": 100}}})
    limits = committee.limitations([skipped], prov).body
    assert (
        "Fairness: no protected attributes" in limits
        and "Current data was judged on a seeded sample" in limits
    )
    found = frame(FINDINGS)
    found.loc[found["check"] == "drift.feature", "status"] = "accepted"
    risk = committee.residual_risk(found, [skipped]).body
    assert (
        "1 accepted risk(s)" in risk and "1 low or informational" in risk and "unassessed: Fairness" in risk
    )
    sign = committee.sign_off(provenance()).body
    assert "Next review due:** 2027-03-01" in sign  # the high tier revalidates every 90 days
    assert all(role in sign for role in committee.SIGNERS)
