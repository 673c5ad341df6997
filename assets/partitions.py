"""One dynamic partition per model version, keyed `NAME/VERSION`."""

import dagster as dg

MODEL_VERSIONS = "model_versions"
model_versions = dg.DynamicPartitionsDefinition(name=MODEL_VERSIONS)
