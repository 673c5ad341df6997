"""Robustness: a fragile feature is named, a smooth model is not, missing-value failures follow the policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assurance.checks import robustness
from assurance.scoring.models import ScoringModel, from_estimator
from tests import support as sv


@pytest.fixture(scope="module")
def healthy():
    return sv.inputs(sv.make_frame(3000, 61), sv.make_frame(3000, 62), sv.fit(sv.make_frame(3000, 60)))


def test_smooth_model_passes_and_missing_failures_are_recorded(healthy):
    section = robustness.run(healthy)
    assert section.findings == []
    rows = section.tables["robustness"].set_index(["feature", "perturbation"])
    assert rows.loc[("income", "noise"), "rows"] == 2000 and rows.loc[("income", "noise"), "flip_rate"] < 0.05
    assert rows.loc[("channel", "swap"), "rows"] < 2000 and "noise" not in rows.loc["channel"].index
    assert "NaN" in rows.loc[("income", "missing"), "error"]
    assert section.metrics["perturbations_failed"] == 3


def test_missing_failures_become_a_finding_when_the_policy_says_so(healthy):
    strict = sv.policy_with({"robustness.missing_failure_is_finding": True})
    section = robustness.run(
        sv.inputs(healthy.reference.frame, healthy.current.frame, healthy.model, policy=strict)
    )
    assert [(f.check, f.subject, f.severity) for f in section.findings] == [
        ("robustness.missing_unsupported", "missing values", "low")
    ]
    assert "income" in section.findings[0].message


def test_fragile_feature_is_named():
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(63)
    frame = pd.DataFrame({"x": rng.uniform(0, 1, 4000), "a": rng.uniform(0, 1, 4000)})
    frame["y"] = (np.sin(frame["x"] * 300) > 0).astype(int)
    tree = from_estimator(
        DecisionTreeClassifier(random_state=0).fit(frame[["x", "a"]], frame["y"]), ["x", "a"]
    )
    section = robustness.run(sv.inputs(frame, frame, tree, label="y"))
    assert [f.subject for f in section.findings] == ["x"]
    finding = section.findings[0]
    assert finding.category == "robustness" and finding.check == "robustness.sensitivity"
    assert finding.observed > 0.3 and finding.evidence == "robustness.parquet"


def test_judged_perturbations_come_from_the_policy(healthy):
    swaps = sv.policy_with({"robustness.judged": ["noise", "swap"]})
    section = robustness.run(
        sv.inputs(healthy.reference.frame, healthy.current.frame, healthy.model, policy=swaps)
    )
    assert [f.subject for f in section.findings] == ["channel"]
    assert "swap" in section.findings[0].message


def test_regressor_score_change_is_in_prediction_standard_deviations():
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(64)
    frame = pd.DataFrame({"x": rng.normal(size=2000), "w": rng.normal(size=2000)})
    frame["y"] = 2 * frame["x"]
    model = from_estimator(LinearRegression().fit(frame[["x", "w"]], frame["y"]), ["x", "w"])
    section = robustness.run(sv.inputs(frame, None, model, label="y"))
    rows = section.tables["robustness"].set_index(["feature", "perturbation"])
    assert rows["flip_rate"].isna().all()
    # noise of 0.05 std(x) moves 2x by 2 * 0.05 * std(x) * E[abs(z)], i.e. 0.05 * sqrt(2 / pi) std(pred)
    assert rows.loc[("x", "noise"), "score_change"] == pytest.approx(0.05 * np.sqrt(2 / np.pi), rel=0.1)
    assert section.findings == []


def test_model_that_cannot_score_is_skipped(healthy):
    def broken(frame):
        raise RuntimeError("server unavailable")

    model = ScoringModel(predict=broken, features=sv.FEATURES, task="binary")
    section = robustness.run(sv.inputs(healthy.reference.frame, None, model))
    assert section.tables == {} and "server unavailable" in section.skipped[0]


def test_flips_just_over_the_limit_on_few_rows_are_noise_and_many_rows_are_not():
    from assurance.checks.significance import excess_pvalue
    from assurance.policy.model import Policy

    limits = Policy().thresholds.robustness

    def rows(flips: int, total: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "feature": ["x"],
                "perturbation": ["noise"],
                "rows": [total],
                "flip_rate": [flips / total],
                "score_change": [0.0],
                "p_flip": [excess_pvalue(flips, total, limits.max_flip_rate)],
                "p_change": [1.0],
                "error": [""],
            }
        )

    assert not robustness.judge(rows(4, 50), limits)["exceeds"].iloc[0]  # 8% of 50: chance
    judged = robustness.judge(rows(160, 2000), limits)  # 8% of 2,000: real
    assert judged["exceeds"].iloc[0] and judged["q_value"].iloc[0] < 1e-4
