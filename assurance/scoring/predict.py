"""Loading a version's model once per process and scoring reference and current data with it."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from assurance.domain.errors import describe_error
from assurance.domain.values import Dataset, Predictions, Scores, VersionRecord
from assurance.scoring.models import ScoringModel, infer_task, load_local

if TYPE_CHECKING:
    from assurance.registry.client import Registry

_CACHE: dict[tuple[str, str, str], ScoringModel] = {}
_DOWNLOADS = Path(tempfile.mkdtemp(prefix="assurance-models-"))
atexit.register(shutil.rmtree, _DOWNLOADS, ignore_errors=True)


def load_version_model(
    registry: Registry, record: VersionRecord, reference: Dataset | None = None
) -> ScoringModel:
    """The version's model, loaded once per process: the analyses of one run share it."""
    key = (registry.tracking_uri, record.name, record.version)
    if key not in _CACHE:
        folder = registry.download_model(record, _DOWNLOADS / f"{len(_CACHE)}")
        label = reference.frame[reference.label] if reference is not None and reference.has_label else None
        model = load_local(folder, record.feature_names, label)
        if model.task == "unknown":
            model.task, model.classes = infer_task(model.native, label)
        _CACHE[key] = model
    return _CACHE[key]


def score_dataset(model: ScoringModel, dataset: Dataset | None) -> Scores:
    """Scores for one dataset, or the reason there are none.

    A model that rejects missing values still scores the complete rows: the checks run on those, and
    the rows left out are reported instead of losing every check that needs predictions.
    """
    if dataset is None or not dataset.ok:
        return Scores(error=f"no {dataset.role if dataset else 'such'} data to score")
    try:
        return Scores(frame=model.score(dataset.frame))
    except Exception as exc:  # noqa: BLE001 - a model that cannot score the data is a finding
        failure = f"the model could not score the {dataset.role} data: {describe_error(exc)}"
        partial = _score_complete_rows(model, dataset.frame)
        if partial is None:
            return Scores(error=failure)
        unscored = int(partial["prediction"].isna().sum())
        return Scores(frame=partial, unscored=unscored, unscored_reason=describe_error(exc))


def _score_complete_rows(model: ScoringModel, frame):
    """Outputs for the rows with every feature present (NaN elsewhere), or None when that does not help."""
    features = [c for c in model.features if c in frame.columns]
    if not features or len(features) < len(model.features):
        return None
    complete = frame[features].notna().all(axis=1)
    if complete.all() or not complete.any():
        return None
    try:
        scored = model.score(frame[complete])
    except Exception:  # noqa: BLE001 - missing values were not the (only) problem
        return None
    return scored.reindex(frame.index)


def predict(
    model: ScoringModel | None,
    reference: Dataset | None,
    current: Dataset | None,
    load_error: str | None = None,
) -> Predictions:
    if model is None:
        reason = load_error or "the model could not be loaded"
        return Predictions("unknown", Scores(error=reason), Scores(error=reason), error=reason)
    return Predictions(
        task=model.task,
        reference=score_dataset(model, reference),
        current=score_dataset(model, current),
        positive=model.positive,
        classes=list(model.classes),
        loader=model.flavor,
    )
