"""One asset per analysis in `assurance.analyses`, each with a non-blocking asset check per finding check.

Checks never block: the findings, the recommendation and the report always materialize. A check fails
with ERROR when its findings reach the severities the policy holds on, with WARN otherwise.
"""

import dagster as dg

from assets.common import OWNERS, progress
from assets.partitions import VersionOutput, each_version, emit, version_asset, version_check
from assurance.checks.catalog import ANALYSIS_FAILED, Analysis, all_analyses, check_name, run_isolated
from assurance.domain.values import Inputs, Section, split_partition_key
from assurance.reporting.markdown import without_images
from resources import DataResource, EvidenceResource, PolicyResource, RegistryResource

GROUP = "analyses"
INPUT_ASSETS = {"reference": "reference_data", "current": "current_data", "predictions": "predictions"}


def asset_checks(analysis: Analysis) -> tuple:
    """The analysis's own checks, and whether it ran to completion at all."""
    return (*analysis.checks, ANALYSIS_FAILED)


def check_results(analysis: Analysis, section: Section, hold_on: list[str]) -> list[dg.AssetCheckResult]:
    results = []
    for spec in asset_checks(analysis):
        own = [f for f in section.findings if f.check == spec.name]
        judged = [f for f in own if f.severity not in ("low", "info")]
        worst_holds = any(f.severity in hold_on for f in judged)
        metadata = {
            "findings": len(own),
            "subjects": ", ".join(sorted({f.subject for f in own}))[:1000] or "(none)",
        }
        if section.skipped:
            metadata["not_run"] = "; ".join(section.skipped)[:1000]
        results.append(
            dg.AssetCheckResult(
                asset_key=analysis.key,
                check_name=check_name(spec.name),
                passed=not judged,
                severity=dg.AssetCheckSeverity.ERROR if worst_holds else dg.AssetCheckSeverity.WARN,
                description=judged[0].message if judged else None,
                metadata=metadata,
            )
        )
    return results


def section_metadata(section: Section) -> dict:
    """Counts, metrics and the summary for the asset's page; plots are only in the report (see without_images)."""
    by_sev: dict[str, int] = {}
    for f in section.findings:
        by_sev[f.severity] = by_sev.get(f.severity, 0) + 1
    meta: dict = {"findings": len(section.findings), "findings_by_severity": dg.MetadataValue.json(by_sev)}
    meta.update({k: float(v) for k, v in section.metrics.items()})
    if section.summary:
        meta["summary"] = dg.MetadataValue.md(without_images(section.summary)[:20000])
    if section.skipped:
        meta["not_run"] = "; ".join(section.skipped)[:2000]
    return meta


def analysis_asset(analysis: Analysis) -> dg.AssetsDefinition:
    ins = {"model_version": dg.AssetIn("model_version")}
    for need in analysis.needs:
        if need in INPUT_ASSETS:
            ins[INPUT_ASSETS[need]] = dg.AssetIn(INPUT_ASSETS[need])
    if "model" in analysis.needs:
        ins.setdefault("reference_data", dg.AssetIn("reference_data"))

    @version_asset(
        name=analysis.key,
        ins=ins,
        group_name=GROUP,
        owners=OWNERS,
        kinds=set(analysis.kinds),
        description=analysis.description,
        check_specs=[
            version_check(check_name(spec.name), analysis.key, spec.description)
            for spec in asset_checks(analysis)
        ],
    )
    def _run(
        context: dg.AssetExecutionContext,
        registry: RegistryResource,
        evidence: EvidenceResource,
        policy: PolicyResource,
        data: DataResource,
        **inputs,
    ):
        pol, reg, store = policy.get(), registry.get(), evidence.get()
        outputs = {}
        for key, version in each_version(context, inputs):
            section = _section(analysis, version, reg, store, pol, data.memory_budget_mb)
            store.hold_unpublished(*split_partition_key(key), section.tables)
            progress(context, key, f"{analysis.title}: {len(section.findings)} findings")
            outputs[key] = VersionOutput(
                section,
                metadata=section_metadata(section),
                checks=check_results(analysis, section, pol.recommendation.hold_if_any),
            )
        yield from emit(context, outputs)

    return _run


def _section(analysis: Analysis, inputs: dict, registry, store, policy, budget_mb: int) -> Section:
    """One version's section of `analysis`; a failure inside it is a finding (run_isolated), not a failed run."""
    record, reference = inputs["model_version"], inputs.get("reference_data")
    model = _model_or_none(registry, record, reference) if "model" in analysis.needs else None
    champion = None
    if "champion" in analysis.needs:
        champion = _champion(registry, record, policy, reference)
    return run_isolated(
        analysis,
        Inputs(
            record=record,
            policy=policy,
            reference=reference,
            current=inputs.get("current_data"),
            predictions=inputs.get("predictions"),
            model=model,
            store=store,
            data_budget_mb=budget_mb,
            champion=champion,
        ),
    )


def _model_or_none(registry, record, reference):
    from assurance.scoring.predict import load_version_model

    try:
        return load_version_model(registry, record, reference)
    except Exception:  # noqa: BLE001 - the predictions asset already reports why the model did not load
        return None


def _champion(registry, record, policy, reference):
    from assurance.checks.challenger import find_champion

    return find_champion(registry, record, policy, reference)


def analysis_assets() -> list[dg.AssetsDefinition]:
    return [analysis_asset(a) for a in all_analyses()]
