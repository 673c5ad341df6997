"""The version record, its reference and current data, and the model's predictions on both."""

import dagster as dg

from assets.common import OWNERS, progress
from assets.partitions import VersionOutput, each_version, emit, version_asset, version_check
from assurance.domain.values import Dataset, Predictions, VersionRecord, split_partition_key
from resources import DATA_IO_MANAGER, DataResource, RegistryResource

GROUP = "inputs"


@version_asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"mlflow"},
    description=(
        "The model version as the MLflow registry records it: tags (model tags overridden by version tags), "
        "aliases, source run, signature, metrics the owner logged and the run's documents."
    ),
)
def model_version(context: dg.AssetExecutionContext, registry: RegistryResource):
    reg = registry.get()
    outputs = {}
    for key, _ in each_version(context, {}):
        record = reg.version_record(*split_partition_key(key))
        progress(
            context,
            key,
            f"read {record.key} from the registry ({len(record.tags)} tags, aliases {record.aliases or 'none'})",
        )
        outputs[key] = _record_output(record)
    yield from emit(context, outputs)


def _record_output(record: VersionRecord) -> VersionOutput:
    return VersionOutput(
        record,
        metadata={
            "owner": record.tags.get("owner") or "(not set)",
            "aliases": ", ".join(record.aliases) or "(none)",
            "source_run": record.run_id or "(none)",
            "signature_features": len(record.feature_names or []),
            "logged_metrics": dg.MetadataValue.json(record.logged_metrics),
            "tags": dg.MetadataValue.json(record.tags),
            "run_artifacts": ", ".join(record.run_artifacts) or "(none)",
        },
    )


def _progress(dataset: Dataset) -> str:
    if not dataset.ok:
        return f"{dataset.role} data unavailable: {dataset.error}"
    if dataset.sampling:
        return f"{dataset.role} data: {dataset.sampling.describe()}"
    return f"{dataset.role} data: {dataset.rows} rows"


def _data_asset(role: str, description: str):
    @version_asset(
        name=f"{role}_data",
        group_name=GROUP,
        owners=OWNERS,
        kinds={"pandas", "parquet"},
        description=description,
        io_manager_key=DATA_IO_MANAGER,
        check_specs=[
            version_check(
                f"{role}_data_readable",
                f"{role}_data",
                f"The {role} data named by the onboarding tags can be read and has rows.",
            )
        ],
    )
    def _load(context: dg.AssetExecutionContext, model_version, data: DataResource):
        outputs = {}
        for key, inputs in each_version(context, {"model_version": model_version}):
            dataset = data.load(inputs["model_version"], role)
            progress(context, key, _progress(dataset))
            outputs[key] = _dataset_output(role, dataset)
        yield from emit(context, outputs)

    return _load


def _dataset_output(role: str, dataset: Dataset) -> VersionOutput:
    return VersionOutput(
        dataset,
        metadata={
            "uri": dataset.uri or "(none)",
            "dagster/row_count": dataset.rows,
            "rows_total": dataset.rows_total,
            "sampled": dataset.sampling is not None,
            "sampling": dataset.sampling.describe() if dataset.sampling else "(all rows)",
            "columns": 0 if dataset.frame is None else dataset.frame.shape[1],
            "has_label": dataset.has_label,
            "fingerprint": dataset.fingerprint or "(none)",
        },
        checks=[
            dg.AssetCheckResult(
                check_name=f"{role}_data_readable",
                passed=dataset.ok,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"reason": dataset.error or "readable"},
            )
        ],
    )


reference_data = _data_asset(
    "reference",
    "Reference data (training or validation holdout) from the `assurance.reference` tag, or the training "
    "dataset logged on the source run: features and label.",
)
current_data = _data_asset(
    "current",
    "Current data (recent production traffic) from the `assurance.current` tag: features, label when known.",
)


@version_asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"mlflow", "scikitlearn"},
    description=(
        "The model's outputs on reference and current data. Native flavors (sklearn, LightGBM, XGBoost) are "
        "loaded natively for probabilities and explanations; other models through MLflow pyfunc."
    ),
    check_specs=[
        version_check("model_scores_data", "predictions", "The model loads and scores both datasets.")
    ],
)
def predictions(
    context: dg.AssetExecutionContext,
    registry: RegistryResource,
    model_version,
    reference_data,
    current_data,
):
    reg = registry.get()
    outputs = {}
    inputs = {"record": model_version, "reference": reference_data, "current": current_data}
    for key, version in each_version(context, inputs):
        result = _score(reg, **version)
        progress(context, key, f"scored with {result.loader or 'no model'} ({result.task})")
        outputs[key] = _scores_output(result)
    yield from emit(context, outputs)


def _score(registry, record: VersionRecord, reference: Dataset, current: Dataset) -> Predictions:
    from assurance.scoring.predict import load_version_model, predict

    load_error = None
    try:
        model = load_version_model(registry, record, reference)
    except Exception as exc:  # noqa: BLE001 - an unloadable model is a finding, not a failed run
        model, load_error = None, f"the model could not be loaded: {type(exc).__name__}: {str(exc)[:300]}"
    return predict(model, reference, current, load_error)


def _scores_output(result: Predictions) -> VersionOutput:
    errors = [s.error for s in (result.reference, result.current) if s.error]
    partial = [
        f"{role}: {s.unscored} rows with missing feature values not scored"
        for role, s in (("reference", result.reference), ("current", result.current))
        if s.unscored
    ]
    return VersionOutput(
        result,
        metadata={
            "task": result.task,
            "loaded_as": result.loader or "(not loaded)",
            "scored_reference_rows": 0 if result.reference.frame is None else len(result.reference.frame),
            "scored_current_rows": 0 if result.current.frame is None else len(result.current.frame),
        },
        checks=[
            dg.AssetCheckResult(
                check_name="model_scores_data",
                passed=not errors and not partial,
                severity=dg.AssetCheckSeverity.ERROR if errors else dg.AssetCheckSeverity.WARN,
                metadata={"problems": "; ".join(errors + partial) or "none"},
            )
        ],
    )
