"""The Dagster code location: the one module of `assurance` that imports Dagster.

It binds the assets, the resources and the sensors/schedules/jobs together, configured from one
`Settings`: `defs` (what `dagster dev` and the code server load) reads them from the environment once;
the command line builds its own with `build_definitions(settings)`. Heavy libraries are imported inside
asset functions, so loading this module stays fast.
"""

from __future__ import annotations

import dagster as dg

import sensors
from assets.analyses import analysis_assets
from assets.decision import evidence_report, findings, recommendation
from assets.portfolio import PORTFOLIO_JOB, assure_portfolio, portfolio_assets, portfolio_hourly
from assets.version import current_data, model_version, predictions, reference_data
from assurance.settings import Settings
from resources import build_resources
from sensors import VALIDATION_JOB

__all__ = ["PORTFOLIO_JOB", "VALIDATION_JOB", "build_definitions", "defs"]


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every asset, job, sensor and schedule, with resources and automation configured from `settings`.

    Every job runs its steps in the run's own process, the UI's and backfills' asset jobs too: a process
    per step would import the libraries again for each, and the IO managers keep a run's outputs in memory.
    """
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
        sensors=sensors.build_sensors(settings),
        schedules=[*sensors.build_schedules(settings), portfolio_hourly],
        resources=build_resources(settings),
        executor=dg.in_process_executor,
    )


defs = build_definitions(Settings.from_env())
