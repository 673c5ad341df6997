"""Headline metrics of a version across its runs, for the report's trend chart.

The same few numbers a reader follows from run to run (open findings, the share of drifted features,
AUC, accuracy or the regression errors on current data) are computed one way from a run's tables, whether the run is the one being
reported (tables in memory) or an earlier one (its published evidence, read through `history`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from assurance.evidence.history import read_table, run_folders

if TYPE_CHECKING:
    from assurance.evidence.store import EvidenceStore

TABLES = ("findings", "drift", "performance")
# the performance metrics worth a panel, when the task has them (classifiers: AUC and accuracy; regressors)
PERFORMANCE = ("roc_auc", "accuracy", "rmse", "mae", "r2")
COLUMNS = ["run_id", "at", "metric", "value"]
MAX_RUNS = 50


def headline_metrics(tables: Mapping[str, pd.DataFrame | None]) -> dict[str, float]:
    """Open findings, drifted feature share and the headline metrics on current data (`PERFORMANCE`),
    from whichever of those tables a run has."""
    out: dict[str, float] = {}
    findings = tables.get("findings")
    if findings is not None and "status" in findings:
        out["open findings"] = float((findings["status"] == "open").sum())
    drift = tables.get("drift")
    if drift is not None and {"role", "drifted"} <= set(drift.columns):
        features = drift[drift["role"] == "feature"]
        if len(features):
            out["drifted feature share"] = float(features["drifted"].astype(bool).mean())
    performance = tables.get("performance")
    if performance is not None and {"dataset", "metric", "value", "estimated"} <= set(performance.columns):
        current = performance[(performance["dataset"] == "current") & performance["metric"].isin(PERFORMANCE)]
        for row in current.itertuples(index=False):
            if np.isfinite(row.value):
                out[f"{row.metric} on current data{' (estimated)' if row.estimated else ''}"] = float(
                    row.value
                )
    return out


def run_metrics(run_id: str, at: pd.Timestamp, tables: Mapping[str, pd.DataFrame | None]) -> pd.DataFrame:
    """One run's headline metrics as rows of the trend table."""
    rows = [(run_id, at, metric, value) for metric, value in headline_metrics(tables).items()]
    return pd.DataFrame(rows, columns=COLUMNS)


def metric_history(store: EvidenceStore, model: str, version: str, limit: int = MAX_RUNS) -> pd.DataFrame:
    """Headline metrics of the version's published runs (the latest `limit`), oldest first."""
    frames = [
        run_metrics(
            run.run_id,
            run.at,
            {stem: read_table(store, run.path, stem) if run.has(stem) else None for stem in TABLES},
        )
        for run in run_folders(store, model, version)[-limit:]
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
