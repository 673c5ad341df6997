"""Scoring: a model that rejects missing values still scores the complete rows, and says how many it left out."""

import numpy as np
import pandas as pd
import pytest

from assurance.checks import performance
from assurance.checks.predictions import prediction_findings
from assurance.domain.values import Dataset, Inputs
from assurance.policy.model import Policy
from assurance.scoring.models import from_estimator
from assurance.scoring.predict import predict, score_dataset
from tests.support import make_record


@pytest.fixture(scope="module")
def strict_model():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    frame["y"] = (frame["a"] + rng.normal(size=2000) > 0).astype(int)
    return from_estimator(LogisticRegression().fit(frame[["a", "b"]], frame["y"]), ["a", "b"]), frame


def test_complete_rows_are_scored_and_the_rest_counted(strict_model):
    model, frame = strict_model
    holed = frame.copy()
    holed.loc[holed.sample(frac=0.1, random_state=0).index, "b"] = np.nan
    scores = score_dataset(model, Dataset("current", "memory://c", frame=holed, label="y"))
    assert scores.ok and scores.error is None
    assert scores.unscored == int(holed["b"].isna().sum()) == 200
    assert scores.frame["prediction"].isna().sum() == 200 and len(scores.frame) == len(holed)
    complete = holed["b"].notna()
    expected = model.score(holed[complete])
    assert np.allclose(scores.frame.loc[complete, "score"], expected["score"])


def test_partial_scoring_is_a_finding_and_performance_uses_the_scored_rows(strict_model):
    model, frame = strict_model
    holed = frame.copy()
    holed.loc[:99, "a"] = np.nan
    ref = Dataset("reference", "memory://r", frame=frame, label="y")
    cur = Dataset("current", "memory://c", frame=holed, label="y")
    preds = predict(model, ref, cur)
    findings = prediction_findings(preds, Policy.load())
    assert [(f.check, f.subject, f.severity) for f in findings] == [
        ("predictions.partial", "current", "medium")
    ]
    assert "100 of 2000" in findings[0].message
    record = make_record(name="m", version="1", version_tags={"assurance.label": "y"})
    section = performance.run(Inputs(record, Policy.load(), ref, cur, preds, model))
    table = section.tables["performance"]
    current_rows = table[(table["dataset"] == "current") & (table["metric"] == "accuracy")]
    assert int(current_rows["n"].iloc[0]) == 1900


def test_missing_feature_columns_are_still_a_failure(strict_model):
    model, frame = strict_model
    scores = score_dataset(
        model, Dataset("current", "memory://c", frame=frame.drop(columns=["b"]), label="y")
    )
    assert not scores.ok and "b" in scores.error
