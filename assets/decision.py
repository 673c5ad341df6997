"""Findings, the recommendation and the published evidence of one model version."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from assets.common import OWNERS, progress, table_metadata
from assets.partitions import model_versions
from assurance.checks.catalog import all_analyses
from assurance.domain.values import Dataset, Predictions, VersionRecord
from assurance.policy.recommendation import Recommendation
from resources import EvidenceResource, PolicyResource, RegistryResource

GROUP = "decision"
ANALYSIS_KEYS = [a.key for a in all_analyses()]
SECTION_INS = {key: dg.AssetIn(key) for key in ANALYSIS_KEYS}
PREVIEW = ["severity", "category", "subject", "message"]


def _sections(inputs: dict) -> list:
    return [inputs[key] for key in ANALYSIS_KEYS]


@dg.asset(
    partitions_def=model_versions,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pandas"},
    ins={
        "model_version": dg.AssetIn("model_version"),
        "predictions": dg.AssetIn("predictions"),
        **SECTION_INS,
    },
    description=(
        "Every finding of every analysis in one table (the DESIGN findings schema): a stable id per model, "
        "check and subject, severity from the policy, a plain message, observed value and threshold, due date."
    ),
)
def findings(
    context: dg.AssetExecutionContext, policy: PolicyResource, evidence: EvidenceResource, **inputs
) -> dg.Output[pd.DataFrame]:
    from assurance.evidence.publication import collect_findings
    from assurance.governance.ledger import apply_ledger, build_ledger

    pol, record = policy.get(), inputs["model_version"]
    frame = collect_findings(record, pol, _sections(inputs), inputs["predictions"])
    # history: first_seen from earlier runs, and accepted risks stop holding the version until they expire
    frame = apply_ledger(frame, build_ledger(evidence.get(), pol, model=record.name, version=record.version))
    progress(context, f"{len(frame)} findings")
    counts = frame.loc[frame["status"] == "open", "severity"].value_counts().to_dict() if len(frame) else {}
    return dg.Output(
        frame,
        metadata={
            "dagster/row_count": len(frame),
            **{f"open_{s}": int(counts.get(s, 0)) for s in ("critical", "high", "medium", "low")},
            "preview": table_metadata(frame[PREVIEW].head(25)),
        },
    )


@dg.asset(
    partitions_def=model_versions,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description=(
        "approve, approve_with_conditions or hold, from the policy's recommendation rule and the open "
        "findings, with the reasons. People decide; the product recommends and records."
    ),
)
def recommendation(
    context: dg.AssetExecutionContext, policy: PolicyResource, findings: pd.DataFrame
) -> dg.Output[Recommendation]:
    from assurance.policy.recommendation import recommend

    rec = recommend(findings, policy.get())
    progress(context, f"recommendation: {rec.decision}")
    return dg.Output(
        rec,
        metadata={
            "recommendation": rec.decision,
            "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in rec.reasons[:30])),
            **{f"open_{k}": v for k, v in rec.open_by_severity.items()},
        },
    )


@dg.asset(
    partitions_def=model_versions,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"html", "parquet"},
    ins={
        "model_version": dg.AssetIn("model_version"),
        "reference_data": dg.AssetIn("reference_data"),
        "current_data": dg.AssetIn("current_data"),
        "predictions": dg.AssetIn("predictions"),
        "findings": dg.AssetIn("findings"),
        "recommendation": dg.AssetIn("recommendation"),
        **SECTION_INS,
    },
    description=(
        "The published evidence folder of this run: every analysis's Parquet tables, findings.parquet, "
        "plots, report.html, report.md and report.pdf (decision first, trend over the version's runs), and manifest.json with sha256 of every file "
        "and the provenance. Written whole or not at all, never overwritten. The result is written back "
        "to the version in MLflow as assurance.result.* tags."
    ),
)
def evidence_report(
    context: dg.AssetExecutionContext,
    registry: RegistryResource,
    evidence: EvidenceResource,
    policy: PolicyResource,
    **inputs,
) -> dg.Output[dict]:
    from assurance.evidence.publication import evidence_files, manifest, provenance
    from assurance.evidence.store import new_run_id
    from assurance.reporting.trend import metric_history

    record: VersionRecord = inputs["model_version"]
    rec: Recommendation = inputs["recommendation"]
    datasets: list[Dataset] = [inputs["reference_data"], inputs["current_data"]]
    preds: Predictions = inputs["predictions"]
    store = evidence.get()
    run_id = new_run_id()
    start_time = context.instance.get_run_stats(context.run_id).start_time
    started = datetime.fromtimestamp(start_time, UTC) if start_time else datetime.now(UTC)
    prov = provenance(record, policy.get(), datasets, preds, run_id, started)
    prov["dagster_run_id"] = context.run_id
    earlier = metric_history(store, record.name, record.version)
    files = evidence_files(record, _sections(inputs), inputs["findings"], rec, prov, earlier)
    published = store.publish_run(record.name, record.version, run_id, files, manifest(prov, rec))
    progress(context, f"evidence published to {published.url}")
    result_tags = {
        "assurance.result.recommendation": rec.decision,
        "assurance.result.open_findings": ",".join(f"{k}={v}" for k, v in rec.open_by_severity.items()),
        "assurance.result.report": f"{published.url}/report.html",
        "assurance.result.run_id": run_id,
    }
    try:
        registry.get().set_result_tags(record.name, record.version, result_tags)
    except Exception as exc:  # noqa: BLE001 - evidence is published; a failed write-back is only logged
        context.log.warning(f"could not write result tags back to MLflow: {exc}")
    summary = {
        "model": record.name,
        "version": record.version,
        "run_id": run_id,
        "evidence_dir": published.url,
        "recommendation": rec.decision,
        "reasons": rec.reasons,
    }
    return dg.Output(
        summary,
        metadata={
            "recommendation": rec.decision,
            "evidence_dir": dg.MetadataValue.path(published.url),
            "report": dg.MetadataValue.url(_file_url(f"{published.url}/report.html")),
            "files": len(files) + 1,
            "run_id": run_id,
        },
    )


def _file_url(path: str) -> str:
    from pathlib import Path

    return Path(path).resolve().as_uri() if "://" not in path else path
