"""The evidence table `quality.parquet`, the asset's metadata and the report's summary."""

from __future__ import annotations

import pandas as pd

from assurance.checks.quality.expectations import ROLES, ExpectationResult
from assurance.domain.values import Sampling
from assurance.policy.thresholds import QualityThresholds

TABLE_COLUMNS = [
    "role",
    "column",
    "expectation",
    "success",
    "observed",
    "threshold",
    "hits",
    "rows",
    "p_value",
    "q_value",
    "details",
]


def results_table(results: list[ExpectationResult]) -> pd.DataFrame:
    """One row per (dataset, column, expectation): the evidence file `quality.parquet`."""
    rows = [
        {
            "role": r.role,
            "column": r.expectation.column,
            "expectation": r.expectation.name,
            "success": bool(r.success),
            "observed": float(r.observed),
            "threshold": float(r.expectation.threshold),
            "hits": int(r.hits),
            "rows": int(r.rows),
            "p_value": float(r.p_value),
            "q_value": float(r.q_value),
            "details": r.details,
        }
        for r in results
    ]
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return table.astype({"success": bool, "observed": float, "threshold": float})


def quality_metrics(
    frames: dict[str, pd.DataFrame], table: pd.DataFrame, samplings: dict[str, Sampling]
) -> dict[str, float]:
    """Counts for the Dagster asset's metadata; a dataset that could not be had counts 0 rows. `rows_*` are
    the rows checked; `rows_total_*` differ from them when the data was read as a sample."""
    metrics = {f"rows_{role}": float(len(frames[role])) if role in frames else 0.0 for role in ROLES}
    for role in ROLES:
        metrics[f"rows_total_{role}"] = (
            float(samplings[role].rows_total) if role in samplings else metrics[f"rows_{role}"]
        )
    metrics["expectations_evaluated"] = float(len(table))
    for role in ROLES:
        metrics[f"expectations_failed_{role}"] = float(((table["role"] == role) & ~table["success"]).sum())
    return metrics


def summary(
    table: pd.DataFrame,
    frames: dict[str, pd.DataFrame],
    limits: QualityThresholds,
    label: str | None,
    samplings: dict[str, Sampling],
) -> str:
    """Failed expectations on current first, then the counts an analyst scans for."""
    lines = []
    failed = table[(table["role"] == "current") & ~table["success"]]
    if len(failed):
        lines += ["| column | expectation | observed | threshold | details |", "|---|---|---|---|---|"]
        for row in failed.itertuples(index=False):
            details = str(row.details).replace("|", "\\|")
            lines.append(
                f"| {row.column} | {row.expectation} | {row.observed:.2%} | {row.threshold:.2%} | {details} |"
            )
        lines.append("")
    elif "current" in frames:
        lines += ["All expectations held on the current data.", ""]
    counts = []
    for role, frame in frames.items():
        part = table[table["role"] == role]
        counts.append(
            f"{role}: {len(frame):,} rows, {len(part)} expectations, {int((~part['success']).sum())} failed"
        )
    lines.append("; ".join(counts) + "." if counts else "No data could be checked.")
    lines += [
        f"The {role} data was read as {sampling.describe()}: its row and duplicate counts are the sample's, "
        "its rates estimate the full data's."
        for role, sampling in samplings.items()
    ]
    if any(len(f) > limits.sample_rows for f in frames.values()):
        lines.append(
            f"Datasets above {limits.sample_rows:,} rows were checked on a seeded sample of that size "
            f"(duplicates on all rows read)."
        )
    current = frames.get("current")
    if label and current is not None and label not in {str(c) for c in current.columns}:
        lines.append(f"The current data has no label column '{label}' yet.")
    return "\n".join(lines)
