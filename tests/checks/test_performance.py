"""Performance: metrics equal sklearn's, intervals have the right width, drops and estimates are found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from assurance.checks import estimation, metrics, performance, rows
from assurance.policy.model import Policy
from tests import support as sv


def test_binary_metrics_equal_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    score = np.round(np.clip(0.3 * y + rng.normal(0.35, 0.2, 3000), 0.01, 0.99), 2)  # rounding makes ties
    data = metrics.Labelled("binary", score >= 0.5, y.astype(float), score)
    got = data.point()
    pred = (score >= 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, score))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, score))
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, score))
    table = metrics.reliability(score, y, 10)
    assert table["count"].sum() == 3000
    manual = (table["count"] * (table["mean_predicted"] - table["observed_rate"]).abs()).sum() / 3000
    assert got["calibration_error"] == pytest.approx(manual)


def test_multiclass_and_regression_metrics_equal_sklearn():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 2000)
    pred = np.where(rng.random(2000) < 0.7, truth, rng.integers(0, 5, 2000))  # class 4 only predicted
    got = metrics.Labelled("multiclass", pred, truth).point()
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, pred))
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert got[name] == pytest.approx(fn(truth, pred, average="macro", zero_division=0))
    y = rng.normal(10, 3, 2000)
    yhat = y + rng.normal(0.5, 1.5, 2000)
    got = metrics.Labelled("regression", yhat, y).point()
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, yhat))
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)))
    assert got["r2"] == pytest.approx(skm.r2_score(y, yhat))


@pytest.mark.parametrize("max_rows", [100_000, 10_000])
def test_bootstrap_interval_matches_the_binomial_width(max_rows):
    """Accuracy on 100k rows has sd sqrt(p(1-p)/n); resampling only 10k rows must not widen it."""
    rng = np.random.default_rng(2)
    n, p = 100_000, 0.8
    correct = rng.random(n) < p
    data = metrics.Labelled("binary", np.ones(n, dtype=bool), correct.astype(float))
    point = data.point()
    replicates = metrics.bootstrap(data, point, samples=200, max_rows=max_rows, seed=3)
    low, high = metrics.interval(replicates["accuracy"], 0.95)
    expected = 2 * 1.96 * np.sqrt(p * (1 - p) / n)
    assert low < point["accuracy"] < high
    assert (high - low) == pytest.approx(expected, rel=0.25)


@pytest.fixture(scope="module")
def model():
    return sv.fit(sv.make_frame(4000, seed=1))


@pytest.fixture(scope="module")
def reference():
    return sv.make_frame(5000, seed=2)


def test_healthy_version_has_no_performance_findings(model, reference):
    section = performance.run(sv.inputs(reference, sv.make_frame(5000, seed=3), model))
    assert section.findings == []
    frame = section.tables["performance"]
    assert list(frame.columns) == performance.TABLE_COLUMNS
    assert set(frame["dataset"]) == {"reference", "current"} and not frame["estimated"].any()
    assert ((frame["ci_low"] <= frame["value"]) & (frame["value"] <= frame["ci_high"])).all()
    assert {"accuracy", "roc_auc", "pr_auc", "log_loss", "brier", "calibration_error"} <= set(frame["metric"])
    reliability = section.tables["performance_reliability"]
    assert reliability.groupby("dataset")["count"].sum().to_dict() == {"reference": 5000, "current": 5000}
    assert section.plots["reliability_diagram"].startswith(b"\x89PNG")
    assert 0.85 < section.metrics["roc_auc_current"] < 1


def test_scrambled_current_labels_are_a_degradation_naming_the_metric(model, reference):
    current = sv.make_frame(5000, seed=3)
    flip = np.random.default_rng(5).random(len(current)) < 0.3
    current.loc[flip, sv.LABEL] = 1 - current.loc[flip, sv.LABEL]
    section = performance.run(sv.inputs(reference, current, model))
    found = {f.subject: f for f in section.findings if f.check == "performance.degradation"}
    assert {"accuracy", "roc_auc"} <= set(found)
    assert found["roc_auc"].severity == "high" and found["roc_auc"].evidence == "performance.parquet"
    assert found["roc_auc"].observed < found["roc_auc"].threshold
    assert section.summary.startswith("**Performance concerns:**")


@pytest.mark.parametrize(("spread", "expected"), [(0.05, []), (0.005, ["accuracy"])])
def test_a_drop_beyond_tolerance_is_a_finding_only_when_its_interval_excludes_zero(spread, expected):
    """The same 0.06 accuracy drop: noise on a small window (wide replicates), real on a large one."""
    rng = np.random.default_rng(6)
    limits = Policy().thresholds.performance
    reference = performance.Evaluation(
        "reference", 5000, {"accuracy": 0.87}, {"accuracy": rng.normal(0.87, 0.005, 200)}
    )
    current = performance.Evaluation(
        "current", 80, {"accuracy": 0.81}, {"accuracy": rng.normal(0.81, spread, 200)}
    )
    found = performance.degradation_findings(reference, current, limits, Policy())
    assert [f.subject for f in found] == expected


def test_floor_from_the_policy_is_a_finding(model, reference, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("thresholds:\n  performance:\n    floors: {roc_auc: 0.99}\n")
    section = performance.run(
        sv.inputs(reference, sv.make_frame(2000, seed=3), model, policy=Policy.load(path))
    )
    floors = sorted(f.subject for f in section.findings if f.check == "performance.floor")
    assert floors == ["roc_auc on current", "roc_auc on reference"]


def covariate_shifted(n: int, seed: int) -> pd.DataFrame:
    """Same P(label | inputs), different inputs: applicants near the decision boundary are over-sampled.

    Rows are kept with a probability that depends on the inputs only (through the label's logit),
    so this is covariate shift: harder cases, lower realized performance, an unchanged concept.
    """
    frame = sv.make_frame(6 * n, seed)
    logit = (
        3.0 * (np.log(frame["income"]) - 10.5) / 0.4
        - 0.8 * (frame["tenure"] - 4.0)
        + 1.5 * (frame["channel"] == "web")
        - 0.7
    )
    keep = np.random.default_rng(seed).random(len(frame)) < np.exp(-((logit / 3) ** 2))
    return frame[keep].head(n).reset_index(drop=True)


@pytest.fixture(scope="module")
def logistic():
    return sv.fit(sv.make_frame(6000, seed=11), kind="logistic")


@pytest.mark.parametrize("seed", [13, 14])
def test_estimate_without_labels_tracks_realized_performance_under_covariate_shift(logistic, seed):
    """Stated tolerance: each estimated metric within 0.03 of the realized one on 10k shifted rows,
    where assuming "no change from reference" would be off by more than 0.08."""
    inputs = sv.inputs(sv.make_frame(10_000, seed=12), covariate_shifted(10_000, seed=seed), logistic)
    reference = rows.labelled_arrays(rows.role_outcomes(inputs, "reference"))
    current = rows.role_outcomes(inputs, "current")
    realized = rows.labelled_arrays(current).point()
    calibration = estimation.fit_calibration(reference.score, reference.truth)
    estimate = estimation.expected_outcomes(
        current.positives(current.prediction), current.score.to_numpy(), calibration
    ).point()
    for name in estimation.ESTIMATED_METRICS:
        assert reference.point()[name] - realized[name] > 0.08, name
        assert estimate[name] == pytest.approx(realized[name], abs=0.03), name


def test_unlabelled_current_gets_estimated_performance_and_estimated_degradation(logistic):
    current = covariate_shifted(5000, seed=15).drop(columns=[sv.LABEL])
    section = performance.run(sv.inputs(sv.make_frame(8000, seed=12), current, logistic))
    frame = section.tables["performance"]
    estimated = frame[frame["estimated"]]
    assert set(estimated["metric"]) == set(estimation.ESTIMATED_METRICS)
    assert (estimated["dataset"] == "current").all() and (estimated["ci_low"] < estimated["ci_high"]).all()
    assert "**estimated**" in section.summary and "isotonic" in section.summary
    found = {f.subject: f for f in section.findings if f.check == "performance.estimated_degradation"}
    assert {"accuracy", "roc_auc"} <= set(found)
    assert all(f.severity == "medium" for f in found.values())
    assert "estimated without labels" in found["accuracy"].message
    assert "accuracy_current_estimated" in section.metrics


def test_regressor_gets_error_metrics():
    from sklearn.linear_model import LinearRegression

    from assurance.scoring.models import from_estimator

    frame = sv.make_frame(3000, seed=21).assign(amount=lambda f: 2 * f["income"] / 1000 + f["tenure"])
    estimator = LinearRegression().fit(frame[["income", "tenure"]], frame["amount"])
    regressor = from_estimator(estimator, ["income", "tenure"])
    section = performance.run(sv.inputs(frame, frame.copy(), regressor, label="amount"))
    values = section.tables["performance"].set_index(["dataset", "metric"])["value"]
    assert values[("current", "r2")] == pytest.approx(1.0)
    assert {"mae", "rmse", "r2"} <= {m for _, m in values.index}
    assert section.findings == []


def test_missing_predictions_are_skipped_with_reasons(model, reference):
    inputs = sv.inputs(reference, sv.make_frame(500, seed=3), model)
    inputs.predictions = None
    section = performance.run(inputs)
    assert section.findings == [] and len(section.tables["performance"]) == 0
    assert all("no model predictions" in s for s in section.skipped) and len(section.skipped) == 2


def test_eight_metrics_of_healthy_300_row_windows_do_not_add_up_to_false_alarms():
    model = sv.fit(sv.make_frame(3000, seed=70))
    loud = []
    for seed in range(25):
        reference, current = sv.make_frame(300, seed=500 + seed), sv.make_frame(300, seed=600 + seed)
        section = performance.run(sv.inputs(reference, current, model))
        loud += [f.subject for f in section.findings if f.check == "performance.degradation"]
    assert loud == []


def _regression_inputs(current_label: pd.Series) -> tuple:
    from sklearn.linear_model import LinearRegression

    from assurance.scoring.models import from_estimator

    reference, current = sv.make_frame(800, seed=1), sv.make_frame(400, seed=2)
    reference["amount"] = reference["income"] * 0.3 + np.random.default_rng(0).normal(size=len(reference))
    current["amount"] = current_label.to_numpy()
    features = ["income", "tenure"]
    model = from_estimator(LinearRegression().fit(reference[features], reference["amount"]), features)
    return sv.inputs(
        reference.drop(columns=[sv.LABEL]),
        current.drop(columns=[sv.LABEL]),
        model,
        label="amount",
        tags={"assurance.label": "amount"},
    )


def unusable(section) -> list:
    return [f for f in section.findings if f.check == "performance.label_unusable"]


def test_regression_labels_holding_class_names_are_a_finding_not_silence():
    names = pd.Series(np.where(np.random.default_rng(3).random(400) < 0.5, "high", "low"))
    inputs = _regression_inputs(names)
    assert inputs.predictions.task == "regression"
    section = performance.run(inputs)
    (finding,) = unusable(section)
    assert finding.subject == "current" and finding.severity == "medium"
    assert "'high'" in finding.message and "not numbers" in finding.message
    assert set(section.tables["performance"]["dataset"]) == {"reference"}


def test_regression_labels_that_are_numbers_with_a_stray_text_value_are_measured():
    values = pd.Series(np.random.default_rng(4).normal(30, 5, 400)).astype(object)
    values.iloc[7] = "n/a"
    section = performance.run(_regression_inputs(values))
    assert unusable(section) == []
    assert "current" in set(section.tables["performance"]["dataset"])


def test_current_labels_all_missing_are_a_low_finding_and_performance_is_estimated():
    model = sv.fit(sv.make_frame(2000, seed=1))
    current = sv.make_frame(600, seed=2).assign(**{sv.LABEL: np.nan})
    section = performance.run(sv.inputs(sv.make_frame(1500, seed=3), current, model))
    (finding,) = unusable(section)
    assert finding.subject == "current" and finding.severity == "low"
    assert "all missing" in finding.message
    assert section.tables["performance"].query("dataset == 'current'")["estimated"].all()


def test_classifier_labels_outside_its_classes_are_a_finding_and_healthy_labels_are_not():
    model = sv.fit(sv.make_frame(2000, seed=1))
    reference = sv.make_frame(1500, seed=3)
    assert unusable(performance.run(sv.inputs(reference, sv.make_frame(600, seed=2), model))) == []
    current = sv.make_frame(600, seed=2)
    current[sv.LABEL] = current[sv.LABEL].map({0: "no", 1: "yes"})
    (finding,) = unusable(performance.run(sv.inputs(reference, current, model)))
    assert finding.subject == "current" and "classes the model predicts" in finding.message
