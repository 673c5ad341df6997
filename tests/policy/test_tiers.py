import pytest

from assurance.policy.model import Policy, PolicyError
from assurance.policy.tiers import NO_RULE, decide_tier, derive_tier, matches
from tests.support import make_record


@pytest.fixture
def policy() -> Policy:
    return Policy()


def test_explicit_tag_wins_over_rules(policy):
    record = make_record(model_tags={"risk_tier": "Low", "assurance.protected": "sex"})
    tier, why = derive_tier(record, policy)
    assert tier == "low"
    assert "risk_tier" in why and "model" in why


def test_version_tag_named_as_source(policy):
    record = make_record(model_tags={"risk_tier": "low"}, version_tags={"risk_tier": "high"})
    decision = decide_tier(record, policy)
    assert (decision.tier, decision.source) == ("high", "tag")
    assert "version" in decision.rationale


def test_protected_attributes_make_high(policy):
    decision = decide_tier(make_record(model_tags={"assurance.protected": "sex,age"}), policy)
    assert (decision.tier, decision.source) == ("high", "rule")
    assert "protected" in decision.rationale


def test_use_case_regex_rule(policy):
    assert derive_tier(make_record(model_tags={"use_case": "Consumer LOAN approval"}), policy)[0] == "high"
    assert derive_tier(make_record(model_tags={"use_case": "internal research"}), policy)[0] == "low"


def test_default_when_nothing_matches(policy):
    decision = decide_tier(make_record(model_tags={"use_case": "churn outreach"}), policy)
    assert decision.tier == policy.tiers.default
    assert decision.source == "default"
    assert NO_RULE in decision.rationale


def test_invalid_tag_falls_back_and_says_so(policy):
    decision = decide_tier(make_record(model_tags={"risk_tier": "critical", "use_case": "hiring"}), policy)
    assert decision.tier == "high"
    assert "'critical' is not one of" in decision.rationale


def test_blank_tag_is_not_present(policy):
    assert not matches(
        make_record(model_tags={"assurance.protected": "  "}), {"tags_present": ["assurance.protected"]}
    )


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({"tag_equals": {"channel": "Customer"}}, True),
        ({"tag_equals": {"channel": ["batch", "customer"]}}, True),
        ({"tag_equals": {"channel": "batch"}}, False),
        ({"tags_absent": ["monitoring_url"]}, True),
        ({"tags_absent": ["channel"]}, False),
        ({"aliases_include": ["PRODUCTION"]}, True),
        ({"any": [{"tag_equals": {"channel": "batch"}}, {"tags_present": ["channel"]}]}, True),
        ({"all": [{"tags_present": ["channel"]}, {"tags_present": ["missing"]}]}, False),
        ({"not": {"tags_present": ["channel"]}}, False),
        ({"tags_present": ["channel"], "tag_matches": {"channel": "^cust"}}, True),
        ({"tags_present": ["channel"], "tag_matches": {"channel": "^batch"}}, False),
    ],
)
def test_conditions(when, expected):
    record = make_record(model_tags={"channel": "customer"}, aliases=["production"])
    assert matches(record, when) is expected


def test_policy_rules_drive_tier():
    policy = Policy().with_overrides(
        {
            "tiers": {
                "default": "low",
                "rules": [
                    {"tier": "high", "when": {"tag_equals": {"decision": "automated"}}, "why": "automated"}
                ],
            }
        }
    )
    assert derive_tier(make_record(model_tags={"decision": "Automated"}), policy) == ("high", "automated")
    assert derive_tier(make_record(), policy)[0] == "low"


@pytest.mark.parametrize(
    "rules",
    [
        [{"tier": "high", "when": {"tag_present": ["x"]}}],
        [{"tier": "extreme", "when": {"tags_present": ["x"]}}],
        [{"tier": "high", "when": {"tag_matches": {"x": "("}}}],
        [{"tier": "high", "when": {"tag_equals": ["x"]}}],
    ],
)
def test_policy_mistakes_are_policy_errors(rules):
    with pytest.raises(PolicyError):
        policy = Policy().with_overrides({"tiers": {"default": "low", "rules": rules}})
        derive_tier(make_record(model_tags={"x": "1"}), policy)
