"""The rows an analysis judges: data aligned with the model's outputs, its label and its features.

Slices, fairness, leakage, explanations and robustness all need the same few things: which dataset
to evaluate (current when it is labelled, else reference, and the report says which), the label and
the model's outputs aligned row by row, the positive class, and the model's feature columns.
Performance and reproducibility read one named dataset's rows as the arrays the metrics weigh;
slices and fairness group rows by the values of a column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from assurance.checks.metrics import Labelled
from assurance.domain.checks import CheckSpec
from assurance.domain.errors import describe_error  # noqa: F401 - checks import it from here
from assurance.domain.values import Section

if TYPE_CHECKING:
    from assurance.domain.values import Dataset, Inputs, Predictions

CLASSIFICATION = ("binary", "multiclass")
MISSING = "(missing)"
OTHER = "(other)"
Z95 = 1.959963984540054  # two-sided 95% normal quantile


class Unavailable(Exception):
    """The data an analysis needs is not there; the message is the reason the report shows."""


@dataclass
class Outcomes:
    """One dataset's rows with the model's outputs beside them, on a fresh RangeIndex.

    `label` is None when the dataset has no label; `score` is P(positive) for binary classifiers.
    """

    role: str
    frame: pd.DataFrame
    prediction: pd.Series
    label: pd.Series | None
    score: pd.Series | None
    task: str
    positive: Any

    @property
    def rows(self) -> int:
        return len(self.frame)

    def positives(self, values: pd.Series) -> np.ndarray:
        """Boolean array: which of `values` (labels or predictions) are the positive class."""
        return (values == self.positive).to_numpy(dtype=bool)


def label_issue(dataset: Dataset, predictions: Predictions | None) -> str | None:
    """Why the dataset's label column cannot measure the model, or None when it can (or there is none).

    A label that is all missing, or whose values are mostly of a kind the model cannot predict (text for a
    regressor, values outside a classifier's classes: the column does not fit the task, whatever a few
    stray rows say), would yield empty or meaningless metrics, so every analysis treats such a dataset as
    unlabelled and performance reports why.
    """
    if not dataset.has_label:
        return None
    values = dataset.frame[dataset.label].dropna()
    if values.empty:
        return f"its label column '{dataset.label}' holds no values ({dataset.rows:,} rows, all missing)"
    task = predictions.task if predictions is not None else "unknown"
    if task == "regression":
        unusable = pd.to_numeric(values, errors="coerce").isna()
        what = "are not numbers, which a regression model's predictions are compared with"
    elif task in CLASSIFICATION and predictions.classes:
        unusable = ~values.isin(predictions.classes)
        what = f"are none of the classes the model predicts ({_examples(pd.Series(predictions.classes))})"
    else:
        return None
    if unusable.sum() * 2 <= len(values):
        return None
    return f"{int(unusable.sum()):,} of its {len(values):,} labels ({_examples(values[unusable])}) {what}"


def _examples(values: pd.Series, shown: int = 3) -> str:
    distinct = [str(v)[:40] for v in pd.unique(values)[:shown]]
    more = ", ..." if values.nunique() > shown else ""
    return ", ".join(f"'{v}'" for v in distinct) + more


def outcomes(inputs: Inputs, labelled: bool = True) -> Outcomes:
    """Current data when it can be used, else reference; with `labelled`, only labelled data counts.

    Rows whose label is missing are dropped, since no outcome can be judged on them.
    """
    predictions = inputs.predictions
    if predictions is None:
        raise Unavailable("no model predictions are available")
    reasons = []
    for role in ("current", "reference"):
        dataset = inputs.dataset(role)
        scores = predictions.for_role(role)
        if dataset is None or not dataset.ok:
            reasons.append(f"no {role} data")
        elif labelled and not dataset.has_label:
            reasons.append(f"{role} data has no label column")
        elif labelled and (issue := label_issue(dataset, predictions)):
            reasons.append(f"{role} data's labels cannot be used: {issue}")
        elif not scores.ok:
            reasons.append(f"{role} data was not scored ({scores.error})")
        elif len(scores.frame) != len(dataset.frame):
            reasons.append(f"{role} scores do not align with its rows")
        else:
            usable = dataset.has_label and label_issue(dataset, predictions) is None
            return _aligned(role, dataset.frame, dataset.label if usable else None, scores.frame, inputs)
    raise Unavailable("; ".join(reasons))


def _aligned(
    role: str, frame: pd.DataFrame, label: str | None, scores: pd.DataFrame, inputs: Inputs
) -> Outcomes:
    frame = frame.reset_index(drop=True)
    scores = scores.reset_index(drop=True)
    keep = scores["prediction"].notna()
    if label:
        keep &= frame[label].notna()
    frame, scores = frame[keep].reset_index(drop=True), scores[keep].reset_index(drop=True)
    task = inputs.predictions.task
    return Outcomes(
        role=role,
        frame=frame,
        prediction=scores["prediction"],
        label=frame[label] if label else None,
        score=scores["score"].astype(float) if "score" in scores.columns else None,
        task=task,
        positive=_positive(inputs, frame[label] if label else None) if task == "binary" else None,
    )


def _positive(inputs: Inputs, label: pd.Series | None) -> Any:
    """The class `score` is the probability of: from the predictions, the model, or the label's last value."""
    predictions = inputs.predictions
    if predictions.positive is not None:
        return predictions.positive
    if len(predictions.classes) == 2:
        return predictions.classes[1]
    if label is not None and label.nunique() == 2:
        return sorted(label.unique().tolist(), key=str)[-1]
    return 1


def role_outcomes(inputs: Inputs, role: str) -> Outcomes:
    """One named dataset aligned with the model's outputs on it, labelled or not; `Unavailable` says why not.

    Only the label column travels along: aligning copies the frame, and metrics need no features.
    """
    predictions, dataset = inputs.predictions, inputs.dataset(role)
    if predictions is None:
        raise Unavailable("no model predictions are available")
    scores = predictions.for_role(role)
    if dataset is None or not dataset.ok:
        raise Unavailable(f"no {role} data")
    if not scores.ok:
        raise Unavailable(f"{role} data was not scored ({scores.error})")
    if len(scores.frame) != len(dataset.frame):
        raise Unavailable(f"{role} scores do not align with its rows")
    label = dataset.label if dataset.has_label and label_issue(dataset, predictions) is None else None
    return _aligned(role, dataset.frame[[label] if label else []], label, scores.frame, inputs)


def labelled_arrays(out: Outcomes) -> Labelled:
    """Arrays of the rows whose label and model output are both known; `Unavailable` if there are none."""
    if out.label is None:
        raise Unavailable(f"{out.role} data has no labels")
    if out.task == "binary":
        keep = out.prediction.notna() & (out.score.notna() if out.score is not None else True)
        score = None if out.score is None else out.score[keep].to_numpy(dtype=float)
        return Labelled(
            "binary", out.positives(out.prediction[keep]), out.positives(out.label[keep]).astype(float), score
        )
    if out.task == "multiclass":
        keep = out.prediction.notna()
        codes, _ = pd.factorize(
            np.concatenate([out.label[keep].to_numpy(object), out.prediction[keep].to_numpy(object)])
        )
        return Labelled("multiclass", codes[keep.sum() :], codes[: keep.sum()])
    if out.task == "regression":
        truth = pd.to_numeric(out.label, errors="coerce").to_numpy(dtype=float)
        predicted = pd.to_numeric(out.prediction, errors="coerce").to_numpy(dtype=float)
        keep = np.isfinite(truth) & np.isfinite(predicted)
        return Labelled("regression", predicted[keep], truth[keep])
    raise Unavailable(f"the model's task is {out.task!r}, so no metrics apply")


def group_labels(frame: pd.DataFrame, columns: list[str], max_values: int, bins: int) -> pd.DataFrame:
    """Each column as categorical group labels: many-valued numbers become quantile bins, many-valued
    text keeps its most frequent values and groups the rest, and missing values are a group of their own."""
    out = {}
    for col in columns:
        values = frame[col]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric and values.nunique() > max_values:
            values = pd.qcut(values, q=bins, duplicates="drop")
        labels = values.astype(str).where(values.notna(), MISSING)
        if not numeric:
            top = labels.value_counts().index[:max_values]
            labels = labels.where(labels.isin(top), OTHER)
        out[col] = labels.astype("category")
    return pd.DataFrame(out, index=frame.index)


def feature_columns(inputs: Inputs, frame: pd.DataFrame) -> list[str]:
    """The model's features present in `frame`: from the model, else the signature, else every non-label column."""
    names = (inputs.model.features if inputs.model is not None else None) or inputs.record.feature_names
    if not names:
        labels = {d.label for d in (inputs.reference, inputs.current) if d is not None and d.label}
        names = [c for c in frame.columns if c not in labels]
    return [c for c in names if c in frame.columns]


def is_categorical(values: pd.Series) -> bool:
    """Strings, categories and booleans are treated as categories; numbers are not."""
    return not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def sample(frame: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of at most `rows` rows, so results repeat and cost stays bounded at any size."""
    return frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame


def present_columns(
    section: Section, requested: list[str], frame: pd.DataFrame, tag: str, check: CheckSpec, severity: str
) -> list[str]:
    """The columns a tag names that are in the data; each one that is not is a finding on the tag.

    A slice or protected attribute the owner named but the data lacks means a review they asked for
    silently did not happen, so it is reported, not just skipped.
    """
    for column in (c for c in requested if c not in frame.columns):
        section.skip(f"column {column!r} named in tag {tag} is not in the data")
        section.findings.append(
            check.finding(
                column,
                severity,
                f"Column {column!r} named in tag {tag} is not in the data, so it was not analysed: "
                "add the column to the reference and current data or correct the tag.",
                evidence="findings.parquet",
            )
        )
    return [c for c in requested if c in frame.columns]
