"""What one assurance run publishes: the findings of all analyses, the report and the manifest."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from assurance import __version__
from assurance.checks.coverage import coverage_findings
from assurance.checks.predictions import prediction_findings
from assurance.domain.findings import findings_frame
from assurance.domain.values import Dataset, Predictions, Section, VersionRecord
from assurance.evidence.store import parquet_bytes
from assurance.policy.model import Policy
from assurance.policy.recommendation import Recommendation
from assurance.reporting import version_report
from assurance.reporting.pdf import to_pdf


def collect_findings(
    record: VersionRecord, policy: Policy, sections: list[Section], predictions: Predictions | None
) -> pd.DataFrame:
    findings = [
        *(f for s in sections for f in s.findings),
        *prediction_findings(predictions, policy),
        *coverage_findings(record, policy, sections),
    ]
    return findings_frame(findings, record, policy)


def provenance(
    record: VersionRecord,
    policy: Policy,
    datasets: list[Dataset],
    predictions: Predictions | None,
    run_id: str,
    started_at: datetime,
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "model": record.name,
        "version": record.version,
        "model_uri": record.model_uri,
        "model_source": record.source,
        "source_run": record.run_id,
        "aliases": record.aliases,
        "model_loader": predictions.loader if predictions else None,
        "data": {
            d.role: {
                "uri": d.uri,
                "rows": d.rows,
                "fingerprint": d.fingerprint,
                "error": d.error,
                "sampling": dataclasses.asdict(d.sampling) if d.sampling else None,
            }
            for d in datasets
        },
        "policy_source": policy.source,
        "policy_hash": policy.hash,
        "package_version": __version__,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
    }


def evidence_files(
    record: VersionRecord,
    sections: list[Section],
    findings: pd.DataFrame,
    recommendation: Recommendation,
    prov: dict[str, Any],
    earlier: pd.DataFrame | None = None,
) -> dict[str, bytes]:
    """Every file of the run folder but the manifest, keyed by its path inside the folder.

    `earlier` holds the headline metrics of the version's earlier runs (`reporting.trend.metric_history`)
    for the report's trend chart."""
    files: dict[str, bytes] = {}
    for section in sections:
        for stem, frame in section.tables.items():
            files[f"{stem}.parquet"] = parquet_bytes(frame)
    files["findings.parquet"] = parquet_bytes(findings)
    report = version_report.build(record, recommendation, findings, sections, prov, earlier)
    files |= {f"plots/{name}.png": png for name, png in report.plots.items()}
    md = version_report.to_markdown(report)
    files["report.md"] = md.encode()
    files["report.html"] = version_report.to_html(report).encode()
    files["report.pdf"] = to_pdf(md, report.plots, report.title)
    return files


def manifest(prov: dict[str, Any], recommendation: Recommendation) -> dict[str, Any]:
    return {
        "schema": 1,
        **prov,
        "recommendation": recommendation.decision,
        "open_findings": recommendation.open_by_severity,
    }
