import pytest

from assurance.policy.model import Policy, PolicyError


def test_default_policy_has_every_part():
    policy = Policy.load()
    for key in ("tiers", "thresholds", "severity", "sla_days", "recommendation"):
        assert key in policy.data
    assert policy.sla_days("critical") < policy.sla_days("low")


def test_override_merges_key_by_key_and_changes_hash(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("thresholds:\n  quality:\n    duplicate_rate: 0.5\n")
    base, custom = Policy.load(), Policy.load(path)
    assert custom.threshold("quality.duplicate_rate") == 0.5
    assert custom.threshold("quality.missing_rate_increase") == base.threshold(
        "quality.missing_rate_increase"
    )
    assert custom.hash != base.hash
    assert custom.source == str(path)


@pytest.mark.parametrize("text,match", [("a: [", "not valid YAML"), ("- 1\n- 2\n", "mapping")])
def test_bad_policy_files_are_clear_errors(tmp_path, text, match):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=match):
        Policy.load(path)


def test_missing_policy_file_and_threshold():
    with pytest.raises(PolicyError, match="not found"):
        Policy.load("/nonexistent/policy.yaml")
    with pytest.raises(PolicyError, match="no threshold"):
        Policy.load().threshold("nothing.here")
