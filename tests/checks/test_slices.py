"""Slice performance: a planted bad region is found and named; a healthy version raises nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assurance.checks import slices
from assurance.domain.findings import severity_rank
from tests import support as sv


@pytest.fixture(scope="module")
def model():
    return sv.fit(sv.make_frame(3000, seed=1))


@pytest.fixture(scope="module")
def reference():
    return sv.make_frame(6000, seed=2)


def medium_or_worse(section):
    return [f for f in section.findings if severity_rank(f.severity) <= severity_rank("medium")]


def test_scrambled_region_is_named(model, reference):
    current = sv.scramble_labels(sv.make_frame(8000, seed=3), "region", "east", seed=4)
    section = slices.run(sv.inputs(reference, current, model))
    subjects = [f.subject for f in section.findings]
    assert subjects[0] == "region=east"
    assert all("region=east" in s for s in subjects), subjects
    assert section.findings[0].category == "performance"
    assert section.findings[0].check == "slices.underperforming"
    frame = section.tables["slices"]
    assert frame.iloc[0]["slice"] == "region=east" and frame.iloc[0]["role"] == "current"
    assert frame.iloc[0]["value"] < frame.iloc[0]["overall"] - 0.1
    assert "region=east" in section.summary.split("Worst slices:")[1].splitlines()[4]


def test_healthy_version_has_no_finding(model, reference):
    section = slices.run(sv.inputs(reference, sv.make_frame(8000, seed=5), model))
    assert medium_or_worse(section) == []
    frame = section.tables["slices"]
    assert set(frame["columns"]) == {"region", "channel", "region&channel"}
    assert (frame.loc[frame["tested"], "auc"] > 0.7).all()


def test_unlabelled_current_falls_back_to_reference(model, reference):
    current = sv.make_frame(500, seed=6).drop(columns=[sv.LABEL])
    section = slices.run(sv.inputs(reference, current, model))
    assert set(section.tables["slices"]["role"]) == {"reference"}
    assert "on reference data" in section.summary


def test_absent_column_and_missing_tag_are_skipped_with_reasons(model, reference):
    section = slices.run(sv.inputs(reference, None, model, tags={"assurance.slices": "region,branch_code"}))
    assert any("branch_code" in s for s in section.skipped)
    assert [(f.check, f.subject, f.severity) for f in section.findings] == [
        ("slices.tag_column_missing", "branch_code", "low")
    ]
    assert "slices" in section.tables
    untagged = slices.run(sv.inputs(reference, None, model, tags={"assurance.slices": ""}))
    assert untagged.tables == {} and "assurance.slices" in untagged.skipped[0]


def test_a_collapsed_40_row_slice_is_found_and_a_one_row_slice_is_not_judged(model, reference):
    current = sv.make_frame(3000, seed=7)
    current.loc[:39, "region"] = "island"
    current.loc[40, "region"] = "rock"
    current = sv.scramble_labels(current, "region", "island", seed=8)
    section = slices.run(sv.inputs(reference, current, model))
    table = section.tables["slices"].set_index("slice")
    island = table.loc["region=island"]
    assert island["support"] == 40 and island["tested"] and island["q_value"] <= 0.05
    assert "region=island" in [f.subject for f in section.findings]
    rock = table.loc["region=rock"]
    assert rock["support"] == 1 and not rock["tested"] and np.isnan(rock["q_value"])


def test_slices_of_a_healthy_small_window_stay_quiet(model):
    loud = 0
    for seed in range(20):
        reference, current = sv.make_frame(150, seed=100 + seed), sv.make_frame(150, seed=200 + seed)
        loud += bool(medium_or_worse(slices.run(sv.inputs(reference, current, model))))
    assert loud == 0


def test_numeric_slice_column_is_binned_and_regression_uses_mae():
    from sklearn.linear_model import LinearRegression

    from assurance.scoring.models import from_estimator

    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"x": rng.normal(size=4000), "age": rng.integers(20, 80, 4000)})
    frame["y"] = 2 * frame["x"] + rng.normal(scale=0.3, size=4000)
    frame.loc[frame["age"] >= 68, "y"] += rng.normal(scale=3.0, size=int((frame["age"] >= 68).sum()))
    model = from_estimator(LinearRegression().fit(frame[["x"]], frame["y"]), ["x"])
    section = slices.run(sv.inputs(frame, None, model, tags={"assurance.slices": "age"}, label="y"))
    table = section.tables["slices"]
    assert (table["metric"] == "mae").all() and len(table) == 5
    assert len(section.findings) == 1 and section.findings[0].subject.startswith("age=(")
    assert "68" in section.findings[0].subject or "67" in section.findings[0].subject


def test_intersection_is_named_instead_of_its_parents(model, reference):
    current = sv.make_frame(12000, seed=10)
    mask = (current["region"] == "west") & (current["channel"] == "branch")
    current.loc[mask, sv.LABEL] = 1 - current.loc[mask, sv.LABEL]
    section = slices.run(sv.inputs(reference, current, model))
    assert [f.subject for f in section.findings] == ["region=west&channel=branch"]
    table = section.tables["slices"].set_index("slice")
    assert table.loc["region=west", "gap"] > 0.05 and not table.loc["region=west", "flagged"]


def test_welch_from_sums_matches_scipy():
    from scipy import stats

    rng = np.random.default_rng(11)
    a, b = rng.normal(1.1, 1, 300), rng.normal(1.0, 2, 700)
    both = np.concatenate([a, b])
    p = slices.welch_worse(
        np.array([300.0]), np.array([a.sum()]), np.array([(a**2).sum()]), 1000.0, both.sum(), (both**2).sum()
    )
    assert p[0] == pytest.approx(
        stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue, rel=1e-6
    )


def test_slice_of_cases_the_model_knows_are_hard_is_not_flagged():
    """Accuracy is far lower where outcomes are coin flips, but the model's scores say so: no finding."""
    from sklearn.ensemble import GradientBoostingClassifier

    from assurance.scoring.models import from_estimator

    rng = np.random.default_rng(12)

    def draw(n: int) -> pd.DataFrame:
        frame = pd.DataFrame({"x": rng.normal(size=n), "segment": rng.choice([0, 1], n, p=[0.7, 0.3])})
        z = np.where(frame["segment"] == 1, 0.0, 3 * frame["x"])
        frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
        return frame

    train, current = draw(4000), draw(6000)
    model = from_estimator(
        GradientBoostingClassifier(n_estimators=50, max_depth=2, random_state=0).fit(
            train[["x", "segment"]], train["y"]
        ),
        ["x", "segment"],
    )
    section = slices.run(sv.inputs(current, current, model, tags={"assurance.slices": "segment"}, label="y"))
    table = section.tables["slices"].set_index("slice")
    assert table.loc["segment=1", "value"] < table.loc["segment=0", "value"] - 0.2
    assert abs(table.loc["segment=1", "value"] - table.loc["segment=1", "expected"]) < 0.05
    assert section.findings == []


def test_current_labels_that_are_all_missing_fall_back_to_reference(model, reference):
    current = sv.make_frame(500, seed=6).assign(**{sv.LABEL: np.nan})
    section = slices.run(sv.inputs(reference, current, model))
    assert set(section.tables["slices"]["role"]) == {"reference"}
