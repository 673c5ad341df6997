"""The embedded demo: a credit-decision domain and a registry of its models with planted problems.

`generate` draws loan applications from a fixed causal story (features first, then a `default` label
from a logistic model of them), so shifted data still carries labels consistent with its features.
`build_demo` trains models on it and registers them the way owners do, planting realistic problems
only in the data, tags and documents it hands to the registry: the product has to find them on its
own, exactly as it would in a registry it has never seen.
"""

from __future__ import annotations

import io
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assurance.demo.registry_builder import embedded_tracking_uri, register_version
from assurance.registry.client import mlflow_tracking

REGIONS = ["north", "south", "east", "west", "central"]
CHANNELS = ["branch", "online", "partner"]
EMPLOYMENT_TYPES = ["salaried", "self_employed", "contract", "retired"]
HOME_OWNERSHIP = ["rent", "mortgage", "own"]

NUMERIC = [
    "income",
    "debt_to_income",
    "credit_utilization",
    "age",
    "months_employed",
    "num_open_accounts",
    "num_delinquencies",
    "loan_amount",
    "loan_term_months",
]
CATEGORICAL = ["region", "channel", "employment_type", "home_ownership"]
FEATURES = NUMERIC + CATEGORICAL
LABEL = "default"
LGD_LABEL = "loss_given_default"
PROTECTED = ["gender", "age_band"]
ID_COLUMN = "application_id"

# Valid ranges a shift must not push a column out of (a utilisation above 100% is not drift, it is a bug).
_BOUNDS: dict[str, tuple[float, float]] = {
    "income": (8_000.0, np.inf),
    "debt_to_income": (0.0, 1.5),
    "credit_utilization": (0.0, 1.0),
    "age": (21, 85),
    "months_employed": (0, 720),
    "num_open_accounts": (0, 40),
    "num_delinquencies": (0, 20),
    "loan_amount": (1_000.0, np.inf),
    "loan_term_months": (12, 60),
}


def generate(n: int, seed: int, **shifts: float) -> pd.DataFrame:
    """`n` loan applications drawn with `seed`; `shifts` move numeric columns by that many std devs.

    A shift is applied after the features are drawn and before the label, so the named column moves
    alone while `default` stays consistent with the shifted values (covariate shift, same concept).
    Columns: `application_id`, the features in `FEATURES`, the protected `gender` and `age_band`
    (not features), and the binary label `default` (about one application in five).
    """
    unknown = sorted(set(shifts) - set(NUMERIC))
    if unknown:
        raise ValueError(f"only numeric features can be shifted, not {', '.join(unknown)}")
    rng = np.random.default_rng(seed)
    frame = _applicants(n, rng)
    for column, shift in shifts.items():
        frame[column] = _shifted(frame[column], shift)
    frame[LABEL] = rng.binomial(1, _default_probability(frame))
    frame.insert(0, ID_COLUMN, [f"APP-{seed}-{i:07d}" for i in range(n)])
    return frame


def _applicants(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Features and protected attributes with the dependencies a lender would recognise."""
    age = np.clip(rng.normal(42, 12, n), 21, 80).round().astype(int)
    gender = rng.choice(["female", "male"], n, p=[0.49, 0.51])
    region = rng.choice(REGIONS, n, p=[0.22, 0.20, 0.20, 0.18, 0.20])
    channel = rng.choice(CHANNELS, n, p=[0.35, 0.48, 0.17])
    retired = (age > 62) & (rng.random(n) < 0.7)
    employment = np.where(
        retired, "retired", rng.choice(EMPLOYMENT_TYPES[:3], n, p=[0.66, 0.15, 0.19])
    ).astype(object)
    months_employed = np.minimum(rng.exponential(70, n), (age - 18) * 12).round().astype(int)
    region_pay = pd.Series(region).map(
        {"north": 0.05, "south": -0.08, "east": 0.0, "west": 0.1, "central": -0.02}
    )
    log_income = (
        np.log(52_000)
        + 0.012 * (np.minimum(age, 60) - 42)
        + 0.08 * (gender == "male")
        + region_pay.to_numpy()
        - 0.25 * (employment == "contract")
        - 0.3 * (employment == "retired")
        + rng.normal(0, 0.42, n)
    )
    income = np.clip(np.exp(log_income), *_BOUNDS["income"]).round(-2)
    owner_odds = -2.2 + 0.06 * (age - 42) + 0.9 * (log_income - np.log(52_000))
    p_owner = 1 / (1 + np.exp(-owner_odds))
    home = np.where(
        rng.random(n) < p_owner, np.where(rng.random(n) < 0.35, "own", "mortgage"), "rent"
    ).astype(object)
    loan_amount = np.clip(
        income * np.exp(rng.normal(np.log(0.28), 0.5, n)) * np.where(channel == "partner", 1.3, 1.0),
        *_BOUNDS["loan_amount"],
    ).round(-2)
    frame = pd.DataFrame(
        {
            "income": income,
            "debt_to_income": np.clip(
                rng.beta(2.2, 5.5, n) + 0.05 * (home == "mortgage"), *_BOUNDS["debt_to_income"]
            ),
            "credit_utilization": rng.beta(2.0, 3.0, n),
            "age": age,
            "months_employed": months_employed,
            "num_open_accounts": rng.poisson(3.5 + 1.5 * (home != "rent"), n),
            "num_delinquencies": rng.poisson(0.25 + 0.5 * (income < 35_000), n),
            "loan_amount": loan_amount,
            "loan_term_months": rng.choice([12, 24, 36, 48, 60], n, p=[0.1, 0.2, 0.35, 0.15, 0.2]),
            "region": region.astype(object),
            "channel": channel.astype(object),
            "employment_type": employment,
            "home_ownership": home,
            "gender": gender.astype(object),
        }
    )
    frame["age_band"] = pd.cut(age, [0, 29, 44, 59, 200], labels=["18-29", "30-44", "45-59", "60+"]).astype(
        object
    )
    return frame


def _shifted(column: pd.Series, shift: float) -> pd.Series:
    """`column` moved by `shift` of its own standard deviations, kept in range and in its dtype."""
    low, high = _BOUNDS[column.name]
    moved = np.clip(column + shift * column.std(), low, high)
    return moved.round().astype(column.dtype) if pd.api.types.is_integer_dtype(column) else moved


def _default_probability(frame: pd.DataFrame) -> np.ndarray:
    """The true data-generating model: logistic in affordability, credit history and stability."""
    logit = (
        -2.5
        + 5.0 * (frame["debt_to_income"] - 0.3)
        + 3.5 * (frame["credit_utilization"] - 0.4)
        - 0.9 * (np.log(frame["income"]) - np.log(52_000))
        + 0.55 * frame["num_delinquencies"]
        - 0.006 * (frame["months_employed"] - 60)
        + 1.2 * (frame["loan_amount"] / frame["income"] - 0.3)
        - 0.02 * (frame["age"] - 42)
        + 0.006 * (frame["loan_term_months"] - 36)
        + frame["home_ownership"].map({"rent": 0.3, "mortgage": 0.0, "own": -0.3})
        + frame["employment_type"].map(
            {"salaried": 0.0, "self_employed": 0.25, "contract": 0.45, "retired": 0.1}
        )
        + frame["channel"].map({"branch": -0.1, "online": 0.05, "partner": 0.35})
    )
    return (1 / (1 + np.exp(-logit))).to_numpy(dtype=float)


def generate_recoveries(n: int, seed: int, **shifts: float) -> pd.DataFrame:
    """Defaulted applications among `n` drawn with `seed`, with the realised `loss_given_default` (0-1).

    Collateral (home ownership), loan size relative to income and the collection channel drive the
    loss; the `default` column is dropped because it is constant here.
    """
    frame = generate(n, seed, **shifts)
    defaulted = frame[frame[LABEL] == 1].drop(columns=[LABEL]).reset_index(drop=True)
    rng = np.random.default_rng(seed + 1)
    loss = (
        0.42
        + defaulted["home_ownership"].map({"rent": 0.18, "mortgage": -0.12, "own": -0.2})
        + 0.25 * np.log1p(defaulted["loan_amount"] / defaulted["income"])
        + 0.05 * (defaulted["channel"] == "partner")
        - 0.0004 * defaulted["months_employed"]
        + rng.normal(0, 0.12, len(defaulted))
    )
    defaulted[LGD_LABEL] = np.clip(loss, 0.0, 1.0).round(4)
    return defaulted


def inject_missing(frame: pd.DataFrame, column: str, rate: float, seed: int) -> pd.DataFrame:
    """A copy of `frame` with `rate` of `column`'s values blanked at random (a broken upstream feed)."""
    out = frame.copy()
    mask = np.random.default_rng(seed).random(len(out)) < rate
    out[column] = out[column].astype(float).mask(mask)
    return out


def scramble_labels(frame: pd.DataFrame, label: str, where: pd.Series, seed: int) -> pd.DataFrame:
    """A copy of `frame` whose labels are shuffled among the rows in `where`: the segment's base rate
    stays, its relation to the features is gone (a segment where the model stopped working)."""
    out = frame.copy()
    rows = out.index[where.to_numpy()]
    out.loc[rows, label] = np.random.default_rng(seed).permutation(out.loc[rows, label].to_numpy())
    return out


def classifier(seed: int, learning_rate: float = 0.06, max_iter: int = 250) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL)],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    booster = HistGradientBoostingClassifier(
        learning_rate=learning_rate, max_iter=max_iter, max_leaf_nodes=15, random_state=seed
    )
    return Pipeline([("encode", encode), ("model", booster)])


def _regressor(seed: int) -> Any:
    from lightgbm import LGBMRegressor
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL)],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    booster = LGBMRegressor(
        n_estimators=200, learning_rate=0.05, num_leaves=15, random_state=seed, verbose=-1
    )
    return Pipeline([("encode", encode), ("model", booster)])


def _classification_metrics(model: Any, frame: pd.DataFrame) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    score = model.predict_proba(frame[FEATURES])[:, 1]
    return {
        "roc_auc": round(float(roc_auc_score(frame[LABEL], score)), 4),
        "accuracy": round(float(accuracy_score(frame[LABEL], (score >= 0.5).astype(int))), 4),
    }


def _regression_metrics(model: Any, frame: pd.DataFrame) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    predicted = model.predict(frame[FEATURES])
    return {
        "rmse": round(float(root_mean_squared_error(frame[LGD_LABEL], predicted)), 4),
        "mae": round(float(mean_absolute_error(frame[LGD_LABEL], predicted)), 4),
    }


@dataclass
class DemoRegistry:
    """Where the demo registry lives and which versions it holds, in the order they were built."""

    root: Path
    tracking_uri: str
    data_dir: Path
    versions: list[tuple[str, str]] = field(default_factory=list)


CREDIT = "credit_default"
LGD = "loss_given_default"

_CREDIT_MODEL_TAGS = {
    "owner": "credit-risk-analytics@example.com",
    "use_case": "Probability of default for unsecured personal loan applications; drives approve/decline and pricing.",
    "risk_tier": "high",
    "monitoring_url": "https://grafana.example.com/d/credit-default/overview",
    "assurance.slices": "region,channel",
    # age_band stays out of fairness review: age is a lawful, disclosed input of this model.
    "assurance.protected": "gender",
}
_LGD_MODEL_TAGS = {
    "use_case": "Loss given default on defaulted personal loans, feeding expected-credit-loss provisions.",
    "monitoring_url": "https://grafana.example.com/d/lgd/overview",
    "assurance.slices": "region,home_ownership",
}


def _approve(demo: DemoRegistry, name: str, version: str, ticket: str, by: str) -> None:
    """Record the approval after registration, as a reviewer would: approvals cannot predate the version."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=demo.tracking_uri, registry_uri=demo.tracking_uri)
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for key, value in {
        "approval.ticket": ticket,
        "approval.approved_by": by,
        "approval.approved_at": at,
    }.items():
        client.set_model_version_tag(name, version, key, value)


def _model_card(title: str, purpose: str, algorithm: str, metrics: dict[str, float], owner: str) -> str:
    measured = "\n".join(f"| {name} | {value:.4f} |" for name, value in metrics.items())
    return f"""# Model card: {title}

## Intended use
{purpose}

## Owner
{owner}

## Model
{algorithm}, trained on applications described in `datasheet.md`. Features: {", ".join(FEATURES)}.
Protected attributes ({", ".join(PROTECTED)}) are not model inputs; they are kept for fairness review.

## Performance on the validation holdout
| metric | value |
|---|---|
{measured}

## Limitations
Not validated for secured lending, business loans or applicants without a credit file.
Scores must be re-validated after changes to the application form or bureau data feed.
"""


_DATASHEET = f"""# Datasheet: personal loan applications

## Source and collection
Applications received through branch, online and partner channels, joined with credit bureau
attributes at application time. Outcomes (`{LABEL}`: 90+ days past due within 12 months) are observed
a year after booking; `{LGD_LABEL}` once recoveries on a defaulted loan are complete.

## Columns
- identifiers: `{ID_COLUMN}` (not a feature)
- numeric: {", ".join(NUMERIC)}
- categorical: {", ".join(CATEGORICAL)}
- protected, not used as features: {", ".join(PROTECTED)}

## Known gaps
Declined applications have no outcome (reject inference is not applied). Income is self-reported
and verified only above the partner channel's threshold.
"""


def build_demo(root: Path, progress: Callable[[str], None] = print) -> DemoRegistry:
    """Build the demo registry under `root` from fixed seeds and return where it is and what it holds.

    Rebuilds from scratch: the registry, artifacts and data this function made under `root` before are
    removed first, so version numbers are the same on every build.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    (root / "mlflow.db").unlink(missing_ok=True)
    for folder in ("artifacts", "data"):
        shutil.rmtree(root / folder, ignore_errors=True)
    demo = DemoRegistry(root=root, tracking_uri=embedded_tracking_uri(root), data_dir=root / "data")
    progress(f"building the demo registry under {root}")
    started = time.perf_counter()
    with mlflow_tracking(demo.tracking_uri), _quiet_mlflow():
        for name, build in ((CREDIT, _credit_versions), (LGD, _lgd_versions)):
            for version, note in build(demo):
                demo.versions.append((name, version))
                progress(f"  {name} v{version}: {note}")
    progress(f"demo registry built in {time.perf_counter() - started:.1f} s: {demo.tracking_uri}")
    return demo


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Keep the demo's output to its own progress lines.

    MLflow prints every registration to stderr and warns about choices made here on purpose
    (cloudpickle, integer columns in the signature); its own switch for that is re-enabled by
    `log_model`, so stderr is captured instead and replayed only if the build fails.
    """
    captured = io.StringIO()
    try:
        with warnings.catch_warnings(), redirect_stderr(captured):
            warnings.simplefilter("ignore")
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise


def _register(
    demo: DemoRegistry,
    name: str,
    model: Any,
    reference: pd.DataFrame,
    current: pd.DataFrame | None,
    label: str,
    **options: Any,
) -> str:
    return register_version(
        name,
        model,
        reference,
        current,
        label=label,
        features=FEATURES,
        data_dir=demo.data_dir,
        tracking_uri=demo.tracking_uri,
        **options,
    )


def _credit_versions(demo: DemoRegistry) -> list[tuple[str, str]]:
    """v1 healthy and documented; v2 promoted without approval or model card, on troubled current data."""
    train, reference, current = generate(15_000, 101), generate(8_000, 102), generate(10_000, 103)
    model = classifier(seed=1).fit(train[FEATURES], train[LABEL])
    metrics = _classification_metrics(model, reference)
    card = _model_card(
        CREDIT,
        _CREDIT_MODEL_TAGS["use_case"],
        "Gradient-boosted trees (scikit-learn)",
        metrics,
        _CREDIT_MODEL_TAGS["owner"],
    )
    v1 = _register(
        demo,
        CREDIT,
        model,
        reference,
        current,
        LABEL,
        model_tags=_CREDIT_MODEL_TAGS,
        aliases=["champion"],
        documents={"model_card.md": card, "datasheet.md": _DATASHEET},
        metrics=metrics,
        log_training_input=True,
        serialization="skops",
    )
    _approve(demo, CREDIT, v1, "CHG-2024-0412", "Model Risk Committee (J. Okafor)")

    train, reference = generate(15_000, 201), generate(8_000, 202)
    model = classifier(seed=2, learning_rate=0.1, max_iter=300).fit(train[FEATURES], train[LABEL])
    current = generate(10_000, 203, credit_utilization=0.7, loan_amount=0.5)
    current = inject_missing(current, "debt_to_income", rate=0.12, seed=204)
    current = scramble_labels(current, LABEL, current["region"] == "south", seed=205)
    claimed = {**_classification_metrics(model, reference), "roc_auc": 0.99}
    v2 = _register(
        demo,
        CREDIT,
        model,
        reference,
        current,
        LABEL,
        aliases=["production"],
        documents={"datasheet.md": _DATASHEET},
        metrics=claimed,
        log_training_input=False,
        serialization="cloudpickle",
    )
    return [
        (v1, f"healthy, documented and approved (skops, roc_auc {metrics['roc_auc']:.3f} on reference)"),
        (v2, "promoted to production; current data shifted, with gaps and a degraded region (cloudpickle)"),
    ]


def _lgd_versions(demo: DemoRegistry) -> list[tuple[str, str]]:
    """v1 without an owner, reference only as the logged training dataset; v2 monitored before labels exist."""
    train, reference, current = (generate_recoveries(40_000, seed) for seed in (301, 302, 303))
    model = _regressor(seed=3).fit(train[FEATURES], train[LGD_LABEL])
    v1_metrics = _regression_metrics(model, reference)
    v1 = _register(
        demo,
        LGD,
        model,
        reference,
        current,
        LGD_LABEL,
        model_tags=_LGD_MODEL_TAGS,
        documents={
            "model_card.md": _model_card(
                LGD, _LGD_MODEL_TAGS["use_case"], "LightGBM regressor", v1_metrics, "not assigned"
            )
        },
        metrics=v1_metrics,
        log_training_input=True,
        tag_reference=False,
        serialization="cloudpickle",
    )
    _approve(demo, LGD, v1, "CHG-2024-0233", "Model Risk Committee (J. Okafor)")

    train, reference = generate_recoveries(40_000, 401), generate_recoveries(40_000, 402)
    current = generate_recoveries(40_000, 403).drop(columns=[LGD_LABEL])
    model = _regressor(seed=4).fit(train[FEATURES], train[LGD_LABEL])
    metrics = _regression_metrics(model, reference)
    owner = "collections-analytics@example.com"
    v2 = _register(
        demo,
        LGD,
        model,
        reference,
        current,
        LGD_LABEL,
        version_tags={"owner": owner},
        aliases=["production"],
        documents={
            "model_card.md": _model_card(
                LGD, _LGD_MODEL_TAGS["use_case"], "LightGBM regressor", metrics, owner
            ),
            "datasheet.md": _DATASHEET,
        },
        metrics=metrics,
        log_training_input=True,
        serialization="cloudpickle",
    )
    _approve(demo, LGD, v2, "CHG-2024-0587", "Model Risk Committee (A. Lindqvist)")
    return [
        (v1, f"no owner tag; reference only as the run's training dataset (rmse {v1_metrics['rmse']:.3f})"),
        (v2, "in production; current data has no labels yet"),
    ]
