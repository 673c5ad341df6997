"""Fairness: numbers agree with Fairlearn, a model biased against a group is named, a fair one is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assurance.checks import fairness
from assurance.domain.findings import severity_rank
from tests import support as sv


@pytest.fixture(scope="module")
def fair_model():
    return sv.fit(sv.make_frame(3000, seed=21))


@pytest.fixture(scope="module")
def biased_model():
    """Trained with gender as a feature on history where half of the women's positives were recorded as 0."""
    train = sv.make_frame(4000, seed=22)
    rng = np.random.default_rng(23)
    hidden = (train["gender"] == "F") & (train[sv.LABEL] == 1) & (rng.random(len(train)) < 0.6)
    train.loc[hidden, sv.LABEL] = 0
    return sv.fit(train, features=[*sv.FEATURES, "gender"])


@pytest.fixture(scope="module")
def current():
    return sv.make_frame(6000, seed=24)


def test_rates_match_fairlearn(biased_model, current):
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_ratio,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    section = fairness.run(sv.inputs(current, current, biased_model))
    rates = section.tables["fairness"].set_index("group")
    y = current[sv.LABEL].to_numpy()
    pred = biased_model.score(current)["prediction"].astype(int).to_numpy()
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y,
        y_pred=pred,
        sensitive_features=current["gender"],
    )
    for metric in ("selection_rate", "tpr", "fpr"):
        assert np.allclose(rates.loc[["F", "M"], metric], frame.by_group.loc[["F", "M"], metric]), metric
    summary = section.tables["fairness_summary"].set_index("attribute").loc["gender"]
    dp = demographic_parity_ratio(y, pred, sensitive_features=current["gender"])
    eo = equalized_odds_difference(y, pred, sensitive_features=current["gender"])
    assert summary["demographic_parity_ratio"] == pytest.approx(dp)
    assert summary["equalized_odds_difference"] == pytest.approx(eo)


def test_biased_model_is_named_by_group(biased_model, current):
    section = fairness.run(sv.inputs(current, current, biased_model))
    by_check = {f.check: f for f in section.findings}
    assert by_check["fairness.demographic_parity"].subject == "gender=F"
    assert by_check["fairness.equalized_odds"].subject == "gender=F"
    assert by_check["fairness.demographic_parity"].category == "fairness"
    assert by_check["fairness.demographic_parity"].observed < 0.8
    assert "| gender |" in section.summary


def test_fair_model_has_no_finding(fair_model, current):
    section = fairness.run(sv.inputs(current, current, fair_model))
    serious = [f for f in section.findings if severity_rank(f.severity) <= severity_rank("medium")]
    assert serious == []
    summary = section.tables["fairness_summary"].iloc[0]
    assert summary["demographic_parity_ratio"] > 0.9 and summary["equalized_odds_difference"] < 0.05


def test_a_small_group_is_judged_by_whether_chance_explains_its_gap(fair_model, current):
    odd = current.copy()
    odd.loc[:14, "gender"] = "X"  # 15 rows whose outcomes all went one way: no accident
    odd.loc[:14, sv.LABEL] = 1
    odd.loc[15:29, "gender"] = "Y"  # 15 ordinary rows: whatever its rates, chance explains them
    section = fairness.run(sv.inputs(odd, odd, fair_model))
    rates = section.tables["fairness"].set_index("group")
    assert rates.loc["X", "support"] == 15 and rates.loc["Y", "support"] == 15
    subjects = {f.subject for f in section.findings}
    assert "gender=X" in subjects and "gender=Y" not in subjects
    tests = section.tables["fairness_tests"]
    assert {"p_value", "q_value", "n", "against_n", "material", "flagged"} <= set(tests.columns)
    assert not tests.loc[tests["subject"] == "gender=Y", "flagged"].any()


def test_unlabelled_data_gives_selection_rates_only(biased_model, current):
    unlabelled = current.drop(columns=[sv.LABEL])
    section = fairness.run(sv.inputs(unlabelled, unlabelled, biased_model))
    assert any("need labels" in s for s in section.skipped)
    assert [f.check for f in section.findings] == ["fairness.demographic_parity"]
    assert section.tables["fairness"]["tpr"].isna().all()


def test_absent_attribute_and_regressor_are_skipped(fair_model, current):
    section = fairness.run(
        sv.inputs(current, current, fair_model, tags={"assurance.protected": "gender,ethnicity"})
    )
    assert any("ethnicity" in s for s in section.skipped) and list(
        section.tables["fairness"]["attribute"].unique()
    ) == ["gender"]
    assert [(f.category, f.check, f.subject, f.severity) for f in section.findings] == [
        ("documentation", "fairness.tag_column_missing", "ethnicity", "medium")
    ]

    from sklearn.linear_model import LinearRegression

    from assurance.scoring.models import from_estimator

    frame = pd.DataFrame({"x": np.arange(200.0), "gender": ["F", "M"] * 100})
    frame["y"] = frame["x"] * 2
    regressor = from_estimator(LinearRegression().fit(frame[["x"]], frame["y"]), ["x"])
    skipped = fairness.run(sv.inputs(frame, None, regressor, label="y"))
    assert skipped.tables == {} and "regression" in skipped.skipped[0]


def test_gap_between_small_groups_within_noise_is_not_judged():
    from assurance.checks.rows import Outcomes
    from assurance.policy.model import Policy

    def judge(scale: int):
        selected = ([1] * 10 + [0] * 110 + [1] * 15 + [0] * 105) * scale
        frame = pd.DataFrame({"g": (["A"] * 120 + ["B"] * 120) * scale})
        prediction = pd.Series(selected)
        data = Outcomes("current", frame, prediction, prediction, None, "binary", 1)
        limits = Policy().thresholds.fairness
        rates = fairness.group_rates(data, "g")
        tests = pd.DataFrame(fairness.rate_tests(rates, limits), columns=fairness.TESTS_COLUMNS[:-2])
        return fairness.disparities(rates), fairness.findings(
            fairness.judge(tests, limits.alpha), "current", Policy()
        )

    summary, found = judge(1)
    assert summary["demographic_parity_ratio"] == pytest.approx(10 / 15) and found == []
    summary, found = judge(10)
    assert [(f.check, f.subject) for f in found] == [("fairness.demographic_parity", "g=A")]


def test_an_intersection_treated_unequally_is_named_when_each_attribute_alone_looks_fair(fair_model):
    """The model misses extra positives of women in the south and east and of men in the north and west:
    every gender and every region holds as many of them as any other, so only the pairs show it."""
    current = sv.make_frame(8000, seed=27)
    predicted = fair_model.score(current)["prediction"].astype(int).to_numpy()
    disadvantaged = ((current["gender"] == "F") & current["region"].isin(["south", "east"])) | (
        (current["gender"] == "M") & current["region"].isin(["north", "west"])
    )
    missed = disadvantaged & (predicted == 0) & (np.random.default_rng(26).random(len(current)) < 0.5)
    current.loc[missed, sv.LABEL] = 1
    tags = {"assurance.protected": "gender,region"}
    section = fairness.run(sv.inputs(current, current, fair_model, tags=tags))
    tests = section.tables["fairness_tests"]
    assert not tests.loc[tests["attribute"].isin(["gender", "region"]), "flagged"].any()
    subjects = {f.subject for f in section.findings}
    planted = {
        f"gender={g} & region={r}" for g, rs in (("F", "south east"), ("M", "north west")) for r in rs.split()
    }
    assert subjects and subjects <= planted
    assert "gender & region" in set(section.tables["fairness_summary"]["attribute"])

    fair = fairness.run(sv.inputs(sv.make_frame(8000, seed=28), None, fair_model, tags=tags))
    assert [f for f in fair.findings if severity_rank(f.severity) <= severity_rank("medium")] == []
