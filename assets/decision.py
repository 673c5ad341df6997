"""Findings, the recommendation and the published evidence of one model version."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from assets.common import OWNERS, progress, table_metadata
from assets.partitions import VersionOutput, each_version, emit, version_asset
from assurance.checks.catalog import all_analyses
from assurance.domain.values import Dataset, Predictions, VersionRecord
from assurance.evidence.mlflow_run import TrackedRun
from assurance.policy.recommendation import Recommendation
from resources import EvidenceResource, PolicyResource, RegistryResource

GROUP = "decision"
ANALYSIS_KEYS = [a.key for a in all_analyses()]
SECTION_INS = {key: dg.AssetIn(key) for key in ANALYSIS_KEYS}
PREVIEW = ["severity", "category", "subject", "message"]


def _sections(inputs: dict) -> list:
    return [inputs[key] for key in ANALYSIS_KEYS]


@version_asset(
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
def findings(context: dg.AssetExecutionContext, policy: PolicyResource, evidence: EvidenceResource, **inputs):
    from assurance.evidence.publication import version_findings

    pol, store = policy.get(), evidence.get()
    outputs = {}
    for key, version in each_version(context, inputs):
        # history: first_seen from earlier runs, and accepted risks stop holding the version until they expire
        frame = version_findings(
            version["model_version"], pol, _sections(version), version["predictions"], store
        )
        progress(context, key, f"{len(frame)} findings")
        outputs[key] = _findings_output(frame)
    yield from emit(context, outputs)


def _findings_output(frame: pd.DataFrame) -> VersionOutput:
    counts = frame.loc[frame["status"] == "open", "severity"].value_counts().to_dict() if len(frame) else {}
    return VersionOutput(
        frame,
        metadata={
            "dagster/row_count": len(frame),
            **{f"open_{s}": int(counts.get(s, 0)) for s in ("critical", "high", "medium", "low")},
            "preview": table_metadata(frame[PREVIEW].head(25)),
        },
    )


@version_asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python"},
    description=(
        "approve, approve_with_conditions or hold, from the policy's recommendation rule and the open "
        "findings, with the reasons. People decide; the product recommends and records."
    ),
)
def recommendation(context: dg.AssetExecutionContext, policy: PolicyResource, findings):
    from assurance.policy.recommendation import recommend

    pol = policy.get()
    outputs = {}
    for key, version in each_version(context, {"findings": findings}):
        rec: Recommendation = recommend(version["findings"], pol)
        progress(context, key, f"recommendation: {rec.decision}")
        outputs[key] = VersionOutput(
            rec,
            metadata={
                "recommendation": rec.decision,
                "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in rec.reasons[:30])),
                **{f"open_{k}": v for k, v in rec.open_by_severity.items()},
            },
        )
    yield from emit(context, outputs)


@version_asset(
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
        "plots, report.html, report.md and report.pdf (decision first, trend over the version's runs), and "
        "manifest.json with sha256 of every file and the provenance. Written whole or not at all, never "
        "overwritten. Also logged as an MLflow run "
        "(metrics, parameters, report, manifest, findings table) in the policy's experiment of the version's "
        "tracking server; a failure to log it is a monitoring finding in the published evidence. The result "
        "is written back to the version as assurance.result.* tags, one of them the MLflow run's id."
    ),
)
def evidence_report(
    context: dg.AssetExecutionContext,
    registry: RegistryResource,
    evidence: EvidenceResource,
    policy: PolicyResource,
    **inputs,
):
    pol, store, reg = policy.get(), evidence.get(), registry.get()
    start_time = context.instance.get_run_stats(context.run_id).start_time
    started = datetime.fromtimestamp(start_time, UTC) if start_time else datetime.now(UTC)
    outputs = {}
    for key, version in each_version(context, inputs):
        outputs[key] = _publish(context, key, version, pol, store, reg, started)
    yield from emit(context, outputs)


def _publish(
    context: dg.AssetExecutionContext, key: str, inputs: dict, pol, store, reg, started
) -> VersionOutput:
    """Publish one version's evidence, log it to MLflow and write the result tags back to the version."""
    from assurance.evidence.publication import provenance, publish_assurance
    from assurance.evidence.store import new_run_id
    from assurance.reporting.trend import metric_history

    record: VersionRecord = inputs["model_version"]
    datasets: list[Dataset] = [inputs["reference_data"], inputs["current_data"]]
    preds: Predictions = inputs["predictions"]
    prov = provenance(record, pol, datasets, preds, new_run_id(), started)
    prov["dagster_run_id"] = context.run_id
    done = publish_assurance(
        store,
        reg,
        pol,
        record,
        _sections(inputs),
        preds,
        inputs["findings"],
        inputs["recommendation"],
        prov,
        metric_history(store, record.name, record.version),
    )
    rec, published, run = done.recommendation, done.published, done.mlflow_run
    progress(context, key, f"evidence published to {published.url}")
    if run is None:
        context.log.warning(
            f"{key}: the assurance was not logged to MLflow (a monitoring finding): {done.mlflow_error}"
        )
    for note in done.notes:
        context.log.warning(f"{key}: {note}")
    try:
        reg.set_result_tags(record.name, record.version, done.result_tags(record.version_tags))
    except Exception as exc:  # noqa: BLE001 - evidence is published; a failed write-back is only logged
        context.log.warning(f"{key}: could not write result tags back to MLflow: {exc}")
    summary = {
        "model": record.name,
        "version": record.version,
        "run_id": published.run_id,
        "evidence_dir": published.url,
        "recommendation": rec.decision,
        "reasons": rec.reasons,
        "mlflow_run_id": run.run_id if run else None,
        "findings": done.findings,
    }
    return VersionOutput(
        summary,
        metadata={
            "recommendation": rec.decision,
            "evidence_dir": dg.MetadataValue.path(published.url),
            "report": dg.MetadataValue.url(done.report_url)
            if done.report_url
            else dg.MetadataValue.path(done.report_location),
            "mlflow_run": _run_metadata(run, done.mlflow_error),
            "files": len(published.manifest["files"]) + 1,
            "run_id": published.run_id,
        },
    )


def _run_metadata(run: TrackedRun | None, error: str | None) -> dg.MetadataValue:
    """A link to the run's page when the tracking server has a web address, else its id, else why it is missing."""
    if run is None:
        return dg.MetadataValue.text(f"not logged: {error}")
    page = run.page()
    return dg.MetadataValue.url(page) if page else dg.MetadataValue.text(run.run_id)
