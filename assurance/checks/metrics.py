"""Performance metrics under row weights, for many weightings at once.

A bootstrap replicate is the same rows with multinomial weights, and a label-free (CBPE) estimate is
the same rows with each row counting as positive with its calibrated probability. Writing every
metric in terms of per-row weights on "positive" and "negative" lets one implementation serve the
point value (weights from the label), the bootstrap and the estimate, vectorised over replicates so
200 replicates cost a few matrix products instead of 200 sklearn calls. Undefined ratios follow
sklearn (zero_division=0) so values match what owners logged; tests check them against sklearn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "r2")
LOWER_IS_BETTER = ("log_loss", "brier", "calibration_error", "mae", "rmse", "mse")
LABELS = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "log_loss": "log loss",
    "brier": "Brier score",
    "calibration_error": "expected calibration error",
    "mae": "MAE",
    "rmse": "RMSE",
    "mse": "MSE",
    "r2": "R2",
}
CHUNK = 20  # replicates per matrix product: bounds memory at a few CHUNK x rows float matrices


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (sklearn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def bin_index(score: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width probability bin of each score, 0 .. bins-1 (1.0 falls in the last bin)."""
    return np.clip((score * bins).astype(int), 0, bins - 1)


def binary(
    predicted: np.ndarray, score: np.ndarray | None, pos_w: np.ndarray, neg_w: np.ndarray, bins: int
) -> dict[str, np.ndarray]:
    """Binary metrics per weighting: `pos_w`/`neg_w` (replicates x rows) weigh each row as positive/negative.

    `predicted` says which rows the model predicts positive; `score` is P(positive), when there is one.
    """
    pred = predicted.astype(float)
    positives, negatives = pos_w.sum(axis=1), neg_w.sum(axis=1)
    tp, fp = pos_w @ pred, neg_w @ pred
    fn, tn = positives - tp, negatives - fp
    out = {
        "accuracy": _ratio(tp + tn, positives + negatives),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, positives),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }
    if score is not None:
        total = positives + negatives
        eps = np.finfo(float).eps
        clipped = np.clip(score, eps, 1 - eps)
        out["roc_auc"], out["pr_auc"] = _ranking(score, pos_w, neg_w)
        out["log_loss"] = -(pos_w @ np.log(clipped) + neg_w @ np.log1p(-clipped)) / total
        out["brier"] = (pos_w @ (1 - score) ** 2 + neg_w @ score**2) / total
        out["calibration_error"] = _calibration_error(score, pos_w, neg_w, bins)
    return out


def _ranking(score: np.ndarray, pos_w: np.ndarray, neg_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC (ties count half) and average precision (sklearn's step definition), per weighting."""
    order = np.argsort(score, kind="mergesort")
    ranked = score[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    pos = np.add.reduceat(pos_w[:, order], starts, axis=1)  # weight per distinct score, ascending
    neg = np.add.reduceat(neg_w[:, order], starts, axis=1)
    p_total, n_total = pos.sum(axis=1), neg.sum(axis=1)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(axis=1) / (p_total * n_total)
        tp, fp = np.cumsum(pos[:, ::-1], axis=1), np.cumsum(neg[:, ::-1], axis=1)
        precision = _ratio(tp, tp + fp)
        ap = (pos[:, ::-1] * precision).sum(axis=1) / p_total
    return auc, ap


def _calibration_error(score: np.ndarray, pos_w: np.ndarray, neg_w: np.ndarray, bins: int) -> np.ndarray:
    """Expected calibration error: weight-averaged |mean score - positive rate| over equal-width bins."""
    index = bin_index(score, bins)
    weights = pos_w + neg_w
    gap = np.zeros(weights.shape[0])
    for b in np.unique(index):
        rows = index == b
        gap += np.abs(weights[:, rows] @ score[rows] - pos_w[:, rows].sum(axis=1))
    return _ratio(gap, weights.sum(axis=1))


def multiclass(truth: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy and macro precision/recall/F1 from class codes, over the classes present (as sklearn)."""
    total = weights.sum(axis=1)
    out = {"accuracy": _ratio(weights @ (truth == predicted).astype(float), total)}
    n_classes = int(max(truth.max(initial=-1), predicted.max(initial=-1))) + 1
    precision, recall, f1, present = (np.zeros_like(total) for _ in range(4))
    for c in range(n_classes):
        actual, guessed = (truth == c).astype(float), (predicted == c).astype(float)
        tp, n_actual, n_guessed = weights @ (actual * guessed), weights @ actual, weights @ guessed
        precision += _ratio(tp, n_guessed)
        recall += _ratio(tp, n_actual)
        f1 += _ratio(2 * tp, n_actual + n_guessed)
        present += (n_actual + n_guessed) > 0
    out.update(precision=_ratio(precision, present), recall=_ratio(recall, present), f1=_ratio(f1, present))
    return out


def regression(truth: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """MAE, MSE, RMSE and R2 per weighting."""
    total = weights.sum(axis=1)
    error = predicted - truth
    mse = (weights @ error**2) / total
    mean = (weights @ truth) / total
    spread = (weights * (truth[None, :] - mean[:, None]) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1 - (weights @ error**2) / spread
    return {"mae": (weights @ np.abs(error)) / total, "mse": mse, "rmse": np.sqrt(mse), "r2": r2}


@dataclass(frozen=True)
class Labelled:
    """Model outputs and the truth per row, as arrays the metric functions weigh.

    binary: `predicted` is a boolean "predicted positive", `truth` the probability the row is positive
    (0/1 when labelled), `score` P(positive) or None; multiclass: class codes; regression: numbers.
    """

    task: str
    predicted: np.ndarray
    truth: np.ndarray
    score: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return int(self.truth.shape[0])

    def take(self, rows: np.ndarray) -> Labelled:
        score = None if self.score is None else self.score[rows]
        return replace(self, predicted=self.predicted[rows], truth=self.truth[rows], score=score)

    def metrics(self, weights: np.ndarray | None = None, bins: int = 10) -> dict[str, np.ndarray]:
        """Every metric the task allows, one value per row of `weights` (default: one unweighted value)."""
        w = np.ones((1, self.rows)) if weights is None else weights
        if self.task == "binary":
            return binary(self.predicted, self.score, w * self.truth, w * (1 - self.truth), bins)
        if self.task == "multiclass":
            return multiclass(self.truth, self.predicted, w)
        return regression(self.truth, self.predicted, w)

    def point(self, bins: int = 10) -> dict[str, float]:
        """Every metric the task allows, on all rows, unweighted."""
        return {name: float(values[0]) for name, values in self.metrics(bins=bins).items()}


def resample_weights(rows: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap weights: how often each row is drawn in each replicate (replicates x rows)."""
    draws = rng.integers(0, rows, size=(replicates, rows)) + (np.arange(replicates) * rows)[:, None]
    return np.bincount(draws.ravel(), minlength=replicates * rows).reshape(replicates, rows).astype(float)


def _replicates(
    datas: Sequence[Labelled], count: int, rng: np.random.Generator, bins: int
) -> list[dict[str, np.ndarray]]:
    """Metrics on `count` resamples of the rows, the same resamples for every one of `datas`; binary
    outcomes are also drawn from `truth`, with the same uniform draws for all.

    Drawing each row's outcome from its probability changes nothing for observed 0/1 labels and, for
    label-free estimates, adds the label noise the realized metric will carry.
    """
    weights = resample_weights(datas[0].rows, count, rng)
    if datas[0].task != "binary":
        return [data.metrics(weights, bins) for data in datas]
    draws = rng.random(weights.shape)
    out = []
    for data in datas:
        outcome = (draws < data.truth).astype(float)
        out.append(binary(data.predicted, data.score, weights * outcome, weights * (1 - outcome), bins))
    return out


def bootstrap(
    data: Labelled, point: dict[str, float], samples: int, max_rows: int, seed: int = 0, bins: int = 10
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of every metric, centred on `point` and scaled to the full sample size.

    At most `max_rows` rows are resampled (an m-out-of-n bootstrap): each replicate's deviation from
    the subsample's own value is shrunk by sqrt(m / n), which keeps the cost bounded at any size
    while the interval keeps the width it would have on all n rows.
    """
    return paired_bootstrap([data], [point], samples, max_rows, seed, bins)[0]


def paired_bootstrap(
    datas: Sequence[Labelled],
    points: Sequence[dict[str, float]],
    samples: int,
    max_rows: int,
    seed: int = 0,
    bins: int = 10,
) -> list[dict[str, np.ndarray]]:
    """`bootstrap` of several models' outputs on the same rows, every replicate drawing the same rows for
    all of them: replicate i of one model minus replicate i of another is a replicate of their difference
    (a paired bootstrap), far narrower than independent resamples when the models agree on most rows."""
    rows = {data.rows for data in datas}
    if len(rows) != 1 or len({data.task for data in datas}) != 1:
        raise ValueError("a paired bootstrap needs outputs of one task on the same rows")
    n = rows.pop()
    rng = np.random.default_rng(seed)
    subs = list(datas)
    if n > max_rows:
        chosen = np.sort(rng.choice(n, max_rows, replace=False))
        subs = [data.take(chosen) for data in datas]
    centres = [sub.point(bins) for sub in subs]
    scale = np.sqrt(subs[0].rows / n)
    chunks = [_replicates(subs, min(CHUNK, samples - start), rng, bins) for start in range(0, samples, CHUNK)]
    return [
        {
            name: point[name] + (np.concatenate([c[i][name] for c in chunks]) - centre[name]) * scale
            for name in point
            if name in centre
        }
        for i, (point, centre) in enumerate(zip(points, centres, strict=True))
    ]


def reliability(score: np.ndarray, truth: np.ndarray, bins: int) -> pd.DataFrame:
    """The reliability table: per equal-width score bin, mean predicted probability vs observed rate."""
    index = bin_index(score, bins)
    frame = pd.DataFrame({"bin": index, "score": score, "truth": truth})
    grouped = frame.groupby("bin").agg(
        mean_predicted=("score", "mean"), observed_rate=("truth", "mean"), count=("truth", "size")
    )
    table = grouped.reindex(range(bins)).reset_index()
    table.insert(1, "lower", table["bin"] / bins)
    table.insert(2, "upper", (table["bin"] + 1) / bins)
    table["count"] = table["count"].fillna(0).astype(int)
    return table


def interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of the replicates (NaN replicates, e.g. one-class resamples, ignored)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def worsening(metric: str, before: float | np.ndarray, after: float | np.ndarray) -> float | np.ndarray:
    """How much worse `after` is than `before`: a drop for higher-is-better metrics, a rise otherwise."""
    return (before - after) if metric in HIGHER_IS_BETTER else (after - before)
