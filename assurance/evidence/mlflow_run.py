"""Every assurance is also an MLflow run, so model owners find it where they already look.

The run lives in the tracking server the version came from, in the policy's experiment (`mlflow.experiment`):
parameters (policy hash, data fingerprints, package version, Dagster and evidence run ids), metrics
(performance with interval bounds, tied to their dataset and to the version's logged model; drift share;
open findings by severity), artifacts (the report, `manifest.json` byte for byte as published, the findings
table) and tags naming the model and version. It is a copy: the evidence store stays the record of truth.

Its life follows publication (`publication.publish_assurance`): created and filled before the evidence is
published, so a failure to log it is a finding (`monitoring.mlflow_run`) in that very evidence; ended
FINISHED once the evidence is published, FAILED otherwise, so a finished run always has evidence behind it.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from assurance.domain.checks import CheckSpec
from assurance.domain.findings import SEVERITIES, counts_by_severity

if TYPE_CHECKING:
    import pandas as pd

    from assurance.domain.findings import Finding
    from assurance.domain.values import Section, VersionRecord
    from assurance.policy.model import Policy
    from assurance.policy.recommendation import Recommendation
    from assurance.registry.client import Registry

MLFLOW_RUN = CheckSpec(
    "monitoring.mlflow_run",
    "monitoring",
    "The assurance could not be logged as an MLflow run in the version's tracking server; the evidence "
    "store still holds all of it.",
    "low",
)
CHECKS: tuple[CheckSpec, ...] = (MLFLOW_RUN,)
REPORTS = ("report.html", "report.pdf")
MANIFEST = "manifest.json"
FINDINGS_TABLE = "findings.json"
# MLflow keeps dataset digests of at most 36 characters
DIGEST_CHARS = 32
MAX_METRICS_PER_CALL = 1000


@dataclass(frozen=True)
class TrackedRun:
    """An assurance run in MLflow; `web` is the tracking server's browser address, when it has one."""

    experiment_id: str
    run_id: str
    web: str | None = None

    def page(self, artifact: str | None = None) -> str | None:
        """The run's page in the MLflow UI, or one artifact's preview on it; None when no browser can open it."""
        if self.web is None:
            return None
        tail = f"/artifactPath/{quote(artifact)}" if artifact else ""
        return f"{self.web}/#/experiments/{self.experiment_id}/runs/{self.run_id}{tail}"

    def provenance(self) -> dict[str, str | None]:
        return {"experiment_id": self.experiment_id, "run_id": self.run_id, "url": self.page()}


@dataclass(frozen=True)
class RunMetric:
    """One number of the run: `dataset` is the role it was measured on; `of_model` ties it to the logged model."""

    key: str
    value: float
    dataset: str | None = None
    of_model: bool = False


def run_params(prov: dict[str, Any]) -> dict[str, str]:
    """What judged which data: enough to tell two assurance runs of a version apart."""
    params = {
        "policy_hash": prov.get("policy_hash"),
        "policy_source": prov.get("policy_source"),
        "package_version": prov.get("package_version"),
        "dagster_run_id": prov.get("dagster_run_id"),
        "evidence_run_id": prov.get("run_id"),
        "model_uri": prov.get("model_uri"),
        **{f"{role}_fingerprint": d.get("fingerprint") for role, d in (prov.get("data") or {}).items()},
    }
    return {key: str(value) for key, value in params.items() if value is not None}


def run_metrics(sections: list[Section], findings: pd.DataFrame) -> list[RunMetric]:
    """Performance per dataset with its interval bounds, drift share and open findings by severity."""
    by_key = {s.key: s for s in sections}
    metrics = []
    performance = by_key.get("performance")
    table = performance.tables.get("performance") if performance else None
    for row in [] if table is None else table.to_dict("records"):
        prefix = f"{row['dataset']}{'_estimated' if row['estimated'] else ''}/{row['metric']}"
        for suffix, column in (("", "value"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")):
            metrics.append(RunMetric(f"{prefix}{suffix}", row[column], row["dataset"], of_model=True))
    drift = by_key.get("drift")
    if drift and "drift_share" in drift.metrics:
        metrics.append(RunMetric("drift/share", drift.metrics["drift_share"], "current"))
        metrics.append(RunMetric("drift/drifted_features", drift.metrics["drifted_features"], "current"))
    counts = counts_by_severity(findings)
    metrics += [RunMetric(f"findings/open_{s}", counts[s], of_model=True) for s in SEVERITIES]
    return [m for m in metrics if m.value is not None and math.isfinite(float(m.value))]


def run_tags(record: VersionRecord, recommendation: Recommendation) -> dict[str, str]:
    """Tags to find the run by model and version, and the decision as the run's description."""
    reasons = "\n".join(f"- {r}" for r in recommendation.reasons[:20])
    tags = {
        "assurance.model": record.name,
        "assurance.version": str(record.version),
        "assurance.recommendation": recommendation.decision,
        "assurance.source_run": record.run_id,
        "mlflow.note.content": f"**{recommendation.decision}** for {record.name} version {record.version}\n\n"
        f"{reasons}",
    }
    return {key: value for key, value in tags.items() if value}


def start_run(registry: Registry, experiment: str, record: VersionRecord) -> TrackedRun:
    """Create the run (RUNNING) in the policy's experiment of the version's tracking server."""
    from assurance.registry.client import web_address

    experiment_id = registry.experiment_id(experiment)
    run = registry.client.create_run(experiment_id, run_name=f"assurance {record.name} v{record.version}")
    return TrackedRun(experiment_id, run.info.run_id, web_address(registry.tracking_uri))


def log_run(
    registry: Registry,
    run: TrackedRun,
    record: VersionRecord,
    prov: dict[str, Any],
    sections: list[Section],
    findings: pd.DataFrame,
    recommendation: Recommendation,
    files: dict[str, bytes],
    manifest_body: bytes,
) -> None:
    """Parameters, tags, inputs, metrics, the reports, the manifest and the findings table; raises on failure."""
    from mlflow.entities import DatasetInput, InputTag, LoggedModelInput, Metric, Param, RunTag

    client = registry.client
    params = [Param(k, v) for k, v in run_params(prov).items()]
    tags = [RunTag(k, v) for k, v in run_tags(record, recommendation).items()]
    client.log_batch(run.run_id, params=params, tags=tags)
    model_id = _logged_model(registry, record.model_id)
    datasets = _datasets(prov)
    client.log_inputs(
        run.run_id,
        datasets=[
            DatasetInput(ds, tags=[InputTag("mlflow.data.context", role)]) for role, ds in datasets.items()
        ],
        models=[LoggedModelInput(model_id)] if model_id else None,
    )
    now = int(time.time() * 1000)
    metrics = [
        Metric(
            m.key,
            float(m.value),
            now,
            0,
            model_id=model_id if m.of_model else None,
            dataset_name=m.dataset if m.dataset in datasets else None,
            dataset_digest=datasets[m.dataset].digest if m.dataset in datasets else None,
        )
        for m in run_metrics(sections, findings)
    ]
    for start in range(0, len(metrics), MAX_METRICS_PER_CALL):
        client.log_batch(run.run_id, metrics=metrics[start : start + MAX_METRICS_PER_CALL])
    with tempfile.TemporaryDirectory() as tmp:
        for name in REPORTS:
            if name in files:
                Path(tmp, name).write_bytes(files[name])
        Path(tmp, MANIFEST).write_bytes(manifest_body)
        client.log_artifacts(run.run_id, tmp)
    client.log_table(run.run_id, _table(findings), FINDINGS_TABLE)


def end_run(registry: Registry, run: TrackedRun, published: bool) -> None:
    registry.client.set_terminated(run.run_id, "FINISHED" if published else "FAILED")


def failure_finding(policy: Policy, tracking_uri: str, error: BaseException) -> Finding:
    """The finding a failed logging becomes; its subject is the experiment, so it keeps its id across runs."""
    from assurance.registry.client import web_address

    experiment = policy.mlflow.experiment
    where = web_address(tracking_uri) or f"the {urlsplit(tracking_uri).scheme or 'local'} registry"
    return MLFLOW_RUN.finding(
        experiment,
        policy.severity(MLFLOW_RUN),
        f"This assurance could not be logged as a run of MLflow experiment {experiment!r} ({where}): "
        f"{one_line(error)}. The evidence store holds all of it; check that the tracking server "
        "accepts runs and the experiment's artifact location is writable.",
        evidence="findings.parquet",
    )


def one_line(error: BaseException) -> str:
    """An exception as one short line: MLflow's carry SQL statements and stack details on later lines."""
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first[:300]}"


def _logged_model(registry: Registry, model_id: str | None) -> str | None:
    """The version's logged model, when this tracking server has it: metrics tied to a model it does not
    know are refused (MLflow 2 versions have none)."""
    if not model_id:
        return None
    try:
        return registry.client.get_logged_model(model_id).model_id
    except Exception:  # noqa: BLE001 - without it the metrics stay on the run alone
        return None


def _datasets(prov: dict[str, Any]) -> dict[str, Any]:
    """Reference and current data as MLflow datasets, named by role, digest from their fingerprint."""
    import json

    from mlflow.entities import Dataset

    out = {}
    for role, data in (prov.get("data") or {}).items():
        if data.get("fingerprint") and data.get("uri"):
            scheme = urlsplit(data["uri"]).scheme
            out[role] = Dataset(
                name=role,
                digest=data["fingerprint"][:DIGEST_CHARS],
                source_type=scheme if scheme not in ("", "file") else "local",
                source=json.dumps({"uri": data["uri"]}),
                profile=json.dumps({"num_rows": data.get("rows")}),
            )
    return out


def _table(findings: pd.DataFrame) -> pd.DataFrame:
    """The findings with times as ISO text, which MLflow's table view shows as they are."""
    import pandas as pd

    out = findings.copy()
    for column in out.select_dtypes(include=["datetimetz", "datetime"]).columns:
        out[column] = out[column].map(lambda t: t.isoformat() if pd.notna(t) else None)
    return out
