"""Explanations: tree SHAP through Pipelines, model-agnostic SHAP within budget, attribution drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assurance.checks import explanations
from assurance.checks.explanations import explainers
from assurance.checks.explanations.codec import Codec
from assurance.scoring.models import ScoringModel, from_estimator
from tests import support as sv

FAST = sv.policy_with({"explanations.time_budget_seconds": 2, "explanations.sample_rows": 400})


@pytest.fixture(scope="module")
def train():
    return sv.make_frame(3000, seed=31)


@pytest.fixture(scope="module")
def model(train):
    return sv.fit(train)


@pytest.fixture(scope="module")
def pyfunc(model):
    """The same model behind the pyfunc interface only: no native tree for SHAP's tree explainer."""
    return ScoringModel(
        predict=model.predict,
        features=sv.FEATURES,
        task="binary",
        classes=[0, 1],
        predict_proba=model.predict_proba,
    )


@pytest.fixture(scope="module")
def reference():
    return sv.make_frame(3000, seed=32)


@pytest.fixture(scope="module")
def current():
    return sv.make_frame(3000, seed=33)


class Store:
    """Evidence store stand-in holding one earlier version's explanations table."""

    def __init__(self, tables: dict[str, pd.DataFrame]):
        self.tables = tables
        self.asked: list[str] = []

    def latest_table(self, model: str, version: str, stem: str) -> pd.DataFrame | None:
        self.asked.append(version)
        return self.tables.get(version) if stem == "explanations" else None


def test_pipeline_is_explained_by_source_feature(model, reference, current):
    section = explanations.run(sv.inputs(reference, current, model))
    table = section.tables["explanations"]
    assert sorted(table["feature"]) == sorted(sv.FEATURES)
    assert set(table.loc[table["rank_reference"] <= 2, "feature"]) == {"income", "tenure"}
    assert section.findings == []
    local = section.tables["explanations_local"]
    assert local["row_rank"].nunique() == 5 and len(local) == 5 * len(sv.FEATURES)
    scores = model.score(current)["score"]
    assert local.groupby("row_rank")["score"].first().min() == pytest.approx(scores.nlargest(5).min())
    assert section.plots["shap_importance"][:8] == b"\x89PNG\r\n\x1a\n"
    assert "plots/shap_importance.png" in section.summary and "tree explainer" in section.summary


def test_one_hot_attributions_add_up_to_the_model_margin(model, current):
    import shap

    rows = current.head(50)
    values = explainers.tree_explainer(model, sv.FEATURES).explain(rows)
    base = shap.TreeExplainer(model.native.steps[-1][1]).expected_value
    margin = model.native.decision_function(rows[sv.FEATURES])
    assert np.allclose(values.sum(axis=1) + np.ravel(base)[0], margin, atol=1e-6)


def test_pyfunc_model_gets_permutation_shap_within_budget(pyfunc, reference, current):
    section = explanations.run(sv.inputs(reference, current, pyfunc, policy=FAST))
    assert "permutation explainer" in section.summary and "pyfunc" in section.summary
    assert section.metrics["seconds_reference"] < 1.0 + 1.0
    assert section.metrics["seconds_reference"] + section.metrics["seconds_current"] < 2.0 + 1.5
    assert 1 <= section.metrics["rows_explained_reference"] < 400
    table = section.tables["explanations"]
    assert table.iloc[0]["feature"] in {"income", "tenure"}
    assert len(section.tables["explanations_local"]) == 5 * len(sv.FEATURES)


def test_ranking_drift_between_reference_and_current(model, reference, current):
    flattened = current.assign(income=current["income"].median(), tenure=4.0)
    section = explanations.run(sv.inputs(reference, flattened, model))
    assert [f.subject for f in section.findings] == ["ranking"]
    assert section.findings[0].category == "explainability"
    assert section.findings[0].observed < 0.7


def test_drift_against_previous_version_from_store(model, reference):
    first = explanations.run(sv.inputs(reference, None, model)).tables["explanations"]
    same = Store({"1": first})
    section = explanations.run(sv.inputs(reference, None, model, store=same))
    assert section.findings == [] and "rank_previous" in section.tables["explanations"].columns

    reversed_ = first.assign(mean_abs_shap_reference=first["mean_abs_shap_reference"].to_numpy()[::-1])
    section = explanations.run(sv.inputs(reference, None, model, store=Store({"1": reversed_})))
    subjects = {f.subject for f in section.findings}
    assert "previous:ranking" in subjects and "previous:income" in subjects
    assert "version 1" in next(f.message for f in section.findings if f.subject == "previous:income")

    empty = Store({})
    section = explanations.run(sv.inputs(reference, None, model, store=empty))
    assert empty.asked == ["1"] and any("earlier version" in s for s in section.skipped)


def test_regressor_and_multiclass_tree_models():
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier

    rng = np.random.default_rng(34)
    frame = pd.DataFrame(rng.normal(size=(600, 3)), columns=["a", "b", "c"])
    frame["y"] = 3 * frame["a"] + frame["b"]
    regressor = from_estimator(
        GradientBoostingRegressor(n_estimators=30).fit(frame[["a", "b", "c"]], frame["y"]), ["a", "b", "c"]
    )
    section = explanations.run(sv.inputs(frame, frame, regressor, label="y"))
    assert section.tables["explanations"]["feature"].tolist()[:2] == ["a", "b"]
    assert section.tables["explanations_local"]["score"].max() == pytest.approx(
        regressor.score(frame)["prediction"].max()
    )

    frame["k"] = np.digitize(frame["a"], [-0.5, 0.5])
    forest = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(
        frame[["a", "b", "c"]], frame["k"]
    )
    multiclass = from_estimator(forest, ["a", "b", "c"])
    section = explanations.run(sv.inputs(frame, frame, multiclass, label="k"))
    assert section.tables["explanations"].iloc[0]["feature"] == "a"
    assert "explanations_local" not in section.tables or section.tables["explanations_local"].empty


def test_pick_output_chooses_the_explained_output():
    raw = np.arange(2 * 3 * 3, dtype=float).reshape(2, 3, 3)
    assert np.array_equal(explainers.pick_output(raw, "binary", None), raw[:, :, -1])
    assert np.array_equal(
        explainers.pick_output(raw, "multiclass", np.array([0, 2])), np.stack([raw[0, :, 0], raw[1, :, 2]])
    )
    assert np.array_equal(explainers.pick_output([raw[:, :, 0], raw[:, :, 1]], "binary", None), raw[:, :, 1])


def test_source_matrix_maps_transformed_names_back():
    names = ["cat__region_north", "cat__region_south", "num__age", "num__age_band_young", "extra__score"]
    matrix, columns = explainers.source_matrix(names, ["age", "age_band", "region"])
    assert columns == ["age", "age_band", "region", "extra__score"]
    assert matrix.argmax(axis=1).tolist() == [2, 2, 0, 1, 3]


def test_codec_round_trips_categories_missing_values_and_dtypes():
    frame = pd.DataFrame(
        {"c": ["x", None, "y"], "n": [1, 2, 3], "f": [0.5, np.nan, 1.5], "b": [True, False, True]}
    )
    codec = Codec(frame, ["c", "n", "f", "b"])
    back = codec.decode(codec.encode(frame))
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert back["n"].dtype == frame["n"].dtype and back["b"].dtype == bool


def test_current_rows_the_model_cannot_score_are_skipped_not_raised(pyfunc, reference, current):
    gaps = current.assign(income=current["income"].where(current.index % 5 != 0))
    # a budget a loaded machine cannot exhaust before current data is tried
    patient = sv.policy_with({"explanations.time_budget_seconds": 120, "explanations.sample_rows": 400})
    section = explanations.run(sv.inputs(reference, gaps, pyfunc, policy=patient))
    assert any(s.startswith("current data could not be explained") and "NaN" in s for s in section.skipped)
    assert section.tables["explanations"]["rank_reference"].notna().all()
    assert "explanations_local" not in section.tables


def test_unreadable_store_costs_only_the_previous_comparison(model, reference):
    class Broken:
        def latest_table(self, model: str, version: str, stem: str):
            raise OSError("bucket unreachable")

    section = explanations.run(sv.inputs(reference, None, model, store=Broken()))
    assert any("bucket unreachable" in s for s in section.skipped)
    assert "explanations" in section.tables


def test_attributions_of_two_small_healthy_windows_do_not_drift(model):
    loud = []
    for seed in range(8):
        reference, current = sv.make_frame(120, seed=300 + seed), sv.make_frame(120, seed=400 + seed)
        section = explanations.run(sv.inputs(reference, current, model))
        loud += [f.subject for f in section.findings]
    assert loud == []


def test_attribution_noise_comes_from_the_explained_rows():
    from assurance.checks.explanations.attributions import AttributionNoise

    rng = np.random.default_rng(5)
    scale = [1.2, 1.15, 1.1, 1.05, 1.0]  # close importances: rankings of small samples disagree
    few = pd.DataFrame(rng.normal(size=(60, 5)) * scale, columns=list("abcde"))
    many = pd.DataFrame(rng.normal(size=(6000, 5)) * scale, columns=list("abcde"))
    small, large = AttributionNoise.of(few), AttributionNoise.of(many)
    assert (small.share_se > 3 * large.share_se).all()
    assert small.rank_correlation_floor < large.rank_correlation_floor <= 1.0
