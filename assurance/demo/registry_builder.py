"""Building an MLflow registry the way a model owner would: log, register, tag, alias, document.

Used by `assurance demo` and by tests that need a registry the product has never seen. Everything
here goes through MLflow's public client, so the resulting registry is indistinguishable from one a
team built by hand, whether embedded (sqlite) or behind `mlflow server`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import time
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from assurance.registry.client import Registry, mlflow_process_defaults, mlflow_tracking

log = logging.getLogger(__name__)

Serialization = Literal["skops", "cloudpickle"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def embedded_tracking_uri(root: Path) -> str:
    """The sqlite registry of an embedded deployment rooted at `root` (artifacts go to `root/artifacts`)."""
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def safe_dir_name(name: str) -> str:
    """A path component for a model name: MLflow allows names (`..`, `\\`, newlines) no path should hold."""
    if _SAFE_NAME.match(name) and ".." not in name:
        return name
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:60] or "model"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def register_version(
    name: str,
    estimator: Any,
    reference: pd.DataFrame,
    current: pd.DataFrame | None,
    *,
    label: str,
    features: list[str],
    data_dir: Path,
    model_tags: dict[str, str] | None = None,
    version_tags: dict[str, str] | None = None,
    aliases: list[str] | None = None,
    documents: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
    log_training_input: bool = False,
    serialization: Serialization = "skops",
    tag_reference: bool = True,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> str:
    """Log a fitted sklearn-API `estimator` as a new version of `name` and onboard it; return the version.

    The reference and current frames are written as Parquet under `data_dir/<name>/<version>/` and
    their `file://` URIs tagged on the version (`assurance.reference`, `assurance.current`) with
    `assurance.label`; `tag_reference=False` leaves the reference findable only through the logged
    training dataset (needs `log_training_input`). `model_tags` go on the registered model,
    `version_tags` on the version; `documents` (file name -> text) and `metrics` land on the source
    run, where the product looks for documentation and claimed metrics. `tracking_uri` defaults to
    the process's current one; `experiment` defaults to the model name.
    """
    mlflow_process_defaults()
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri or mlflow.get_tracking_uri()
    with mlflow_tracking(uri):
        experiment_id = Registry(uri, creates=True).experiment_id(experiment or name)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"{name}-training"):
            version = _log_model(name, estimator, reference[features], serialization)
            folder = Path(data_dir) / safe_dir_name(name) / version
            reference_uri = write_parquet(reference, folder / "reference.parquet")
            current_uri = write_parquet(current, folder / "current.parquet") if current is not None else None
            if log_training_input:
                targets = label if label in reference.columns else None
                dataset = mlflow.data.from_pandas(
                    reference, source=reference_uri, targets=targets, name="reference"
                )
                mlflow.log_input(dataset, context="training")
            for file_name, text in (documents or {}).items():
                mlflow.log_text(text, file_name)
            if metrics:
                mlflow.log_metrics({k: float(v) for k, v in metrics.items()})

        data_tags = {"assurance.label": label}
        if tag_reference:
            data_tags["assurance.reference"] = reference_uri
        if current_uri is not None:
            data_tags["assurance.current"] = current_uri
        client = MlflowClient()
        for key, value in (model_tags or {}).items():
            client.set_registered_model_tag(name, key, value)
        for key, value in {**data_tags, **(version_tags or {})}.items():
            client.set_model_version_tag(name, version, key, value)
        for alias in aliases or []:
            client.set_registered_model_alias(name, alias, version)
    return version


def _log_model(name: str, estimator: Any, X: pd.DataFrame, serialization: Serialization) -> str:
    """Log and register the model with a signature inferred from the features and the model's output."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    sample = X.head(1000)
    output = (
        estimator.predict_proba(sample) if hasattr(estimator, "predict_proba") else estimator.predict(sample)
    )
    options: dict[str, Any] = {}
    if serialization == "skops":
        options["skops_trusted_types"] = skops_trusted_types(estimator)
    started = time.perf_counter()
    info = mlflow.sklearn.log_model(
        estimator,
        name="model",
        serialization_format=serialization,
        signature=infer_signature(sample, output),
        pip_requirements=pip_requirements(estimator, serialization),
        registered_model_name=name,
        **options,
    )
    log.info("logged %s in %.2f s (%s)", name, time.perf_counter() - started, serialization)
    return str(info.registered_model_version)


def skops_trusted_types(estimator: Any) -> list[str]:
    """Exactly the types skops refuses to load by default for this estimator (tree internals, boosters)."""
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(estimator))


def pip_requirements(estimator: Any, serialization: Serialization) -> list[str]:
    """Pinned requirements from the estimator's own packages: MLflow's inference takes ~7 s per model."""
    from importlib import metadata

    packages = _distributions_by_module()
    modules = {type(estimator).__module__} | {
        type(value).__module__ for value in _parts(estimator) if hasattr(value, "get_params")
    }
    distributions = {dist for module in modules for dist in packages.get(module.split(".")[0], [])}
    distributions |= {"mlflow", "pandas", serialization}
    return sorted(f"{dist}=={metadata.version(dist)}" for dist in distributions)


@functools.cache
def _distributions_by_module() -> dict[str, list[str]]:
    """Top-level module -> installed distributions; scanning them takes ~1 s, so once per process."""
    from importlib import metadata

    return metadata.packages_distributions()


def _parts(estimator: Any) -> list[Any]:
    return list(estimator.get_params(deep=True).values()) if hasattr(estimator, "get_params") else []


def write_parquet(frame: pd.DataFrame, path: Path) -> str:
    """Write `frame` to `path` (parents created) and return its `file://` URI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path.resolve().as_uri()
