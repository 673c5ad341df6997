"""Scoring a model version: one interface over native estimators and MLflow pyfunc models.

Native flavors (sklearn, LightGBM, XGBoost) keep `predict_proba` and the estimator itself, which the
explanations need; anything else MLflow can load as pyfunc is scored through `predict`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assurance.domain.errors import ModelLoadError

NATIVE_FLAVORS = ("sklearn", "lightgbm", "xgboost")


@dataclass
class ScoringModel:
    """A loaded model that turns a feature frame into `prediction` (and `score` for binary classifiers)."""

    predict: Callable[[pd.DataFrame], Any]
    features: list[str]
    task: str = "unknown"
    classes: list[Any] = field(default_factory=list)
    predict_proba: Callable[[pd.DataFrame], Any] | None = None
    native: Any = None
    flavor: str = "pyfunc"

    @property
    def positive(self) -> Any:
        return self.classes[1] if self.task == "binary" and len(self.classes) == 2 else None

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model outputs aligned with `frame`'s index; raises KeyError naming absent features."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise KeyError(f"data lacks feature columns the model needs: {', '.join(missing)}")
        X = frame[self.features] if self.features else frame
        if self.predict_proba is not None:
            proba = np.asarray(self.predict_proba(X), dtype=float)
            return _from_proba(proba, self.classes, frame.index)
        raw = self.predict(X)
        return _from_raw(raw, self.task, frame.index)


def _from_proba(proba: np.ndarray, classes: list[Any], index: pd.Index) -> pd.DataFrame:
    if proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba])
    labels = np.asarray(classes if classes else list(range(proba.shape[1])), dtype=object)
    out = pd.DataFrame({"prediction": labels[proba.argmax(axis=1)]}, index=index)
    if proba.shape[1] == 2:
        out["score"] = proba[:, 1]
    return out


def _from_raw(raw: Any, task: str, index: pd.Index) -> pd.DataFrame:
    if isinstance(raw, pd.DataFrame):
        raw = raw.iloc[:, 0].to_numpy() if raw.shape[1] == 1 else raw.to_numpy()
    arr = np.asarray(raw)
    if arr.ndim == 2 and arr.shape[1] > 1:
        return _from_proba(arr.astype(float), [], index)
    arr = arr.reshape(-1)
    out = pd.DataFrame({"prediction": arr}, index=index)
    if task == "binary" and np.issubdtype(arr.dtype, np.floating) and ((arr > 0) & (arr < 1)).any():
        out["score"] = arr
        out["prediction"] = (arr >= 0.5).astype(int)
    return out


def infer_task(estimator: Any, label: pd.Series | None = None) -> tuple[str, list[Any]]:
    """Classifier or regressor, from the estimator's classes when it has them, else from the label."""
    classes = getattr(estimator, "classes_", None)
    if classes is None and hasattr(estimator, "steps"):
        classes = getattr(estimator.steps[-1][1], "classes_", None)
    if classes is not None:
        classes = list(np.asarray(classes).tolist())
        return ("binary" if len(classes) == 2 else "multiclass"), classes
    if label is not None:
        values = label.dropna()
        if values.dtype == bool or values.dtype == object or values.nunique() <= 2:
            uniq = sorted(values.unique().tolist(), key=str)
            return ("binary" if len(uniq) == 2 else "multiclass"), uniq
        if np.issubdtype(values.dtype, np.integer) and values.nunique() <= 20:
            return "multiclass", sorted(values.unique().tolist())
        return "regression", []
    if hasattr(estimator, "predict_proba"):
        return "binary", [0, 1]
    return "regression", []


def from_estimator(
    estimator: Any, features: list[str], label: pd.Series | None = None, flavor: str = "sklearn"
) -> ScoringModel:
    """Wrap an in-memory estimator (sklearn API) so tests and native loading share one code path."""
    task, classes = infer_task(estimator, label)
    proba = (
        estimator.predict_proba
        if task in ("binary", "multiclass") and hasattr(estimator, "predict_proba")
        else None
    )
    return ScoringModel(
        predict=estimator.predict,
        features=features,
        task=task,
        classes=classes,
        predict_proba=proba,
        native=estimator,
        flavor=flavor,
    )


def _flavors(model_dir: Path) -> dict[str, Any]:
    import yaml

    mlmodel = model_dir / "MLmodel"
    if not mlmodel.exists():
        raise ModelLoadError(f"no MLmodel file in the model artifacts at {model_dir}")
    return (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {})


def _load_native(model_dir: Path, flavor: str) -> Any:
    import importlib

    module = importlib.import_module(f"mlflow.{flavor}")
    return module.load_model(str(model_dir))


def load_local(model_dir: Path, features: list[str] | None, label: pd.Series | None = None) -> ScoringModel:
    """Load downloaded model artifacts: natively when the flavor allows, else as pyfunc.

    sklearn models saved with skops or cloudpickle both load through `mlflow.sklearn`, which reads the
    format and the trusted types from the MLmodel file.
    """
    flavors = _flavors(model_dir)
    features = features or []
    problems = []
    for flavor in NATIVE_FLAVORS:
        if flavor not in flavors:
            continue
        try:
            estimator = _load_native(model_dir, flavor)
        except Exception as exc:  # noqa: BLE001 - any loader failure falls through to pyfunc
            problems.append(f"{flavor}: {exc}")
            continue
        return from_estimator(estimator, features or _estimator_features(estimator), label, flavor)
    import mlflow.pyfunc

    try:
        pyfunc = mlflow.pyfunc.load_model(str(model_dir))
    except Exception as exc:  # noqa: BLE001
        problems.append(f"pyfunc: {exc}")
        raise ModelLoadError("; ".join(problems)) from exc
    task, classes = infer_task(None, label)
    return ScoringModel(
        predict=pyfunc.predict, features=features, task=task, classes=classes, flavor="pyfunc"
    )


def _estimator_features(estimator: Any) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else []
