"""A small synthetic model version for the tests of the model-behaviour analyses.

Loan-like rows whose label follows a logistic model of income, tenure and channel; region and gender
play no part in the label, so a model fitted on clean rows is fair and uniform across them. Tests
plant one problem at a time (scrambled labels in a region, a label-copying feature, rows shared
between reference and current, an ID column) and check that the analyses find exactly that.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from assurance.domain.values import Dataset, Inputs, VersionRecord
from assurance.policy.model import Policy
from assurance.scoring.models import ScoringModel, from_estimator
from assurance.scoring.predict import predict
from tests.version_records import make_record

LABEL = "target"
NUMERIC = ["income", "age", "tenure"]
CATEGORICAL = ["channel", "region", "gender"]
FEATURES = [*NUMERIC, "channel", "region"]
REGIONS = ["north", "south", "east", "west"]


def make_frame(n: int, seed: int) -> pd.DataFrame:
    """`n` rows with a label that depends on income, tenure and channel only."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10.5, 0.4, n),
            "age": rng.integers(21, 75, n),
            "tenure": rng.exponential(4.0, n),
            "channel": rng.choice(["web", "branch", "phone"], n, p=[0.5, 0.3, 0.2]),
            "region": rng.choice(REGIONS, n),
            "gender": rng.choice(["F", "M"], n),
        }
    )
    z = (
        3.0 * (np.log(frame["income"]) - 10.5) / 0.4
        - 0.8 * (frame["tenure"] - 4.0)
        + 1.5 * (frame["channel"] == "web")
        - 0.7
    )
    frame[LABEL] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return frame


def scramble_labels(frame: pd.DataFrame, column: str, value: Any, seed: int) -> pd.DataFrame:
    """Replace the labels of rows where `column == value` with coin flips (the planted slice problem)."""
    out = frame.copy()
    mask = out[column] == value
    out.loc[mask, LABEL] = np.random.default_rng(seed).integers(0, 2, int(mask.sum()))
    return out


def classifier(kind: str = "boosting", features: list[str] | None = None):
    """An unfitted sklearn Pipeline: one-hot categoricals, then boosting or a scaled logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = features or FEATURES
    cats = [c for c in features if c in CATEGORICAL]
    nums = [c for c in features if c not in CATEGORICAL]
    scale = StandardScaler() if kind == "logistic" else "passthrough"
    prep = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats), ("num", scale, nums)]
    )
    final = (
        LogisticRegression(max_iter=500)
        if kind == "logistic"
        else GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0)
    )
    return Pipeline([("prep", prep), ("model", final)])


def fit(frame: pd.DataFrame, kind: str = "boosting", features: list[str] | None = None) -> ScoringModel:
    features = features or FEATURES
    estimator = classifier(kind, features).fit(frame[features], frame[LABEL])
    return from_estimator(estimator, features)


def policy_with(overrides: dict[str, Any]) -> Policy:
    """The default policy with some thresholds replaced, keyed `group.name` (e.g. `explanations.top_k`)."""
    data = copy.deepcopy(Policy().data)
    for dotted, value in overrides.items():
        group, name = dotted.split(".")
        data["thresholds"][group][name] = value
    return Policy(data, "test")


def record(tags: dict[str, str] | None = None) -> VersionRecord:
    """Version 2 of `credit`, labelled `target`, sliced by region and channel, protected attribute gender."""
    defaults = {
        "assurance.label": LABEL,
        "assurance.slices": "region,channel",
        "assurance.protected": "gender",
    }
    return make_record(name="credit", version="2", version_tags={**defaults, **(tags or {})})


def inputs(
    reference: pd.DataFrame,
    current: pd.DataFrame | None,
    model: ScoringModel,
    tags: dict[str, str] | None = None,
    policy: Policy | None = None,
    store: Any = None,
    label: str = LABEL,
) -> Inputs:
    """Inputs as the Dagster layer builds them, with predictions from the model on both datasets."""
    ref = Dataset("reference", "memory://reference", frame=reference, label=label)
    cur = Dataset("current", "memory://current", frame=current, label=label) if current is not None else None
    return Inputs(
        record=record(tags),
        policy=policy or Policy(),
        reference=ref,
        current=cur,
        predictions=predict(model, ref, cur),
        model=model,
        store=store,
    )
