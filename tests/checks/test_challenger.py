"""Challenger comparison: a worse challenger is found at small and large sizes, an equivalent one stays quiet,
the paired intervals are what a direct computation gives, and a missing champion is a reason, not a finding."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from assurance.checks import challenger, metrics
from assurance.domain.values import Champion
from assurance.policy.model import Policy
from assurance.scoring.models import from_estimator
from tests import support as sv

SIZES = [200, 2000]


@pytest.fixture(scope="module")
def champion_model():
    return sv.fit(sv.make_frame(3000, seed=10))


@pytest.fixture(scope="module")
def reference():
    return sv.make_frame(3000, seed=2)


def compared(reference, current, model, champion_model, tags=None):
    """The challenger `model` (version 2) against `champion_model` (version 1 behind `champion`)."""
    inputs = sv.inputs(reference, current, model, tags=tags)
    inputs.record.model_aliases = {"champion": "1"}
    inputs.champion = Champion("1", "champion", sv.make_record(version="1"), champion_model)
    return inputs


def scrambled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    out = frame.copy()
    out[sv.LABEL] = np.random.default_rng(seed).permutation(out[sv.LABEL].to_numpy())
    return out


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("how", ["scrambled_labels", "fewer_features"])
def test_a_worse_challenger_is_found(how, size, champion_model, reference):
    train = sv.make_frame(3000, seed=1)
    model = (
        sv.fit(scrambled(train, seed=3))
        if how == "scrambled_labels"
        else sv.fit(train, features=["age", "region", "channel"])
    )
    section = challenger.run(compared(reference, sv.make_frame(size, seed=20 + size), model, champion_model))
    assert section.skipped == []
    found = {f.subject: f for f in section.findings}
    assert "roc_auc" in found, section.summary
    finding = found["roc_auc"]
    assert (finding.check, finding.category, finding.severity) == ("challenger.worse", "performance", "high")
    frame = section.tables["challenger"].set_index("metric")
    assert finding.observed == pytest.approx(frame.loc["roc_auc", "challenger"])
    assert finding.threshold == pytest.approx(frame.loc["roc_auc", "champion"] - 0.02)
    assert frame.loc["roc_auc", "difference_ci_high"] < 0
    assert (
        "version 1 behind 'champion'" in finding.message
        and f"{size:,} labelled current rows" in finding.message
    )
    assert "**The challenger is worse than the champion:**" in section.summary


@pytest.mark.parametrize("size", [*SIZES, 20000])
def test_an_equivalent_challenger_is_quiet(size, champion_model, reference):
    """Same algorithm, another training sample: the metrics differ by noise only, whatever the size."""
    for seed in range(3 if size < 20000 else 1):
        model = sv.fit(sv.make_frame(3000, seed=100 + seed))
        current = sv.make_frame(size, seed=200 + seed)
        section = challenger.run(compared(reference, current, model, champion_model))
        assert section.findings == [], section.summary
        frame = section.tables["challenger"].set_index("metric")
        assert frame.loc["roc_auc", "difference_ci_low"] < 0.02
        assert "not materially and significantly worse" in section.summary


def flipped(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    out = frame.copy()
    flip = np.random.default_rng(seed).random(len(out)) < share
    out.loc[flip, sv.LABEL] = 1 - out.loc[flip, sv.LABEL]
    return out


def test_a_slightly_worse_challenger_is_found_only_where_the_rows_can_show_it(champion_model, reference):
    """Trained on 30% flipped labels: about 0.025 AUC worse, just past materiality. 200 rows cannot tell
    that from noise (even when the observed gap is material); 5,000 can."""
    model = sv.fit(flipped(sv.make_frame(3000, seed=301), 0.3, seed=1))
    for seed in (77, 78):
        small = challenger.run(compared(reference, sv.make_frame(200, seed=seed), model, champion_model))
        assert small.findings == [], small.summary
    large = challenger.run(compared(reference, sv.make_frame(5000, seed=77), model, champion_model))
    frame = large.tables["challenger"].set_index("metric")
    assert 0.02 <= frame.loc["roc_auc", "worsening"] < 0.04
    assert "roc_auc" in {f.subject for f in large.findings}


def test_a_significant_but_immaterial_gap_is_quiet(champion_model, reference):
    """Without channel the challenger is reliably, but only slightly, worse: beyond noise at 5,000 rows, below
    the policy's 0.02, so no finding."""
    model = sv.fit(sv.make_frame(3000, seed=301), features=["income", "age", "tenure", "region"])
    section = challenger.run(compared(reference, sv.make_frame(5000, seed=77), model, champion_model))
    frame = section.tables["challenger"].set_index("metric")
    assert frame.loc["roc_auc", "q_value"] <= 0.01 and 0 < frame.loc["roc_auc", "worsening"] < 0.02
    assert section.findings == []


def test_paired_replicates_are_the_metrics_of_both_models_on_the_same_resampled_rows(
    champion_model, reference
):
    """Direct computation: the first replicates are sklearn's metrics under the same bootstrap weights."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    model = sv.fit(sv.make_frame(3000, seed=5))
    inputs = compared(reference, sv.make_frame(1500, seed=6), model, champion_model)
    pair = challenger.paired_outcomes(inputs, inputs.champion)
    comparison = challenger.compare(pair, inputs.policy.thresholds.performance)
    weights = metrics.resample_weights(
        pair.challenger.rows, metrics.CHUNK, np.random.default_rng(challenger.SEED)
    )
    truth = pair.challenger.positives(pair.challenger.label)
    for i, w in enumerate(weights):
        for evaluation, out in (
            (comparison.challenger, pair.challenger),
            (comparison.champion, pair.champion),
        ):
            assert evaluation.replicates["roc_auc"][i] == pytest.approx(
                roc_auc_score(truth, out.score, sample_weight=w), abs=1e-9
            )
            assert evaluation.replicates["accuracy"][i] == pytest.approx(
                accuracy_score(truth, out.positives(out.prediction), sample_weight=w), abs=1e-9
            )


def test_paired_interval_matches_a_direct_bootstrap_and_is_narrower_than_unpaired(champion_model, reference):
    from sklearn.metrics import roc_auc_score

    model = sv.fit(sv.make_frame(3000, seed=7))
    inputs = compared(reference, sv.make_frame(1500, seed=8), model, champion_model)
    pair = challenger.paired_outcomes(inputs, inputs.champion)
    ours = challenger.compare(
        pair, sv.policy_with({"performance.bootstrap_samples": 400}).thresholds.performance
    )
    truth, a, b = pair.challenger.positives(pair.challenger.label), pair.challenger.score, pair.champion.score
    rng = np.random.default_rng(99)
    direct = []
    for _ in range(400):
        rows = rng.integers(0, len(truth), len(truth))
        direct.append(
            roc_auc_score(truth[rows], a.to_numpy()[rows]) - roc_auc_score(truth[rows], b.to_numpy()[rows])
        )
    paired = ours.challenger.replicates["roc_auc"] - ours.champion.replicates["roc_auc"]
    assert np.std(paired) == pytest.approx(np.std(direct), rel=0.25)
    unpaired = np.hypot(
        np.std(ours.challenger.replicates["roc_auc"]), np.std(ours.champion.replicates["roc_auc"])
    )
    assert np.std(paired) < unpaired / 2


def test_regression_challenger_with_a_relative_mae_increase_is_found_and_a_retrain_is_quiet():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    def frame(n, seed):
        out = sv.make_frame(n, seed)
        noise = np.random.default_rng(seed + 1).normal(0, 0.5, n)
        out["loss"] = 2 * (np.log(out["income"]) - 10.5) / 0.4 - 0.3 * out["tenure"] + noise
        return out.drop(columns=[sv.LABEL])

    def regressor(train, features):
        cats = [c for c in features if c in sv.CATEGORICAL]
        prep = ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats)],
            remainder="passthrough",
        )
        est = Pipeline(
            [("prep", prep), ("model", GradientBoostingRegressor(n_estimators=60, random_state=0))]
        )
        return from_estimator(est.fit(train[features], train["loss"]), features, train["loss"])

    champion = regressor(frame(3000, 40), sv.FEATURES)
    ref, cur = frame(2000, 41), frame(1000, 42)
    results = {}
    for name, model in (
        ("retrain", regressor(frame(3000, 43), sv.FEATURES)),
        ("no_tenure", regressor(frame(3000, 43), ["income", "age", "channel", "region"])),
    ):
        inputs = sv.inputs(ref, cur, model, label="loss")
        inputs.champion = Champion("1", "champion", sv.make_record(version="1"), champion)
        results[name] = challenger.run(inputs)
    assert results["retrain"].findings == [], results["retrain"].summary
    worse = {f.subject for f in results["no_tenure"].findings}
    assert "mae" in worse and "rmse" in worse
    assert "prediction correlation" in results["no_tenure"].summary
    slices = results["retrain"].tables["challenger_slices"]
    assert set(slices["metric"]) == {"mae"} and "region=north" in set(slices["slice"])


def test_tables_show_both_models_side_by_side(champion_model, reference):
    model = sv.fit(sv.make_frame(3000, seed=9))
    section = challenger.run(compared(reference, sv.make_frame(1000, seed=11), model, champion_model))
    frame = section.tables["challenger"]
    assert set(frame["champion_version"]) == {"1"} and set(frame["role"]) == {"current"}
    assert {"accuracy", "roc_auc", "calibration_error", "brier"} <= set(frame["metric"])
    slices = section.tables["challenger_slices"]
    assert {"region=north", "channel=web"} <= set(slices["slice"])
    assert slices[["champion", "challenger"]].notna().all().all()
    reliability = section.tables["challenger_reliability"]
    assert set(reliability["model"]) == {"champion", "challenger"}
    assert "challenger_reliability" in section.plots
    assert "| metric | champion v1 | challenger v2 |" in section.summary
    same = section.metrics["same_decision"]
    pair = challenger.paired_outcomes(
        compared(reference, sv.make_frame(1000, seed=11), model, champion_model),
        Champion(model=champion_model),
    )
    direct = (pair.challenger.prediction.to_numpy() == pair.champion.prediction.to_numpy()).mean()
    assert same == pytest.approx(direct) and 0.8 < same < 1.0


def test_unlabelled_current_compares_on_reference(champion_model, reference):
    model = sv.fit(sv.make_frame(3000, seed=12))
    current = sv.make_frame(500, seed=13).drop(columns=[sv.LABEL])
    section = challenger.run(compared(reference, current, model, champion_model))
    assert set(section.tables["challenger"]["role"]) == {"reference"}
    assert f"{len(reference):,} labelled reference rows" in section.summary


def test_rows_the_champion_cannot_score_are_left_out_of_both(champion_model, reference):
    """A champion that refuses missing values is compared on the complete rows only, for both models."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    train = sv.make_frame(3000, seed=14)
    numeric = ["income", "age", "tenure"]
    tolerant = from_estimator(
        HistGradientBoostingClassifier(max_iter=50).fit(train[numeric], train[sv.LABEL]), numeric
    )
    strict = from_estimator(sv.classifier("logistic", numeric).fit(train[numeric], train[sv.LABEL]), numeric)
    current = sv.make_frame(1000, seed=15)
    current.loc[current.index[:100], "income"] = np.nan
    section = challenger.run(compared(reference, current, tolerant, strict))
    assert section.skipped == []
    assert set(section.tables["challenger"]["n"]) == {900}


def policy_aliases(champion_aliases):
    data = copy.deepcopy(Policy().data)
    data["thresholds"]["challenger"]["champion_aliases"] = champion_aliases
    return Policy(data, "test")


@pytest.mark.parametrize(
    ("version", "aliases", "named", "expected"),
    [
        ("2", {"champion": "1", "production": "2"}, ["champion"], ("1", "champion")),
        ("3", {"Champion": "5"}, ["champion"], ("5", "Champion")),  # the policy names it, whatever its number
        ("3", {"prod": "1", "live": "2", "production": "4"}, ["champion"], ("2", "live")),
        ("10", {"production": "9", "live": "2"}, ["champion"], ("9", "production")),
        (
            "2",
            {"champion": "1", "production": "2"},
            [],
            ("1", "champion"),
        ),  # champion is also a production alias
    ],
)
def test_the_champion_is_behind_the_champion_alias_else_the_newest_earlier_production_version(
    version, aliases, named, expected
):
    record = sv.make_record(version=version)
    record.model_aliases = aliases
    chosen = challenger.choose_champion(record, policy_aliases(named))
    assert chosen.reason is None and (chosen.version, chosen.alias) == expected


@pytest.mark.parametrize(
    ("aliases", "reason"),
    [
        ({}, "no champion"),
        ({"production": "3", "shadow": "1"}, "no champion"),  # a later production version is no predecessor
        ({"champion": "2", "production": "1"}, "version 2 is the champion itself"),
    ],
)
def test_no_comparison_without_another_champion(aliases, reason, champion_model, reference):
    model = sv.fit(sv.make_frame(3000, seed=16))
    inputs = sv.inputs(reference, sv.make_frame(500, seed=17), model)
    inputs.record.model_aliases = aliases
    section = challenger.run(inputs)
    assert section.findings == [] and section.tables == {}
    assert len(section.skipped) == 1 and reason in section.skipped[0]


def test_unloadable_or_incomparable_champion_is_skipped_with_the_reason(champion_model, reference):
    from sklearn.linear_model import LinearRegression

    model = sv.fit(sv.make_frame(3000, seed=18))
    inputs = compared(reference, sv.make_frame(500, seed=19), model, champion_model)
    inputs.champion = Champion(
        "1",
        "champion",
        reason="the champion, version 1 behind 'champion', could not be loaded: OSError: gone",
    )
    section = challenger.run(inputs)
    assert section.findings == [] and "could not be loaded: OSError: gone" in section.skipped[0]

    regressor = from_estimator(
        LinearRegression().fit(reference[["income", "age"]], reference["tenure"]), ["income", "age"]
    )
    inputs.champion = Champion("1", "champion", sv.make_record(version="1"), regressor)
    section = challenger.run(inputs)
    assert section.findings == [] and "regression model and this version a binary one" in section.skipped[0]
