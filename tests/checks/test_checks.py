"""Check declarations: each check is declared once, with its category, description and default severity."""

from __future__ import annotations

import pytest

from assurance.checks.catalog import all_analyses, all_checks, check_name
from assurance.domain.checks import CheckSpec
from assurance.policy.model import Policy

# The policy-wide severity of every check under the default policy. It held in the default YAML's
# `severity:` block before the defaults moved into the CheckSpecs; a change here changes findings.
DEFAULT_SEVERITIES = {
    "data.unavailable": "high",
    "data.label_missing": "medium",
    "predictions.failed": "high",
    "monitoring.analysis_failed": "high",
    "monitoring.required_analysis": "medium",
    "performance.overfitting": "medium",
    "leakage.train_holdout_overlap": "high",
    "performance.label_unusable": "medium",
    "challenger.worse": "high",
    "predictions.partial": "medium",
    "schema.missing_column": "high",
    "schema.type_mismatch": "medium",
    "quality.missing_values": "medium",
    "quality.out_of_range": "medium",
    "quality.unseen_categories": "medium",
    "quality.duplicates": "low",
    "drift.feature": "medium",
    "drift.dataset": "high",
    "drift.prediction": "medium",
    "drift.label": "medium",
    "performance.degradation": "high",
    "performance.estimated_degradation": "medium",
    "performance.floor": "high",
    "performance.ceiling": "medium",
    "reproducibility.metric_mismatch": "high",
    "slices.underperforming": "medium",
    "slices.tag_column_missing": "low",
    "fairness.tag_column_missing": "medium",
    "fairness.demographic_parity": "high",
    "fairness.equalized_odds": "high",
    "fairness.calibration": "medium",
    "leakage.label_proxy": "high",
    "leakage.strong_feature": "info",
    "leakage.dominant_feature": "low",
    "leakage.shared_rows": "medium",
    "leakage.id_feature": "medium",
    "explainability.attribution_drift": "medium",
    "robustness.sensitivity": "medium",
    "robustness.missing_unsupported": "low",
    "documentation.missing_artifact": "medium",
    "documentation.incomplete_artifact": "medium",
    "documentation.missing_tag": "medium",
    "documentation.invalid_risk_tier": "medium",
    "monitoring.missing_tag": "medium",
    "monitoring.mlflow_run": "low",
    "change_control.unapproved": "critical",
    "change_control.approval_predates_version": "high",
    "change_control.approved_after_alias": "high",
    "change_control.approval_before_evidence": "low",
    "change_control.approval_overrules_hold": "high",
    "change_control.approval_outdated": "high",
}


def test_every_check_is_declared_once_with_its_default_severity():
    specs = all_checks()
    assert len({s.name for s in specs}) == len(specs)
    assert {s.name: s.severity for s in specs} == DEFAULT_SEVERITIES
    policy = Policy()
    assert {s.name: policy.severity(s) for s in specs} == DEFAULT_SEVERITIES


def test_tier_overrides_come_first_then_the_policy_then_the_default():
    spec = next(s for s in all_checks() if s.name == "documentation.missing_artifact")
    policy = Policy()
    assert policy.severity(spec) == "medium"
    assert policy.severity(spec, "high") == "high"
    assert policy.severity(spec, "low") == "medium"
    custom = Policy({**policy.data, "severity": {spec.name: "low"}})
    assert custom.severity(spec) == "low" and custom.severity(spec, "high") == "high"


def test_asset_check_names_come_from_the_specs():
    names = [check_name(spec.name) for analysis in all_analyses() for spec in analysis.checks]
    assert len(set(names)) == len(names)
    assert "drift_feature" in names and "data_unavailable" in names


@pytest.mark.parametrize(
    "args,match",
    [
        (("drift.feature", "weather", "d", "high"), "category"),
        (("drift.feature", "drift", "d", "urgent"), "severity"),
        (("drift", "drift", "d", "high"), "<area>.<what>"),
    ],
)
def test_a_spec_with_an_unknown_category_or_severity_is_refused(args, match):
    with pytest.raises(ValueError, match=match):
        CheckSpec(*args)


def test_a_spec_builds_its_findings_with_its_own_category():
    spec = CheckSpec("leakage.id_feature", "leakage", "An ID is a feature.", "medium")
    finding = spec.finding("customer_id", "high", "drop it", observed=1.0, evidence="leakage.parquet")
    assert (finding.category, finding.check, finding.severity) == ("leakage", "leakage.id_feature", "high")
