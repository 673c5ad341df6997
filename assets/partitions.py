"""One dynamic partition per model version, keyed `NAME/VERSION`, and asset checks partitioned the same way."""

import warnings

import dagster as dg

MODEL_VERSIONS = "model_versions"
model_versions = dg.DynamicPartitionsDefinition(name=MODEL_VERSIONS)


def version_check(name: str, asset: str, description: str) -> dg.AssetCheckSpec:
    """A check with one result per model version.

    An unpartitioned check on a partitioned asset keeps a single result, so the UI would show the last
    run's outcome for every version. Dagster 1.13 flags check partitions as a preview: a warning per
    spec at every code-location load, silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, description=description, partitions_def=model_versions)
