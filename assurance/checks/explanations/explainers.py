"""SHAP explainers: the fast TreeExplainer where shap can walk the model, else a budgeted
PermutationExplainer over integer-coded features; both explain in batches within a time budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from assurance.checks.explanations.codec import Codec
from assurance.checks.rows import describe_error, sample

if TYPE_CHECKING:
    from assurance.scoring.models import ScoringModel

Explain = Callable[[pd.DataFrame], np.ndarray]


class NotExplainable(Exception):
    """The model cannot be explained; the message says why."""


@dataclass
class Explainer:
    """`explain(frame)` gives one row of attributions per row, one column per source feature."""

    explain: Explain
    kind: str
    note: str = ""
    setup_seconds: float = 0.0


@dataclass
class Attributions:
    values: pd.DataFrame  # explained rows x source features, indexed like the frame they came from
    kind: str
    seconds: float
    requested: int

    @property
    def mean_abs(self) -> pd.Series:
        return self.values.abs().mean()


def pick_output(raw: Any, task: str, row_class: np.ndarray | None) -> np.ndarray:
    """Rows x features for the explained output: P(positive) or its log-odds for binary models, the
    predicted class for multiclass ones, the value for regressors."""
    arr = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw)
    if arr.ndim == 2:
        return arr
    if task == "binary" or row_class is None:
        return arr[:, :, -1]
    return arr[np.arange(len(arr)), :, row_class]


def predicted_class(model: ScoringModel, frame: pd.DataFrame) -> np.ndarray | None:
    """Index of each row's predicted class among the model's classes (multiclass only)."""
    if model.task != "multiclass" or not model.classes:
        return None
    lookup = {c: i for i, c in enumerate(model.classes)}
    return model.score(frame)["prediction"].map(lookup).fillna(0).astype(int).to_numpy()


def source_matrix(names_out: list[str], features: list[str]) -> tuple[np.ndarray, list[str]]:
    """0/1 matrix summing transformed columns (`cat__region_north`, `num__age`) back to source features;
    a column no feature name explains keeps its own name."""
    by_length = sorted(features, key=len, reverse=True)
    sources = []
    for name in names_out:
        rest = name.split("__", 1)[1] if "__" in name else name
        match = next((f for f in by_length if rest == f or rest.startswith(f + "_")), None)
        sources.append(match or name)
    columns = list(dict.fromkeys([*features, *sources]))
    matrix = np.zeros((len(names_out), len(columns)))
    matrix[np.arange(len(names_out)), [columns.index(s) for s in sources]] = 1.0
    used = matrix.any(axis=0) | np.isin(columns, features)
    return matrix[:, used], [c for c, u in zip(columns, used, strict=True) if u]


def tree_explainer(model: ScoringModel, features: list[str]) -> Explainer:
    """TreeExplainer on the native estimator, or on a Pipeline's last step after its transforms."""
    import shap

    estimator, prep = model.native, None
    if estimator is None:
        raise NotExplainable("the model has no native estimator (pyfunc)")
    if hasattr(estimator, "steps") and len(estimator.steps) > 1:
        prep, estimator = estimator[:-1], estimator.steps[-1][1]
    try:
        explainer = shap.TreeExplainer(estimator)
        names = list(prep.get_feature_names_out()) if prep is not None else features
    except Exception as exc:  # noqa: BLE001 - shap raises several types for models it cannot walk
        raise NotExplainable(f"not a tree model shap can walk ({type(exc).__name__})") from exc
    matrix, columns = source_matrix(names, features) if prep is not None else (None, features)

    def explain(frame: pd.DataFrame) -> np.ndarray:
        X = frame[features]
        if prep is not None:
            X = prep.transform(X)
            X = X.toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=float)
        raw = explainer.shap_values(X, check_additivity=False)
        values = pick_output(raw, model.task, predicted_class(model, frame))
        return pd.DataFrame(
            values @ matrix if matrix is not None else values, columns=columns, index=frame.index
        )

    return Explainer(explain, "tree")


def model_output(model: ScoringModel) -> Callable[[pd.DataFrame], np.ndarray]:
    """The number(s) a model-agnostic explainer explains: P(positive), class probabilities or the value."""
    if model.task == "multiclass":
        if model.predict_proba is None:
            raise NotExplainable(
                "a multiclass model without class probabilities has no numeric output to explain"
            )
        return lambda frame: np.asarray(
            model.predict_proba(frame[model.features] if model.features else frame), dtype=float
        )

    def output(frame: pd.DataFrame) -> np.ndarray:
        scores = model.score(frame)
        column = "score" if "score" in scores.columns else "prediction"
        return pd.to_numeric(scores[column], errors="coerce").to_numpy(dtype=float)

    return output


def permutation_explainer(
    model: ScoringModel, features: list[str], background: pd.DataFrame, rows: pd.DataFrame
) -> Explainer:
    """Model-agnostic SHAP: a PermutationExplainer masking integer-coded features with `background`."""
    import shap

    codec = Codec(pd.concat([background[features], rows[features]]), features)
    output = model_output(model)
    masker = shap.maskers.Independent(codec.encode(background), max_samples=len(background))
    explainer = shap.PermutationExplainer(lambda array: output(codec.decode(array)), masker, seed=0)
    evals = 2 * (2 * len(features) + 1)

    def explain(frame: pd.DataFrame) -> np.ndarray:
        result = explainer(codec.encode(frame), max_evals=evals, silent=True)
        values = pick_output(result.values, model.task, predicted_class(model, frame))
        return pd.DataFrame(values, columns=features, index=frame.index)

    return Explainer(explain, "permutation")


def make_explainer(
    model: ScoringModel, features: list[str], background: pd.DataFrame, rows: pd.DataFrame
) -> Explainer:
    """The tree explainer when it works on a few rows, else the model-agnostic one (saying why).

    Either is run once here, which also pays shap's one-off JIT compilation (seconds on first use)
    before the budgeted batches start timing the explainer's pace."""
    try:
        explainer = tree_explainer(model, features)
        explainer.explain(background.head(2))
        return explainer
    except Exception as exc:  # noqa: BLE001 - any tree-path failure falls back to the agnostic explainer
        reason = (
            str(exc)
            if isinstance(exc, NotExplainable)
            else f"the tree explainer failed ({type(exc).__name__})"
        )
    fallback = permutation_explainer(model, features, background, rows)
    fallback.note = f"model-agnostic permutation explainer: {reason}"
    try:
        fallback.explain(background.head(1))
    except NotExplainable:
        raise
    except Exception as exc:  # noqa: BLE001 - the model cannot score the masked rows
        raise NotExplainable(f"the model could not score masked rows ({describe_error(exc)})") from exc
    return fallback


def explain_within(explainer: Explainer, frame: pd.DataFrame, seconds: float) -> Attributions:
    """Explain `frame` in batches that start at one row and at most double, each sized to fit what is
    left of `seconds` at the pace seen so far: the budget holds for models of any speed.

    The first rows of `frame` are always explained first, so callers put the rows they must have first.
    A batch the explainer cannot explain ends the attempt with NotExplainable saying why."""
    start = time.perf_counter()
    parts, done, batch = [], 0, 1
    while done < len(frame) and batch >= 1:
        try:
            parts.append(explainer.explain(frame.iloc[done : done + batch]))
        except Exception as exc:  # noqa: BLE001 - e.g. a model that cannot score some rows' values
            raise NotExplainable(
                f"the {explainer.kind} explainer failed on sampled rows ({describe_error(exc)})"
            ) from exc
        done += len(parts[-1])
        elapsed = time.perf_counter() - start
        affordable = (seconds - elapsed) * 0.9 * done / elapsed if elapsed > 0 else len(frame)
        batch = int(min(2 * batch, affordable))
    values = pd.concat(parts) if parts else pd.DataFrame()
    return Attributions(values, explainer.kind, time.perf_counter() - start, len(frame))


def global_importance(
    model: ScoringModel,
    frame: pd.DataFrame,
    features: list[str],
    rows: int,
    background_rows: int,
    seconds: float,
) -> Attributions:
    """Mean |SHAP| per feature on a seeded sample of `frame`, within `seconds` (leakage uses this too)."""
    rows_frame = sample(frame, rows, seed=1)
    explainer = make_explainer(model, features, sample(frame, background_rows, seed=2), rows_frame)
    return explain_within(explainer, rows_frame, seconds)
