"""The demo generator and the registry builder: deterministic data, and a registry MLflow reads back."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from assurance.demo.generator import (
    CATEGORICAL,
    FEATURES,
    LABEL,
    LGD_LABEL,
    NUMERIC,
    PROTECTED,
    build_demo,
    generate,
    inject_missing,
    scramble_labels,
)
from assurance.demo.registry_builder import (
    embedded_tracking_uri,
    pip_requirements,
    register_version,
    safe_dir_name,
)
from assurance.registry.client import mlflow_tracking

SMALL_FEATURES = ["income", "debt_to_income", "credit_utilization", "age", "region", "channel"]


def test_generate_is_deterministic_realistic_and_keeps_protected_out_of_features():
    first, again = generate(3000, seed=7), generate(3000, seed=7)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(generate(3000, seed=8))
    assert 0.12 <= first[LABEL].mean() <= 0.28
    assert set(FEATURES) <= set(first.columns)
    assert not set(PROTECTED) & set(FEATURES)
    assert first["application_id"].is_unique
    assert first[FEATURES].notna().all().all()


def test_shift_moves_only_the_requested_column():
    base = generate(4000, seed=11)
    shifted = generate(4000, seed=11, credit_utilization=1.0)
    moved = shifted["credit_utilization"].mean() - base["credit_utilization"].mean()
    assert moved > 0.7 * base["credit_utilization"].std()
    others = [c for c in NUMERIC if c != "credit_utilization"]
    pd.testing.assert_frame_equal(shifted[others + CATEGORICAL], base[others + CATEGORICAL])
    assert shifted["credit_utilization"].between(0, 1).all()
    assert shifted[LABEL].mean() > base[LABEL].mean()  # labels follow the shifted feature
    with pytest.raises(ValueError, match="region"):
        generate(10, seed=1, region=1.0)


def test_plants_change_only_their_target():
    frame = generate(2000, seed=3)
    gappy = inject_missing(frame, "debt_to_income", rate=0.2, seed=1)
    assert 0.15 < gappy["debt_to_income"].isna().mean() < 0.25
    assert gappy.drop(columns="debt_to_income").equals(frame.drop(columns="debt_to_income"))
    south = frame["region"] == "south"
    scrambled = scramble_labels(frame, LABEL, south, seed=1)
    assert scrambled.loc[south, LABEL].sum() == frame.loc[south, LABEL].sum()
    assert not scrambled.loc[south, LABEL].equals(frame.loc[south, LABEL])
    assert scrambled.loc[~south, LABEL].equals(frame.loc[~south, LABEL])


def test_pip_requirements_pin_the_estimators_own_packages():
    from lightgbm import LGBMClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = Pipeline([("scale", StandardScaler()), ("model", LGBMClassifier())])
    requirements = pip_requirements(pipeline, "cloudpickle")
    names = {r.split("==")[0] for r in requirements}
    assert {"scikit-learn", "lightgbm", "cloudpickle", "mlflow"} <= names
    assert "skops" not in names and all("==" in r for r in requirements)


def test_safe_dir_name_never_escapes_its_folder():
    assert safe_dir_name("credit_default") == "credit_default"
    for name in ("../etc", "a\\b", "..", "x\ny", "name with spaces"):
        safe = safe_dir_name(name)
        assert "/" not in safe and "\\" not in safe and ".." not in safe and "\n" not in safe
    assert safe_dir_name("a b") != safe_dir_name("a_b")


def _small_model(frame: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["region", "channel"])],
        remainder="passthrough",
    )
    model = Pipeline(
        [("encode", encode), ("model", HistGradientBoostingClassifier(max_iter=15, random_state=0))]
    )
    return model.fit(frame[SMALL_FEATURES], frame[LABEL])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two versions of one model: v1 skops and fully onboarded, v2 cloudpickle with only a logged reference."""
    root = tmp_path_factory.mktemp("registry")
    uri = embedded_tracking_uri(root)
    train, reference, current = generate(800, 1), generate(400, 2), generate(400, 3)
    model = _small_model(train)
    before = os.environ.get("MLFLOW_TRACKING_URI")
    cwd = os.getcwd()
    os.chdir(root.parent)  # anything MLflow writes relative to the cwd would show up here
    try:
        v1 = register_version(
            "tiny_model",
            model,
            reference,
            current,
            label=LABEL,
            features=SMALL_FEATURES,
            data_dir=root / "data",
            model_tags={"owner": "team@example.com", "assurance.slices": "region"},
            version_tags={"approval.ticket": "CHG-1"},
            aliases=["champion"],
            documents={"model_card.md": "# Card\n"},
            metrics={"roc_auc": 0.75},
            log_training_input=True,
            serialization="skops",
            tracking_uri=uri,
        )
        v2 = register_version(
            "tiny_model",
            model,
            reference,
            None,
            label=LABEL,
            features=SMALL_FEATURES,
            data_dir=root / "data",
            aliases=["production"],
            log_training_input=True,
            tag_reference=False,
            serialization="cloudpickle",
            tracking_uri=uri,
        )
    finally:
        os.chdir(cwd)
    return {
        "root": root,
        "uri": uri,
        "versions": (v1, v2),
        "model": model,
        "reference": reference,
        "current": current,
        "env_before": before,
    }


def test_register_version_leaves_process_state_and_cwd_untouched(tiny):
    assert tiny["versions"] == ("1", "2")
    assert os.environ.get("MLFLOW_TRACKING_URI") == tiny["env_before"]
    stray = [p.name for p in tiny["root"].parent.iterdir() if p.name in ("mlruns", "mlflow.db")]
    assert stray == []
    assert (tiny["root"] / "mlflow.db").exists() and (tiny["root"] / "artifacts").is_dir()


def test_tags_aliases_and_data_read_back(tiny):
    from mlflow import MlflowClient

    with mlflow_tracking(tiny["uri"]):
        client = MlflowClient()
        registered = client.get_registered_model("tiny_model")
        v1 = client.get_model_version("tiny_model", "1")
        v2 = client.get_model_version("tiny_model", "2")
    assert registered.tags == {"owner": "team@example.com", "assurance.slices": "region"}
    assert {alias: str(v) for alias, v in registered.aliases.items()} == {"champion": "1", "production": "2"}
    assert v1.tags["approval.ticket"] == "CHG-1" and v1.tags["assurance.label"] == LABEL
    assert "assurance.reference" not in v2.tags and "assurance.current" not in v2.tags
    reference = pd.read_parquet(v1.tags["assurance.reference"])
    current = pd.read_parquet(v1.tags["assurance.current"])
    pd.testing.assert_frame_equal(reference, tiny["reference"])
    pd.testing.assert_frame_equal(current, tiny["current"])


def test_run_carries_signature_documents_metrics_and_training_input(tiny):
    import mlflow
    from mlflow import MlflowClient

    with mlflow_tracking(tiny["uri"]):
        client = MlflowClient()
        v1, v2 = (client.get_model_version("tiny_model", v) for v in ("1", "2"))
        info = mlflow.models.get_model_info("models:/tiny_model/1")
        run1, run2 = client.get_run(v1.run_id), client.get_run(v2.run_id)
        artifacts = [a.path for a in client.list_artifacts(v1.run_id)]
    assert info.signature.inputs.input_names() == SMALL_FEATURES
    assert info.signature.outputs is not None
    assert "model_card.md" in artifacts
    assert run1.data.metrics == {"roc_auc": 0.75}
    (dataset_input,) = run2.inputs.dataset_inputs
    assert [t.value for t in dataset_input.tags] == ["training"]
    source = json.loads(dataset_input.dataset.source)["uri"]
    # MLflow reuses a dataset already logged with the same digest, so the source may be v1's equal copy
    assert source.startswith("file://") and source.endswith("/reference.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(source), tiny["reference"])


@pytest.mark.parametrize(("version", "fmt"), [("1", "skops"), ("2", "cloudpickle")])
def test_both_serializations_load_and_predict_like_the_original(tiny, version, fmt):
    import mlflow
    import mlflow.sklearn

    with mlflow_tracking(tiny["uri"]):
        flavor = mlflow.models.get_model_info(f"models:/tiny_model/{version}").flavors["sklearn"]
        loaded = mlflow.sklearn.load_model(f"models:/tiny_model/{version}")
    assert flavor["serialization_format"] == fmt
    X = tiny["current"][SMALL_FEATURES]
    np.testing.assert_allclose(loaded.predict_proba(X), tiny["model"].predict_proba(X))


def test_build_demo_plants_problems_only_in_data_tags_and_documents(tmp_path):
    import mlflow.sklearn
    from mlflow import MlflowClient

    lines: list[str] = []
    demo = build_demo(tmp_path / "demo", progress=lines.append)
    assert demo.versions == [
        ("credit_default", "1"),
        ("credit_default", "2"),
        ("loss_given_default", "1"),
        ("loss_given_default", "2"),
    ]
    assert len(lines) == 6 and all(isinstance(line, str) for line in lines)
    with mlflow_tracking(demo.tracking_uri):
        client = MlflowClient()
        credit = client.get_registered_model("credit_default")
        lgd = client.get_registered_model("loss_given_default")
        c1, c2 = (client.get_model_version("credit_default", v) for v in ("1", "2"))
        l1, l2 = (client.get_model_version("loss_given_default", v) for v in ("1", "2"))
        c2_artifacts = {a.path for a in client.list_artifacts(c2.run_id)}
        c2_claimed = client.get_run(c2.run_id).data.metrics["roc_auc"]
        c2_model = mlflow.sklearn.load_model("models:/credit_default/2")
        l1_inputs = client.get_run(l1.run_id).inputs.dataset_inputs

    assert {a: str(v) for a, v in credit.aliases.items()} == {"champion": "1", "production": "2"}
    assert "approval.ticket" in c1.tags and not any(k.startswith("approval.") for k in c2.tags)
    assert "model_card.md" not in c2_artifacts and "datasheet.md" in c2_artifacts
    assert "owner" not in {**lgd.tags, **l1.tags} and "owner" in l2.tags
    assert "assurance.reference" not in l1.tags and len(l1_inputs) == 1

    from sklearn.metrics import roc_auc_score

    reference = pd.read_parquet(c2.tags["assurance.reference"])
    current = pd.read_parquet(c2.tags["assurance.current"])
    real_auc = roc_auc_score(reference[LABEL], c2_model.predict_proba(reference[FEATURES])[:, 1])
    assert c2_claimed - real_auc > 0.1
    assert current["debt_to_income"].isna().mean() > 0.05
    assert current["credit_utilization"].mean() > reference["credit_utilization"].mean() + 0.1
    assert 5_000 <= len(reference) <= 20_000 and 5_000 <= len(current) <= 20_000
    assert LGD_LABEL not in pd.read_parquet(l2.tags["assurance.current"]).columns
