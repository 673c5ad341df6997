"""Leakage: label proxies, dominant features, shared rows and ID features are found; a healthy version is clean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assurance.checks import leakage
from assurance.domain.findings import severity_rank
from assurance.scoring.models import from_estimator
from tests import support as sv


def with_leaks(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Add a noisy copy of the label and a customer number, as careless feature engineering would."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    flipped = np.where(rng.random(len(out)) < 0.01, 1 - out[sv.LABEL], out[sv.LABEL])
    out["outcome_code"] = flipped * 10 + rng.normal(0, 1, len(out))
    out["customer_id"] = rng.permutation(len(out)) + 100_000
    return out


@pytest.fixture(scope="module")
def healthy():
    train, reference, current = (sv.make_frame(n, seed) for n, seed in ((3000, 41), (5000, 42), (5000, 43)))
    return sv.inputs(reference, current, sv.fit(train))


@pytest.fixture(scope="module")
def leaky():
    features = [*sv.FEATURES, "outcome_code", "customer_id"]
    train = with_leaks(sv.make_frame(3000, 44), seed=45)
    reference = with_leaks(sv.make_frame(5000, 46), seed=47)
    current = with_leaks(sv.make_frame(5000, 48), seed=49)
    return sv.inputs(reference, current, sv.fit(train, features=features))


def test_healthy_version_has_no_leakage_finding(healthy):
    section = leakage.run(healthy)
    assert [f for f in section.findings if severity_rank(f.severity) <= severity_rank("medium")] == []
    table = section.tables["leakage"]
    assert table["label_strength"].max() < 0.9
    assert table["attribution_share"].sum() == pytest.approx(1.0)
    assert section.metrics["shared_row_share"] == 0.0


def test_label_copy_and_id_are_named(leaky):
    section = leakage.run(leaky)
    found = {(f.check, f.subject) for f in section.findings}
    assert ("leakage.label_proxy", "outcome_code") in found
    assert ("leakage.id_feature", "customer_id") in found
    assert ("leakage.dominant_feature", "outcome_code") not in found
    proxy = next(f for f in section.findings if f.check == "leakage.label_proxy")
    assert proxy.severity == "high" and proxy.category == "leakage" and proxy.evidence == "leakage.parquet"
    table = section.tables["leakage"].set_index("feature")
    assert table.loc["customer_id", "label_strength"] < 0.6
    assert table.loc["outcome_code", "attribution_share"] > 0.5
    assert "outcome_code" in section.summary


def test_identifier_cannot_score_by_memorising():
    rng = np.random.default_rng(50)
    ids = pd.Series([f"row-{i}" for i in range(4000)])
    label = pd.Series(rng.integers(0, 2, 4000))
    assert abs(leakage.label_strength(ids, label, "binary") - 0.5) < 0.05
    assert leakage.label_strength(label.map({0: "no", 1: "yes"}), label, "binary") == pytest.approx(1.0)


def test_shared_rows_beyond_natural_repeats():
    reference = sv.make_frame(4000, 51)
    model = sv.fit(reference)
    current = pd.concat([sv.make_frame(2800, 52), reference.sample(1200, random_state=0)], ignore_index=True)
    section = leakage.run(sv.inputs(reference, current, model))
    shared = [f for f in section.findings if f.check == "leakage.shared_rows"]
    assert len(shared) == 1 and shared[0].observed == pytest.approx(0.3, abs=0.01)

    coarse = ["channel", "region"]
    coarse_model = sv.fit(reference, features=coarse)
    section = leakage.run(sv.inputs(reference, sv.make_frame(3000, 53), coarse_model))
    assert section.metrics["shared_row_share"] == 1.0 and section.metrics["shared_row_baseline"] == 1.0
    assert [f for f in section.findings if f.check == "leakage.shared_rows"] == []


def test_dominant_feature_without_perfect_proxy():
    rng = np.random.default_rng(54)
    frame = pd.DataFrame(rng.normal(size=(4000, 4)), columns=["main", "b", "c", "d"])
    z = 3 * frame["main"] + 0.2 * frame["b"] + 0.2 * frame["c"]
    frame["y"] = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(int)
    from sklearn.ensemble import GradientBoostingClassifier

    features = ["main", "b", "c", "d"]
    model = from_estimator(
        GradientBoostingClassifier(n_estimators=40, random_state=0).fit(frame[features], frame["y"]), features
    )
    section = leakage.run(sv.inputs(frame, None, model, label="y"))
    assert [(f.check, f.subject) for f in section.findings] == [("leakage.dominant_feature", "main")]
    assert any("shared-rows" in s for s in section.skipped)


def test_regression_proxy_by_correlation():
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(55)
    frame = pd.DataFrame({"x": rng.normal(size=3000), "w": rng.normal(size=3000)})
    frame["y"] = frame["x"] + rng.normal(scale=1.0, size=3000)
    frame["y_rounded"] = frame["y"].round(2)
    features = ["x", "w", "y_rounded"]
    model = from_estimator(
        GradientBoostingRegressor(n_estimators=30).fit(frame[features], frame["y"]), features
    )
    section = leakage.run(sv.inputs(frame, None, model, label="y"))
    table = section.tables["leakage"].set_index("feature")
    assert (table["strength_metric"] == "correlation").all()
    assert table.loc["y_rounded", "label_strength"] > 0.99 and table.loc["x", "label_strength"] < 0.9
    assert [f.subject for f in section.findings if f.check == "leakage.label_proxy"] == ["y_rounded"]


def test_unlabelled_data_still_checks_ids_and_overlap(healthy):
    reference = healthy.reference.frame.drop(columns=[sv.LABEL])
    section = leakage.run(sv.inputs(reference, reference, healthy.model))
    assert any("no labelled data" in s for s in section.skipped)
    table = section.tables["leakage"]
    assert "label_strength" not in table.columns and table["unique_ratio"].notna().all()
    assert [f.check for f in section.findings] == ["leakage.shared_rows"]


def test_id_evidence_needs_distinct_values_and_a_hint():
    n = 1000
    rng = np.random.default_rng(56)
    assert (
        leakage.id_evidence(pd.Series(rng.permutation(n)), "accountId", 0.98)[1]
        == "ID-like name, consecutive integers"
    )
    assert leakage.id_evidence(pd.Series(rng.integers(0, 10**9, n)), "amount_cents", 0.98)[1] == ""
    assert leakage.id_evidence(pd.Series(np.arange(n)), "row", 0.98)[1] == "monotonic"
    assert leakage.id_evidence(pd.Series(rng.normal(size=n)), "score_id", 0.98)[1] == ""
    assert leakage.id_evidence(pd.Series(rng.integers(0, 50, n)), "branch_id", 0.98)[1] == ""


def test_timestamps_and_floats_are_not_identifiers():
    n = 500
    stamps = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="min"))
    assert leakage.id_evidence(stamps, "event_id", 0.98)[1] == ""
    assert leakage.id_evidence(pd.Series([f"u{i}" for i in range(n)]), "note", 0.98)[1] == "distinct text"


def test_a_strong_honest_feature_on_a_small_window_is_information_not_a_proxy():
    rng = np.random.default_rng(60)
    frame = sv.make_frame(171, 61)
    frame["signal"] = frame[sv.LABEL] * 2.6 + rng.normal(0, 0.9, len(frame))  # AUC about 0.98 alone
    features = [*sv.FEATURES, "signal"]
    model = sv.fit(
        sv.make_frame(171, 62).assign(signal=lambda f: f[sv.LABEL] * 2.6 + rng.normal(0, 0.9, len(f))),
        features=features,
    )
    section = leakage.run(sv.inputs(frame, None, model))
    row = section.tables["leakage"].set_index("feature").loc["signal"]
    assert 0.95 < row["label_strength"] < 0.995 and row["strength_low"] < 0.98
    assert [f for f in section.findings if f.check == "leakage.label_proxy"] == []


def test_a_perfect_split_of_few_rows_is_not_certain_but_of_many_rows_is():
    few = pd.Series([0] * 31 + [1] * 19)
    many = pd.Series([0] * 190 + [1] * 110)
    assert leakage.strength_bounds(1.0, few, "binary") < 0.95
    assert leakage.strength_bounds(1.0, many, "binary") > 0.98


def test_a_macro_auc_rests_on_all_rows_not_the_smallest_class():
    ten_classes = pd.Series(np.repeat(np.arange(10), 30))
    assert leakage.strength_bounds(1.0, ten_classes, "multiclass") > 0.98


def test_holdout_rows_copied_from_tagged_training_data_are_found_and_a_clean_split_is_quiet(tmp_path):
    train = sv.make_frame(3000, 61)
    train.to_parquet(tmp_path / "train.parquet")
    model = sv.fit(train)
    leaky_holdout = pd.concat([sv.make_frame(1400, 62), train.sample(600, random_state=1)], ignore_index=True)
    tags = {"assurance.training": str(tmp_path / "train.parquet")}
    section = leakage.run(sv.inputs(leaky_holdout, sv.make_frame(500, 63), model, tags=tags))
    (found,) = [f for f in section.findings if f.check == "leakage.train_holdout_overlap"]
    assert found.subject == "reference data" and found.observed == pytest.approx(0.3, abs=0.01)
    assert section.metrics["train_holdout_share"] == pytest.approx(0.3, abs=0.01)

    clean = leakage.run(sv.inputs(sv.make_frame(2000, 64), sv.make_frame(500, 63), model, tags=tags))
    assert [f for f in clean.findings if f.check == "leakage.train_holdout_overlap"] == []
    assert clean.metrics["train_holdout_share"] == 0.0


def test_unreadable_training_data_is_a_skip_reason_not_a_failure(healthy):
    healthy.record.tags["assurance.training"] = "/no/such/train.parquet"
    try:
        section = leakage.run(healthy)
    finally:
        del healthy.record.tags["assurance.training"]
    assert "train_holdout_share" not in section.metrics
    assert any("train/holdout overlap not checked" in reason for reason in section.skipped)
