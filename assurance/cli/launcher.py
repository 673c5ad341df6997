"""Runs the per-version Dagster job in process for the command line: the same graph the UI and sensors run.

The Definitions are built from the command line's `Settings` (environment plus options), so resources get
the tracking URI, evidence root and policy explicitly. With a Dagster home in the settings (DAGSTER_HOME)
the runs land in that instance and show in the UI; otherwise a temporary instance is used and only the
published evidence remains.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from assurance.domain.errors import SettingsError, step_failure
from assurance.domain.values import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    consecutive,
    partition_key,
    split_partition_key,
)
from assurance.governance.run_workers import current_worker, worker_tags
from assurance.settings import Settings


@dataclass
class RunOutcome:
    success: bool
    summary: dict[str, Any]
    findings: pd.DataFrame | None
    error: str | None = None


def instance(settings: Settings):
    """The Dagster instance in the settings' Dagster home, or a temporary one when there is none."""
    import dagster as dg

    if not settings.dagster_home:
        return dg.DagsterInstance.ephemeral()
    home = os.path.expanduser(settings.dagster_home)
    if not os.path.isabs(home) or not os.path.isdir(home):
        raise SettingsError(
            f"DAGSTER_HOME={settings.dagster_home!r} must be an absolute path to an existing folder"
        )
    return dg.DagsterInstance.from_config(home)


def _first_failure(result) -> str:
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            return step_failure(event.step_key, event.event_specific_data.error)
    return "the run failed (see the Dagster logs)"


@functools.lru_cache(maxsize=4)
def _definitions(settings: Settings):
    from assurance.definitions import build_definitions

    return build_definitions(settings)


def _execute(job, dagster_instance, partition: str | None = None, tags: dict | None = None):
    logging.getLogger("dagster").setLevel(logging.ERROR)
    return job.execute_in_process(
        partition_key=partition,
        instance=dagster_instance,
        raise_on_error=False,
        # the worker's host and pid let the dead-run sensor tell a killed command from a running one
        tags={"assurance/started_by": "cli", **worker_tags(current_worker()), **(tags or {})},
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )


def _version_job(settings: Settings, dagster_instance, keys: list[str]):
    """The per-version job, with a partition for each of `keys` (added in order when new)."""
    from assurance.definitions import VALIDATION_JOB

    job = _definitions(settings).resolve_job_def(VALIDATION_JOB)
    partitions = job.partitions_def.name  # the dynamic partitions of model versions
    new = [k for k in keys if not dagster_instance.has_dynamic_partition(partitions, k)]
    if new:
        dagster_instance.add_dynamic_partitions(partitions, new)
    return job


def run_version(name: str, version: str, settings: Settings, dagster_instance=None) -> RunOutcome:
    """Add the version's partition if new and materialize the whole per-version graph for it."""
    key = partition_key(name, version)
    return run_versions([key], settings, dagster_instance)[key]


def run_versions(keys: list[str], settings: Settings, dagster_instance=None) -> dict[str, RunOutcome]:
    """Assure versions (NAME/VERSION) as a backfill does: consecutive partitions together, in runs of up to
    the assets' backfill batch size, so Dagster's per-run and per-step work is paid once per batch."""
    inst = dagster_instance or instance(settings)
    job = _version_job(settings, inst, keys)
    order = inst.get_dynamic_partitions(job.partitions_def.name)
    outcomes: dict[str, RunOutcome] = {}
    for batch in consecutive(keys, order, job.backfill_policy.max_partitions_per_run):
        outcomes.update(_run_batch(job, inst, batch))
    return outcomes


def _run_batch(job, dagster_instance, keys: list[str]) -> dict[str, RunOutcome]:
    if len(keys) == 1:
        result = _execute(job, dagster_instance, keys[0])
    else:
        result = _execute(job, dagster_instance, tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]})
    if not result.success:
        error = _first_failure(result)
        return {k: RunOutcome(False, _named(k), None, error) for k in keys}
    summaries = result.output_for_node("evidence_report")
    if len(keys) == 1:
        summaries = {keys[0]: summaries}
    return {k: RunOutcome(True, summaries[k], summaries[k]["findings"]) for k in keys}


def _named(key: str) -> dict[str, str]:
    name, version = split_partition_key(key)
    return {"model": name, "version": version}


PORTFOLIO_TABLES = {"inventory": "model_inventory", "ledger": "findings_ledger", "kpis": "portfolio_kpis"}


def run_portfolio(settings: Settings, dagster_instance=None) -> RunOutcome:
    """Materialize the portfolio assets as the UI and schedule do; the summary holds their tables."""
    from assurance.definitions import PORTFOLIO_JOB

    job = _definitions(settings).resolve_job_def(PORTFOLIO_JOB)
    result = _execute(job, dagster_instance or instance(settings))
    if not result.success:
        return RunOutcome(False, {}, None, _first_failure(result))
    tables = {name: result.output_for_node(node) for name, node in PORTFOLIO_TABLES.items()}
    return RunOutcome(True, tables, tables["ledger"])
