"""Jobs, sensors and schedules: every way of starting work runs the same per-version asset graph."""

from __future__ import annotations

import dagster as dg

from assets.partitions import model_versions

VALIDATION_JOB = "assure_model_version"
PER_VERSION_GROUPS = ("inputs", "analyses", "decision")

assure_model_version = dg.define_asset_job(
    VALIDATION_JOB,
    selection=dg.AssetSelection.groups(*PER_VERSION_GROUPS),
    partitions_def=model_versions,
    description="Full assurance of one model version: data, predictions, every analysis, findings, "
    "recommendation and published evidence.",
    tags={"assurance/kind": "validation"},
)

jobs = [assure_model_version]
sensors: list = []
schedules: list = []
