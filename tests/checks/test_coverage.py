"""Coverage: an analysis the tier requires that could not run is a finding with the analysis's reason."""

from __future__ import annotations

import pytest

from assurance.checks import fairness
from assurance.checks.catalog import all_analyses, failed_section
from assurance.checks.coverage import coverage_findings
from assurance.domain.errors import PolicyError
from assurance.policy.model import Policy
from tests import support as sv


@pytest.fixture(scope="module")
def model():
    return sv.fit(sv.make_frame(2000, seed=1))


def required(findings) -> dict[str, str]:
    return {f.subject: f.message for f in findings if f.check == "monitoring.required_analysis"}


def test_a_high_tier_version_without_protected_attributes_is_told_fairness_did_not_run(model):
    data = sv.inputs(
        sv.make_frame(1500, seed=2), sv.make_frame(800, seed=3), model, tags={"risk_tier": "high"}
    )
    data.record.tags.pop("assurance.protected")
    section = fairness.run(data)
    assert section.findings == [] and section.skipped
    found = required(coverage_findings(data.record, data.policy, [section]))
    assert list(found) == ["fairness"]
    assert "high tier requires the fairness analysis" in found["fairness"]
    assert section.skipped[0] in found["fairness"]


def test_a_fairness_analysis_that_ran_or_is_not_required_raises_nothing(model):
    data = sv.inputs(
        sv.make_frame(1500, seed=2), sv.make_frame(800, seed=3), model, tags={"risk_tier": "high"}
    )
    assert required(coverage_findings(data.record, data.policy, [fairness.run(data)])) == {}
    data.record.tags.pop("assurance.protected")
    data.record.tags["risk_tier"] = "low"
    assert required(coverage_findings(data.record, data.policy, [fairness.run(data)])) == {}


def test_a_failed_analysis_is_not_reported_twice(model):
    data = sv.inputs(sv.make_frame(500, seed=2), None, model, tags={"risk_tier": "high"})
    analysis = next(a for a in all_analyses() if a.key == "fairness")
    failed = failed_section(analysis, RuntimeError("boom"), data)
    assert required(coverage_findings(data.record, data.policy, [failed])) == {}


def test_the_policy_refuses_an_unknown_analysis_with_a_hint(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("tiers:\n  levels:\n    high:\n      required_analyses: [fairnes]\n")
    with pytest.raises(PolicyError, match="did you mean 'fairness'"):
        Policy.load(str(path))
