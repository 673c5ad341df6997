"""One dynamic partition per model version, keyed `NAME/VERSION`, asset checks partitioned the same way, and
runs that assure several versions at once.

The registry sensor launches a run per version. Backfills (the UI's "Materialize" over many versions) and
the schedules launch runs of up to `VERSIONS_PER_RUN` neighbouring versions (`BackfillPolicy.multi_run`),
so Dagster's per-run and per-step bookkeeping is paid once per batch. Each step loops over its run's
versions (`each_version`) and records a materialization, metadata and check results per version (`emit`),
so a version's page reads the same whichever way it was assured.
"""

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import dagster as dg

from assurance.domain.values import version_order

MODEL_VERSIONS = "model_versions"
model_versions = dg.DynamicPartitionsDefinition(name=MODEL_VERSIONS)

# Ten versions pay Dagster's per-step cost a tenth as often. Memory: a step reads its inputs one version
# at a time, but a data step holds the batch's datasets of its role (resources._DataByReference).
VERSIONS_PER_RUN = 10
batched = dg.BackfillPolicy.multi_run(max_partitions_per_run=VERSIONS_PER_RUN)


def version_asset(**kwargs):
    """The decorator of a per-version asset: partitioned by version, batched by backfills.

    Dagster 1.13 flags `backfill_policy` as beta: a warning per asset at every load, silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.asset(partitions_def=model_versions, backfill_policy=batched, **kwargs)


def version_check(name: str, asset: str, description: str) -> dg.AssetCheckSpec:
    """A check with one result per model version.

    An unpartitioned check on a partitioned asset keeps a single result, so the UI would show the last
    run's outcome for every version. Dagster 1.13 flags check partitions as a preview: a warning per
    spec at every code-location load, silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, description=description, partitions_def=model_versions)


def each_version(
    context: dg.AssetExecutionContext, inputs: Mapping[str, object]
) -> Iterator[tuple[str, dict]]:
    """Every version of the run with its own inputs, each model's versions in ascending order, so that an
    analysis comparing with an earlier version sees it (EvidenceStore.hold_unpublished).

    A one-version run gets each input as the value itself; a batch gets a mapping by version, which is
    read lazily so one version's data is in hand at a time.
    """
    keys = context.partition_keys
    if len(keys) == 1:
        yield keys[0], dict(inputs)
        return
    for key in sorted(keys, key=version_order):
        yield key, {name: value[key] for name, value in inputs.items()}


@dataclass
class VersionOutput:
    """What a step produced for one version: the asset's value, its metadata and its check results."""

    value: object
    metadata: dict
    checks: list[dg.AssetCheckResult] = field(default_factory=list)


def emit(context: dg.AssetExecutionContext, outputs: dict[str, VersionOutput]) -> Iterator:
    """A step's events: for one version exactly what the asset would yield alone; for a batch, one output
    holding every version's value, with each version's metadata and checks recorded against its partition.

    In a batch Dagster would record an `AssetCheckResult` without a partition, so each result becomes an
    `AssetCheckEvaluation` of its version, pointed at that version's materialization as Dagster does for
    a one-version run; the check outputs are then marked as done.
    """
    if len(outputs) == 1:
        (only,) = outputs.values()
        yield dg.Output(only.value, metadata=only.metadata)
        yield from only.checks
        return
    for key, out in outputs.items():
        context.add_asset_metadata(out.metadata, partition_key=key)
    yield dg.Output({key: out.value for key, out in outputs.items()})
    targets = _materializations(context, list(outputs))
    for key, out in outputs.items():
        for result in out.checks:
            yield dg.AssetCheckEvaluation(
                asset_key=result.asset_key or context.asset_key,
                check_name=result.check_name,
                passed=result.passed,
                metadata=result.metadata,
                severity=result.severity,
                description=result.description,
                partition=key,
                target_materialization_data=targets.get(key),
            )
    for check_key in context.assets_def.check_keys:
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key))


def _materializations(context: dg.AssetExecutionContext, keys: list[str]) -> dict:
    """This run's materialization of each version: what its checks evaluated."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,
    )

    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=keys), limit=len(keys)
    ).records
    return {
        r.partition_key: AssetCheckEvaluationTargetMaterializationData(
            run_id=r.run_id, storage_id=r.storage_id, timestamp=r.timestamp
        )
        for r in records
        if r.run_id == context.run_id
    }
