"""Drift: numpy statistics equal Evidently's, no false alarms on healthy data, planted shifts are named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assurance.checks import distances, drift
from assurance.domain.values import Dataset, Inputs
from assurance.policy.model import Policy
from tests import support as sv
from tests.support import make_record

WIDE_ROWS = 100_000


def wide_frame(n: int, seed: int) -> pd.DataFrame:
    """30 columns from one fixed distribution (seeded separately): 20 numeric shapes, 10 categorical."""
    shapes = np.random.default_rng(0)  # the distribution's parameters, shared by every sample
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(20):
        kind, scale = i % 4, shapes.uniform(0.5, 20)
        if kind == 0:
            columns[f"num_{i}"] = rng.normal(shapes.normal(0, 10), scale, n)
        elif kind == 1:
            columns[f"num_{i}"] = rng.lognormal(0, 0.8, n) * scale
        elif kind == 2:
            columns[f"num_{i}"] = rng.uniform(0, scale, n)
        else:
            columns[f"num_{i}"] = rng.poisson(scale, n).astype(float)
    for i in range(10):
        k = [2, 3, 5, 8, 12, 20, 30, 4, 6, 9][i]
        probs = shapes.dirichlet(np.ones(k))
        values = np.arange(k) if i % 3 == 0 else np.array([f"v{j}" for j in range(k)], dtype=object)
        columns[f"cat_{i}"] = rng.choice(values, n, p=probs)
    return pd.DataFrame(columns)


@pytest.fixture(scope="module")
def wide_reference() -> pd.DataFrame:
    return wide_frame(WIDE_ROWS, seed=1)


@pytest.fixture(scope="module")
def wide_current() -> pd.DataFrame:
    return wide_frame(WIDE_ROWS, seed=2)


def plain_inputs(
    reference: pd.DataFrame,
    current: pd.DataFrame | None,
    policy: Policy | None = None,
    fingerprint: str | None = "wide-ref",
) -> Inputs:
    """Data only (no model, no label): what feature drift needs."""
    return Inputs(
        record=make_record(),
        policy=policy or Policy(),
        reference=Dataset("reference", "memory://r", frame=reference, fingerprint=fingerprint),
        current=Dataset("current", "memory://c", frame=current) if current is not None else None,
    )


def test_healthy_sample_flags_at_most_one_column_in_30(wide_reference, wide_current):
    section = drift.run(plain_inputs(wide_reference, wide_current))
    features = section.tables["drift"]
    assert len(features) == 30
    assert set(features["kind"]) == {"numeric", "categorical"}
    assert features["drifted"].sum() <= 1
    assert features["statistic"].max() < 0.05  # far below the 0.1 thresholds, not just under them
    assert [f for f in section.findings if f.check in ("drift.feature", "drift.dataset")] == []


def test_shift_of_one_fifth_standard_deviation_is_flagged(wide_reference, wide_current):
    shifted = wide_current.copy()
    shifted["num_0"] = shifted["num_0"] + 0.2 * wide_reference["num_0"].std()
    section = drift.run(plain_inputs(wide_reference, shifted))
    assert [f.subject for f in section.findings] == ["num_0"]
    row = section.tables["drift"].set_index("column").loc["num_0"]
    assert row["method"] == "wasserstein" and 0.15 < row["statistic"] < 0.25 and row["engine"] == "numpy"


def test_category_share_shift_is_flagged_and_low_cardinality_numbers_are_categories(
    wide_reference, wide_current
):
    shifted = wide_current.copy()
    first = shifted["cat_1"] == "v0"
    shifted.loc[first.to_numpy() & (np.arange(len(shifted)) % 2 == 0), "cat_1"] = "v1"
    table_ = drift.run(plain_inputs(wide_reference, shifted)).tables["drift"].set_index("column")
    assert table_.loc["cat_1", "drifted"] and table_.loc["cat_1", "method"] == "jensenshannon"
    assert table_.loc["cat_0", "kind"] == "categorical"  # integers 0/1
    assert table_.loc["num_3", "kind"] == "numeric"  # Poisson counts with many values


def test_numpy_statistics_equal_evidently_value_drift():
    rng = np.random.default_rng(7)
    reference = pd.DataFrame(
        {
            "x": rng.normal(0, 1, 3000),
            "y": rng.exponential(2, 3000),
            "k": rng.integers(0, 4, 3000),
            "c": rng.choice(["a", "b", "c"], 3000, p=[0.6, 0.3, 0.1]),
        }
    )
    reference.loc[:40, "x"] = np.nan
    current = pd.DataFrame(
        {
            "x": rng.normal(0.02, 1.0, 2000),
            "y": rng.exponential(2.5, 2000),
            "k": rng.integers(0, 5, 2000),  # a value reference never had
            "c": rng.choice(["a", "b", "c", "d"], 2000, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    specs = drift.column_specs(reference, list(reference.columns), "feature", Policy())
    fast = drift.measure(reference, current, specs, "numpy").set_index("column")
    slow = drift.measure(reference, current, specs, "evidently").set_index("column")
    assert list(fast["kind"]) == ["numeric", "numeric", "categorical", "categorical"]
    np.testing.assert_allclose(fast["statistic"], slow["statistic"], rtol=1e-9)
    assert list(fast["material"]) == list(slow["material"])
    assert fast["material"].any() and not fast["material"].all()
    np.testing.assert_allclose(fast["p_value"], slow["p_value"])


@pytest.mark.parametrize("numeric,categorical", [("wasserstein", "jensenshannon"), ("ks", "psi")])
def test_evidently_statistics_are_those_of_its_value_drift_report(numeric, categorical):
    from evidently import DataDefinition, Report
    from evidently import Dataset as EvidentlyDataset
    from evidently.metrics import ValueDrift

    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {"x": rng.normal(0, 1, 800), "k": rng.integers(0, 4, 800), "c": rng.choice(["a", "b"], 800)}
    )
    reference.loc[:20, "x"] = np.inf
    current = pd.DataFrame(
        {"x": rng.normal(0.3, 1, 600), "k": rng.integers(0, 5, 600), "c": rng.choice(["a", "b", None], 600)}
    )
    current.loc[:30, "x"] = np.nan
    policy = Policy().with_overrides(
        {"thresholds": {"drift": {"numeric_method": numeric, "categorical_method": categorical}}}
    )
    specs = drift.column_specs(reference, list(reference.columns), "feature", policy)
    definition = DataDefinition(
        numerical_columns=[s.column for s in specs if s.kind == distances.NUMERIC],
        categorical_columns=[s.column for s in specs if s.kind == distances.CATEGORICAL],
    )
    snapshot = (
        Report([ValueDrift(column=s.column, method=s.method, threshold=s.threshold) for s in specs])
        .run(
            EvidentlyDataset.from_pandas(current, data_definition=definition),
            EvidentlyDataset.from_pandas(reference, data_definition=definition),
        )
        .dict()
    )
    expected = {m["config"]["column"]: float(m["value"]) for m in snapshot["metrics"]}
    assert drift._evidently_results(reference, current, specs) == expected
    assert {s.method for s in specs} == {numeric, categorical}


def test_reference_profiles_are_cached_by_fingerprint():
    series = pd.Series(np.arange(500.0), name="x")
    first = distances.reference_profile(series, "numeric", "fp-1")
    assert distances.reference_profile(series, "numeric", "fp-1") is first
    assert distances.reference_profile(series, "numeric", "fp-2") is not first


@pytest.fixture(scope="module")
def model():
    return sv.fit(sv.make_frame(4000, seed=1))


def test_two_shifted_columns_are_named_exactly(model):
    reference, current = sv.make_frame(5000, seed=2), sv.make_frame(5000, seed=3)
    current["age"] = current["age"] + 6
    current["region"] = np.random.default_rng(4).choice(sv.REGIONS, len(current), p=[0.55, 0.15, 0.15, 0.15])
    section = drift.run(sv.inputs(reference, current, model))
    assert sorted(f.subject for f in section.findings) == ["age", "region"]
    assert {f.check for f in section.findings} == {"drift.feature"}
    finding = next(f for f in section.findings if f.subject == "age")
    assert finding.evidence == "drift.parquet" and finding.observed >= finding.threshold
    assert "age" in section.summary.split("\n\n")[0] and "region" in section.summary.split("\n\n")[0]
    assert set(section.tables["drift"]["engine"]) == {"evidently"}
    assert section.plots["drift_by_feature"].startswith(b"\x89PNG")
    assert section.metrics["drifted_features"] == 2


def test_healthy_version_has_no_drift_findings_but_measures_outputs_and_label(model):
    section = drift.run(sv.inputs(sv.make_frame(5000, seed=2), sv.make_frame(5000, seed=3), model))
    assert section.findings == []
    table_ = section.tables["drift"]
    assert list(table_.columns) == drift.TABLE_COLUMNS
    assert set(table_["role"]) == {"feature", "prediction", "label"}
    assert table_.loc[table_["role"] == "prediction", "column"].item() == "score"
    assert section.plots["score_distribution"].startswith(b"\x89PNG")


def test_shifted_scores_and_labels_are_prediction_and_label_drift(model):
    reference, current = sv.make_frame(5000, seed=2), sv.make_frame(5000, seed=3)
    current["income"] = current["income"] * 1.6  # richer applicants: higher scores and more positives
    current[sv.LABEL] = 1
    section = drift.run(sv.inputs(reference, current, model))
    checks = {f.check: f.subject for f in section.findings}
    assert checks["drift.prediction"] == "score"
    assert checks["drift.label"] == sv.LABEL


def test_broad_drift_is_dataset_drift(wide_reference, wide_current):
    shifted = wide_current.copy()
    for column in [f"num_{i}" for i in range(16)]:
        shifted[column] = shifted[column] + wide_reference[column].std()
    section = drift.run(plain_inputs(wide_reference, shifted))
    dataset = [f for f in section.findings if f.check == "drift.dataset"]
    assert len(dataset) == 1 and dataset[0].observed == pytest.approx(16 / 30)
    assert section.metrics["drift_share"] == pytest.approx(16 / 30)


def test_missing_current_data_is_skipped_with_a_reason(wide_reference):
    section = drift.run(plain_inputs(wide_reference, None))
    assert section.findings == [] and section.tables == {}
    assert "both reference and current" in section.skipped[0]


def test_text_where_reference_had_numbers_is_reported_not_raised(wide_reference, wide_current):
    broken = wide_current.copy()
    broken["num_5"] = "n/a"
    table_ = drift.run(plain_inputs(wide_reference, broken)).tables["drift"].set_index("column")
    assert np.isnan(table_.loc["num_5", "statistic"]) and not table_.loc["num_5", "drifted"]
    assert table_.loc["num_5", "current_summary"].startswith("not comparable")


def test_an_evidently_failure_falls_back_to_the_same_formulas_in_numpy(monkeypatch):
    def broken(*args):
        raise RuntimeError("evidently could not run")

    monkeypatch.setattr(drift, "_evidently_results", broken)
    frame = pd.DataFrame({"x": np.random.default_rng(3).normal(size=500)})
    specs = drift.column_specs(frame, ["x"], "feature", Policy())
    table_ = drift.measure(frame, frame + 1, specs, "evidently")
    assert table_["engine"].tolist() == ["numpy"] and table_["material"].tolist() == [True]


def small_pair(rows: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two windows of one population (a skewed, an integer and a categorical column besides a normal one)."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "x": rng.normal(0, 1, n),
                "skewed": rng.lognormal(0, 1, n),
                "count": rng.poisson(3, n),
                "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            }
        )

    reference, current = draw(rows), draw(rows)
    current["x"] = current["x"] + shift
    return reference, current


def test_a_healthy_150_row_pair_is_quiet_though_its_effect_sizes_pass_the_threshold():
    loud = 0
    for seed in range(20):
        reference, current = small_pair(150, seed)
        section = drift.run(plain_inputs(reference, current, fingerprint=None))
        loud += bool(section.findings)
        table_ = section.tables["drift"]
        assert {"p_value", "q_value", "n_reference", "n_current", "material"} <= set(table_.columns)
        assert (table_["n_reference"] == 150).all() and (table_["n_current"] == 150).all()
    assert loud == 0


def test_effect_sizes_alone_would_have_flagged_small_healthy_windows():
    material = [
        drift.run(plain_inputs(*small_pair(60, seed), fingerprint=None)).tables["drift"]["material"].any()
        for seed in range(10)
    ]
    assert sum(material) >= 5  # the noise test is what keeps these quiet


@pytest.mark.parametrize("rows", [60, 300, 5_000, 200_000])
def test_a_material_shift_is_found_at_every_size_where_it_is_detectable(rows):
    reference, current = small_pair(rows, 1, shift=1.0 if rows < 300 else 0.5)
    section = drift.run(plain_inputs(reference, current, fingerprint=None))
    assert [f.subject for f in section.findings if f.check == "drift.feature"] == ["x"]
    row = section.tables["drift"].set_index("column").loc["x"]
    assert row["material"] and row["q_value"] <= Policy().thresholds.drift.alpha


def test_a_significant_but_immaterial_shift_at_a_million_rows_is_not_a_finding():
    reference, current = small_pair(400_000, 2, shift=0.06)
    table_ = drift.run(plain_inputs(reference, current, fingerprint=None)).tables["drift"].set_index("column")
    assert table_.loc["x", "q_value"] < 1e-4 and not table_.loc["x", "material"]
    assert not table_.loc["x", "drifted"]


def test_drifted_features_get_reference_vs_current_plots(wide_reference, wide_current):
    healthy = drift.run(plain_inputs(wide_reference, wide_current))
    assert not [n for n in healthy.plots if n.startswith("drift_distribution")]
    shifted = wide_current.copy()
    shifted["num_0"] = shifted["num_0"] + 0.5 * wide_reference["num_0"].std()
    shifted.loc[shifted["cat_1"] == "v0", "cat_1"] = "v1"
    section = drift.run(plain_inputs(wide_reference, shifted))
    drifted = drift.drifted_columns(section.tables["drift"])["column"].tolist()
    assert sorted(drifted) == ["cat_1", "num_0"]
    for i, column in enumerate(drifted, start=1):
        name = f"drift_distribution_{i}"
        assert section.plots[name].startswith(b"\x89PNG")
        assert f"![distribution of {column}](plots/{name}.png)" in section.summary
