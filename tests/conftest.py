"""Shared fixtures: a small MLflow registry built the way a model owner would, never the demo."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assurance.registry.client import mlflow_process_defaults

mlflow_process_defaults()  # MLflow's own switches (telemetry, progress bars), as every product process sets them
# Great Expectations' own switch, not a product setting
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

FEATURES = ["amount", "tenure", "rate", "segment"]
LABEL = "churned"


def make_frame(n: int, seed: int) -> pd.DataFrame:
    """A small churn-like domain unrelated to the demo's: three numeric features and one category."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 50.0, n),
            "tenure": rng.integers(1, 120, n).astype(float),
            "rate": rng.normal(0.1, 0.03, n),
            "segment": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "customer_ref": [f"c{i}" for i in range(n)],
        }
    )
    logit = (
        -1.0
        + 0.01 * (frame["amount"] - 100)
        - 0.02 * (frame["tenure"] - 60)
        + (frame["segment"] == "c") * 0.8
    )
    frame[LABEL] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def fit_model(frame: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["segment"])], remainder="passthrough"
    )
    model = Pipeline([("pre", pre), ("clf", HistGradientBoostingClassifier(max_iter=60, random_state=0))])
    return model.fit(frame[FEATURES], frame[LABEL])


@dataclass
class SmallRegistry:
    tracking_uri: str
    root: Path
    model: str
    healthy: str
    broken: str


@pytest.fixture(scope="session")
def small_registry(tmp_path_factory) -> SmallRegistry:
    """Model `churn_check` with a healthy version 1 and a version 2 whose current data lost a column and values."""
    from assurance.demo.registry_builder import embedded_tracking_uri, register_version

    root = tmp_path_factory.mktemp("registry")
    uri = embedded_tracking_uri(root)
    reference = make_frame(3000, 1)
    model = fit_model(reference)
    common = {"label": LABEL, "features": FEATURES, "data_dir": root / "data", "tracking_uri": uri}
    v1 = register_version(
        "churn_check",
        model,
        reference,
        make_frame(3000, 2),
        model_tags={"owner": "retention-team", "use_case": "internal churn outreach"},
        documents={"model_card.md": "# Churn model\n\nPredicts churn for outreach. Trained on 2025 data."},
        serialization="skops",
        **common,
    )
    broken = make_frame(3000, 3)
    broken.loc[broken.sample(frac=0.25, random_state=0).index, "amount"] = np.nan
    broken = broken.drop(columns=["rate"])
    v2 = register_version("churn_check", model, reference, broken, serialization="cloudpickle", **common)
    return SmallRegistry(uri, root, "churn_check", v1, v2)
