"""The Dagster code location: the one module of `assurance` that imports Dagster.

It binds the assets, the resources and the sensors/schedules/jobs together. Heavy libraries are imported
inside asset functions, so loading this module stays fast.
"""

from __future__ import annotations

import os

import dagster as dg

import sensors
from assets.analyses import analysis_assets
from assets.decision import evidence_report, findings, recommendation
from assets.portfolio import assure_portfolio, portfolio_assets, portfolio_hourly
from assets.version import current_data, model_version, predictions, reference_data
from resources import default_resources

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            model_version,
            reference_data,
            current_data,
            predictions,
            *analysis_assets(),
            findings,
            recommendation,
            evidence_report,
            *portfolio_assets,
        ],
        jobs=[*sensors.jobs, assure_portfolio],
        sensors=sensors.sensors,
        schedules=[*sensors.schedules, portfolio_hourly],
        resources=default_resources(),
    )


defs = build_definitions()
