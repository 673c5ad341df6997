"""Label-free performance estimation for binary classifiers, confidence-based (as NannyML's CBPE).

Labels for production traffic often arrive weeks late. If the model's scores are calibrated, a row
with score 0.8 is a positive with probability 0.8, so the expected confusion matrix of the current
rows, and every metric built on it, follows from the scores alone. Scores are first calibrated on
the labelled reference data with isotonic regression (monotone, so the ranking and ROC AUC ordering
are kept). The estimate holds under covariate shift (inputs move, P(label | score) does not); it
cannot see concept drift, which is why it is reported as an estimate with lower severity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assurance.checks.metrics import Labelled

ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


@dataclass(frozen=True)
class Calibration:
    """Maps raw scores to calibrated probabilities; `method` says how, for the report."""

    transform: Callable[[np.ndarray], np.ndarray]
    method: str


def fit_calibration(score: np.ndarray | None, truth: np.ndarray | None) -> Calibration:
    """Isotonic regression of the reference labels on the reference scores; raw scores when unlabelled."""
    if score is None or truth is None or len(np.unique(truth)) < 2:
        return Calibration(
            lambda s: np.asarray(s, dtype=float),
            "none (reference has no usable labels; raw scores assumed calibrated)",
        )
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, truth)
    return Calibration(
        lambda s: model.predict(np.asarray(s, dtype=float)), "isotonic regression on the labelled reference"
    )


def expected_outcomes(predicted: np.ndarray, score: np.ndarray, calibration: Calibration) -> Labelled:
    """Current rows as `Labelled` data whose truth is each row's calibrated probability of being positive.

    Its metrics are the expected-confusion-matrix estimates; its bootstrap draws labels from those
    probabilities, which gives the uncertainty of the performance the labels will eventually show.
    """
    probability = np.clip(calibration.transform(score), 0.0, 1.0)
    return Labelled(task="binary", predicted=predicted, truth=probability, score=score)
