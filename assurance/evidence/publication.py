"""What one assurance run publishes: the findings of all analyses, the report and the manifest, and the
MLflow run that carries a copy of them to where model owners look.

Order (`publish_assurance`): the MLflow run is logged first, then the evidence is published, then the run
is ended. Findings are settled before publication, so logging comes first for its failure to be a finding
(`monitoring.mlflow_run`) in the same evidence, with the recommendation redone; that finding is the one
difference between the `findings` asset and the published findings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from assurance import __version__
from assurance.checks.coverage import coverage_findings
from assurance.checks.predictions import prediction_findings
from assurance.domain.findings import Finding, findings_frame
from assurance.domain.values import Dataset, Predictions, Section, VersionRecord
from assurance.evidence.mlflow_run import TrackedRun, end_run, failure_finding, log_run, one_line, start_run
from assurance.evidence.store import EvidenceStore, Published, manifest_document, parquet_bytes
from assurance.policy.model import Policy
from assurance.policy.recommendation import Recommendation, recommend
from assurance.reporting import version_report
from assurance.reporting.pdf import to_pdf

if TYPE_CHECKING:
    from assurance.registry.client import Registry

REPORT = "report.html"
MLFLOW_RUN_TAG = "assurance.result.mlflow_run_id"


def collect_findings(
    record: VersionRecord,
    policy: Policy,
    sections: list[Section],
    predictions: Predictions | None,
    extra: Sequence[Finding] = (),
) -> pd.DataFrame:
    findings = [
        *(f for s in sections for f in s.findings),
        *prediction_findings(predictions, policy),
        *coverage_findings(record, policy, sections),
        *extra,
    ]
    return findings_frame(findings, record, policy)


def version_findings(
    record: VersionRecord,
    policy: Policy,
    sections: list[Section],
    predictions: Predictions | None,
    store: EvidenceStore,
    extra: Sequence[Finding] = (),
) -> pd.DataFrame:
    """Every finding of the run with its history: first seen in an earlier run, and accepted risks that
    still hold no longer hold the version until they expire."""
    from assurance.governance.ledger import apply_ledger, build_ledger

    frame = collect_findings(record, policy, sections, predictions, extra)
    return apply_ledger(frame, build_ledger(store, policy, model=record.name, version=record.version))


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
        "review": review(record, policy, started_at),
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
    }


def review(record: VersionRecord, policy: Policy, at: datetime) -> dict[str, Any]:
    """The tier the version was reviewed under, why, and when its tier wants it reviewed next."""
    from assurance.policy.tiers import decide_tier

    tier = decide_tier(record, policy)
    days = policy.tier_level(tier.tier).revalidate_days
    due = (at + timedelta(days=days)).date().isoformat() if days is not None else None
    return {"tier": tier.tier, "tier_rationale": tier.rationale, "next_review": due}


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


@dataclass(frozen=True)
class Assurance:
    """A published assurance: its evidence (and the evidence's web address, when the root is served), the
    findings and recommendation it holds, its MLflow run (None when it could not be logged, `mlflow_error`
    says why), and `notes` on what went wrong after publication."""

    published: Published
    evidence_link: str | None
    findings: pd.DataFrame
    recommendation: Recommendation
    mlflow_run: TrackedRun | None
    mlflow_error: str | None
    notes: tuple[str, ...] = ()

    @property
    def report_location(self) -> str:
        """The published report, the record of truth: its web address, else its place in the evidence store."""
        return self.evidence_link or f"{self.published.url}/{REPORT}"

    @property
    def report_url(self) -> str | None:
        """An address a browser opens: the served evidence, else the report's copy on the MLflow run's page."""
        return self.evidence_link or (self.mlflow_run.page(REPORT) if self.mlflow_run else None)

    def result_tags(self, version_tags: Mapping[str, str]) -> dict[str, str | None]:
        """The `assurance.result.*` tags to write back to the version (None deletes one): an MLflow run id an
        earlier assurance left is cleared when this one has no run, so every tag describes this assurance."""
        tags: dict[str, str | None] = {
            "assurance.result.recommendation": self.recommendation.decision,
            "assurance.result.open_findings": ",".join(
                f"{k}={v}" for k, v in self.recommendation.open_by_severity.items()
            ),
            "assurance.result.report": self.report_location,
            "assurance.result.run_id": self.published.run_id,
        }
        if self.mlflow_run is not None or MLFLOW_RUN_TAG in version_tags:
            tags[MLFLOW_RUN_TAG] = self.mlflow_run.run_id if self.mlflow_run else None
        return tags


def publish_assurance(
    store: EvidenceStore,
    registry: Registry,
    policy: Policy,
    record: VersionRecord,
    sections: list[Section],
    predictions: Predictions | None,
    findings: pd.DataFrame,
    recommendation: Recommendation,
    prov: dict[str, Any],
    earlier: pd.DataFrame | None = None,
) -> Assurance:
    """Log the MLflow run, publish the evidence, end the run; see the module's docstring for the order.

    A failure to publish is the product failing: it is raised, and the MLflow run ends FAILED.
    """
    run, error = None, None
    try:
        run = start_run(registry, policy.mlflow.experiment, record)
        prov = {**prov, "mlflow_run": run.provenance()}
        files = evidence_files(record, sections, findings, recommendation, prov, earlier)
        _, body = manifest_document(files, manifest(prov, recommendation))
        log_run(registry, run, record, prov, sections, findings, recommendation, files, body)
    except Exception as exc:  # noqa: BLE001 - any failure to log the copy is a finding, never a failed run
        error = exc
        if run is not None:
            _end_quietly(registry, run, published=False)
        run = None
        prov = {k: v for k, v in prov.items() if k != "mlflow_run"}
        failure = failure_finding(policy, registry.tracking_uri, exc)
        findings = version_findings(record, policy, sections, predictions, store, [failure])
        recommendation = recommend(findings, policy)
        files = evidence_files(record, sections, findings, recommendation, prov, earlier)
    try:
        published = store.publish_run(
            record.name, record.version, prov["run_id"], files, manifest(prov, recommendation)
        )
    except Exception:
        if run is not None:
            _end_quietly(registry, run, published=False)
        raise
    notes = []
    if run is not None:
        try:
            end_run(registry, run, published=True)
        except Exception as exc:  # noqa: BLE001 - the evidence is published; the run only stays RUNNING
            notes.append(f"MLflow run {run.run_id} could not be ended: {type(exc).__name__}: {exc}")
    return Assurance(
        published,
        store.link(f"{published.path}/{REPORT}"),
        findings,
        recommendation,
        run,
        None if error is None else one_line(error),
        tuple(notes),
    )


def _end_quietly(registry: Registry, run: TrackedRun, published: bool) -> None:
    try:
        end_run(registry, run, published)
    except Exception:  # noqa: BLE001 - the failure that brought us here is the one worth reporting
        pass
