"""Reproducibility: logged metrics are recomputed on the reference data; an inflated one is named."""

from __future__ import annotations

import pytest

from assurance.checks import reproducibility, rows
from tests import support as sv


@pytest.mark.parametrize(
    ("logged", "canonical"),
    [
        ("accuracy", "accuracy"),
        ("val_auc", "roc_auc"),
        ("test/f1_score", "f1"),
        ("holdout_roc_auc_score", "roc_auc"),
        ("eval-precision", "precision"),
        ("Recall", "recall"),
        ("log_loss", "log_loss"),
        ("average_precision", "pr_auc"),
        ("brier_score_loss", "brier"),
        ("root_mean_squared_error", "rmse"),
        ("val_mean_absolute_error", "mae"),
        ("r2_score", "r2"),
    ],
)
def test_common_metric_names_are_normalised(logged, canonical):
    assert reproducibility.canonical_name(logged) == (canonical, "")


def test_training_metrics_are_not_reproducible_on_the_holdout():
    name, reason = reproducibility.canonical_name("training_accuracy_score")
    assert name is None and "training data" in reason


@pytest.fixture(scope="module")
def model():
    return sv.fit(sv.make_frame(4000, seed=1))


@pytest.fixture(scope="module")
def reference():
    return sv.make_frame(5000, seed=2)


def true_metrics(model, reference) -> dict[str, float]:
    inputs = sv.inputs(reference, None, model)
    return rows.labelled_arrays(rows.role_outcomes(inputs, "reference")).point()


def run_with(model, reference, logged: dict[str, float]):
    inputs = sv.inputs(reference, None, model)
    inputs.record.logged_metrics = logged
    return reproducibility.run(inputs)


def test_inflated_logged_metric_is_a_finding_naming_it(model, reference):
    truth = true_metrics(model, reference)
    logged = {
        "val_roc_auc": truth["roc_auc"] + 0.05,
        "accuracy": truth["accuracy"] + 0.005,
        "f1_score": truth["f1"],
    }
    section = run_with(model, reference, logged)
    assert [f.subject for f in section.findings] == ["val_roc_auc"]
    finding = section.findings[0]
    assert finding.check == "reproducibility.metric_mismatch" and finding.category == "reproducibility"
    assert (
        f"{truth['roc_auc'] + 0.05:.4g}" in finding.message and f"{truth['roc_auc']:.4g}" in finding.message
    )
    assert finding.severity == "high" and finding.evidence == "reproducibility.parquet"
    frame = section.tables["reproducibility"].set_index("metric")
    assert frame.loc["val_roc_auc", "status"] == "mismatch" and frame.loc["accuracy", "status"] == "match"
    assert section.metrics == {"metrics_checked": 3.0, "metrics_mismatched": 1.0}
    assert section.summary.startswith("**2 of 3 checkable logged metrics reproduce**")


def test_unrecomputable_metrics_are_listed_as_not_checked(model, reference):
    truth = true_metrics(model, reference)
    logged = {"accuracy": truth["accuracy"], "training_accuracy_score": 0.9, "epochs": 30.0, "rmse": 1.0}
    section = run_with(model, reference, logged)
    assert section.findings == []
    frame = section.tables["reproducibility"].set_index("metric")
    assert list(frame["status"].sort_index()) == ["match", "not_checked", "not_checked", "not_checked"]
    assert "training data" in frame.loc["training_accuracy_score", "reason"]
    assert "`epochs`" in section.summary and "`rmse`" in section.summary  # a classifier has no RMSE


def test_error_metrics_are_compared_relative_to_their_size():
    from sklearn.linear_model import LinearRegression

    from assurance.scoring.models import from_estimator

    frame = sv.make_frame(3000, seed=21).assign(amount=lambda f: f["income"] / 1000 + 5 * f["tenure"])
    regressor = from_estimator(LinearRegression().fit(frame[["income"]], frame["amount"]), ["income"])
    inputs = sv.inputs(frame, None, regressor, label="amount")
    rmse = rows.labelled_arrays(rows.role_outcomes(inputs, "reference")).point()["rmse"]
    assert rmse > 1  # an absolute 0.02 tolerance would flag any rounding
    inputs.record.logged_metrics = {"test_rmse": rmse * 1.03, "test_mae": 0.5 * rmse}
    section = reproducibility.run(inputs)
    assert [f.subject for f in section.findings] == ["test_mae"]


def test_no_logged_metrics_or_no_labels_is_skipped_with_a_reason(model, reference):
    assert "logged no metrics" in run_with(model, reference, {}).skipped[0]
    section = run_with(model, reference.drop(columns=[sv.LABEL]), {"accuracy": 0.9})
    assert section.findings == [] and "reference data has no labels" in section.skipped[0]


@pytest.mark.parametrize(
    ("logged", "canonical"),
    [
        ("training_roc_auc", "roc_auc"),
        ("train_accuracy_score", "accuracy"),
        ("training_log_loss", "log_loss"),
    ],
)
def test_training_metric_names_are_normalised(logged, canonical):
    assert reproducibility.training_metric(logged) == canonical
    assert reproducibility.training_metric(canonical) is None


def overfitting(section) -> list:
    return [f for f in section.findings if f.check == "performance.overfitting"]


def test_a_training_score_far_above_the_holdout_is_overfitting(model, reference):
    noisy = reference.copy()
    flip = noisy.sample(frac=0.3, random_state=0).index
    noisy.loc[flip, sv.LABEL] = 1 - noisy.loc[flip, sv.LABEL]
    truth = true_metrics(model, noisy)
    logged = {"training_roc_auc": truth["roc_auc"] + 0.2, "training_log_loss": truth["log_loss"] * 0.4}
    section = run_with(model, noisy, logged)
    found = {f.subject: f for f in overfitting(section)}
    assert set(found) == {"roc_auc", "log_loss"}
    assert found["roc_auc"].observed == pytest.approx(0.2)
    assert "training_roc_auc" in found["roc_auc"].message
    assert (section.tables["overfitting"]["q_value"] < 0.01).all()


def test_an_ordinary_train_holdout_gap_is_quiet(model, reference):
    truth = true_metrics(model, reference)
    logged = {"training_roc_auc": truth["roc_auc"] + 0.04, "training_log_loss": truth["log_loss"] * 0.8}
    section = run_with(model, reference, logged)
    assert overfitting(section) == []
    assert len(section.tables["overfitting"]) == 2


def test_a_material_gap_on_a_tiny_holdout_is_not_called_overfitting(model):
    small = sv.make_frame(40, seed=7)
    truth = true_metrics(model, small)
    section = run_with(model, small, {"training_accuracy": min(1.0, truth["accuracy"] + 0.12)})
    assert overfitting(section) == []
    assert section.tables["overfitting"]["q_value"].iloc[0] > 0.01
