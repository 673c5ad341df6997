"""Portfolio assets (not partitioned): the findings ledger, the model inventory, the KPIs and the posture report.

They read the registry's current versions and the published evidence of every version, and publish the
snapshot to `<evidence root>/_portfolio/`. An hourly schedule keeps the posture current; any run of the
`assure_portfolio` job (UI, CLI) refreshes it on demand.
"""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from assets.common import OWNERS, table_metadata
from assurance.domain.findings import SEVERITIES
from resources import EvidenceResource, PolicyResource, RegistryResource

GROUP = "portfolio"
PORTFOLIO_JOB = "assure_portfolio"


def _kpi_table(kpis: pd.DataFrame) -> dg.TableMetadataValue:
    from assurance.governance.portfolio import kpi_value

    return table_metadata(
        pd.DataFrame({"kpi": kpis["kpi"], "value": [kpi_value(r) for r in kpis.itertuples()]})
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pandas", "parquet"},
    deps=["evidence_report"],
    description=(
        "Every finding's history across all runs of all versions: first and last seen, open, closed (with "
        "the run that closed it) or accepted (who, why, until when; expired acceptances reopen), due date "
        "from the policy's SLA and overdue flag. Recomputed from published evidence and acceptances."
    ),
)
def findings_ledger(evidence: EvidenceResource, policy: PolicyResource) -> dg.Output[pd.DataFrame]:
    from assurance.governance.ledger import build_ledger
    from assurance.governance.portfolio import open_findings

    ledger = build_ledger(evidence.get(), policy.get())
    status = ledger["status"].value_counts().to_dict() if len(ledger) else {}
    live = open_findings(ledger)
    preview = live[["severity", "status", "model", "version", "subject", "due", "overdue"]].head(25)
    return dg.Output(
        ledger,
        metadata={
            "dagster/row_count": len(ledger),
            **{f"{s}": int(status.get(s, 0)) for s in ("open", "accepted", "closed")},
            "overdue": int(ledger["overdue"].sum()) if len(ledger) else 0,
            "open_and_accepted": table_metadata(preview),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"mlflow", "pandas"},
    description=(
        "The model inventory: every registered model version with owner, use case, risk tier and its "
        "rationale, aliases, metadata completeness, last assurance, recommendation, open findings and "
        "review due date from the tier's cadence; versions gone from the registry stay, flagged retired."
    ),
)
def model_inventory(
    registry: RegistryResource,
    evidence: EvidenceResource,
    policy: PolicyResource,
    findings_ledger: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    from assurance.evidence.history import run_folders
    from assurance.governance.portfolio import inventory, record_from_ref

    store = evidence.get()
    records = [record_from_ref(ref) for ref in registry.get().snapshot()]
    inv = inventory(records, store, policy.get(), findings_ledger, run_folders(store), datetime.now(UTC))
    cols = ["model", "version", "tier", "aliases", "owner", "recommendation", "open_findings", "review_due"]
    return dg.Output(
        inv,
        metadata={
            "dagster/row_count": len(inv),
            "registered": int((~inv["retired"]).sum()),
            "retired": int(inv["retired"].sum()),
            "preview": table_metadata(inv[cols].head(50)),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"pandas"},
    description=(
        "Model risk KPIs: inventory coverage, tiering completeness, assurance and evidence completeness, "
        "monitoring coverage of production versions, open findings by severity, overdue remediation, "
        "overdue reviews and median days from registration to first assurance."
    ),
)
def portfolio_kpis(model_inventory: pd.DataFrame, findings_ledger: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    from assurance.governance.portfolio import kpis

    frame = kpis(model_inventory, findings_ledger)
    values = frame.set_index("kpi")["value"]
    return dg.Output(
        frame,
        metadata={
            **{f"open_{s}": int(values[f"open_findings_{s}"]) for s in SEVERITIES},
            "table": _kpi_table(frame),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"html", "parquet"},
    description=(
        "The posture report (HTML, every user value escaped) and the portfolio tables (inventory, ledger, "
        "KPIs, production alias history) published to <evidence root>/_portfolio/."
    ),
)
def portfolio_report(
    evidence: EvidenceResource,
    policy: PolicyResource,
    model_inventory: pd.DataFrame,
    findings_ledger: pd.DataFrame,
    portfolio_kpis: pd.DataFrame,
) -> dg.Output[dict]:
    from assurance.evidence.history import run_folders
    from assurance.evidence.store import PORTFOLIO
    from assurance.governance.portfolio import REPORT, Portfolio, production_history, publish_portfolio

    store = evidence.get()
    history = production_history(store, run_folders(store), policy.get())
    snapshot = Portfolio(model_inventory, findings_ledger, portfolio_kpis, history, datetime.now(UTC))
    written = publish_portfolio(store, snapshot)
    report = f"{store.root.rstrip('/')}/{PORTFOLIO}/{REPORT}"
    return dg.Output(
        {"files": written, "report": report},
        metadata={
            "report": dg.MetadataValue.path(report),
            "kpis": _kpi_table(portfolio_kpis),
        },
    )


portfolio_assets = [findings_ledger, model_inventory, portfolio_kpis, portfolio_report]

assure_portfolio = dg.define_asset_job(
    PORTFOLIO_JOB,
    selection=dg.AssetSelection.groups(GROUP),
    description="Refresh the portfolio: findings ledger, inventory, KPIs and the posture report.",
    tags={"assurance/kind": "portfolio"},
)

portfolio_hourly = dg.ScheduleDefinition(
    name="portfolio_hourly",
    job=assure_portfolio,
    cron_schedule="7 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Keeps the portfolio posture current as versions are assured.",
)
