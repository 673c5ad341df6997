"""The portfolio: model inventory, KPIs and the posture report, from the registry's versions and the evidence.

Everything here is recomputed from scratch: the versions the registry lists now, the published run
folders, the findings ledger and the decision records. A version that has evidence but is gone from the
registry stays in the inventory as `retired`, so its history is never lost from view.

The snapshot tables are replaced at every publication, but each publication also appends its KPIs as one
create-only object of the journal `_portfolio/kpi_history/`, so the trend over portfolio runs is kept
and concurrent publications never lose a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from assurance.checks.change_control import TABLE as ALIAS_TABLE
from assurance.checks.change_control import production_aliases
from assurance.checks.documentation import tag_problem
from assurance.domain.findings import SEVERITIES, severity_rank
from assurance.domain.values import VersionRecord
from assurance.evidence import journal
from assurance.evidence.history import RunFolder, read_table, run_folders, stacked_table
from assurance.evidence.store import PORTFOLIO
from assurance.governance.decisions import latest_decisions, read_decisions
from assurance.governance.ledger import build_ledger
from assurance.policy.model import Policy
from assurance.policy.tiers import decide_tier
from assurance.reporting.render import Images, Part, frame_table, render

if TYPE_CHECKING:
    from assurance.evidence.store import EvidenceStore

INVENTORY_METADATA = ("owner", "use_case")
INVENTORY_COLUMNS = [
    "model",
    "version",
    "status",
    "retired",
    "owner",
    "use_case",
    "tier",
    "tier_source",
    "tier_rationale",
    "aliases",
    "production",
    "registered_at",
    "metadata_completeness",
    "missing_metadata",
    "monitoring_url",
    "runs",
    "first_assured",
    "last_assured",
    "last_run",
    "recommendation",
    "open_findings",
    "overdue_findings",
    "documentation_complete",
    "review_due",
    "review_overdue",
    "evidence_complete",
    "decision",
    "decided_by",
    "decided_at",
    "first_decision_at",
]
KPI_COLUMNS = ["kpi", "value", "unit", "numerator", "denominator", "description"]
ALIAS_HISTORY_COLUMNS = ["model", "alias", "version", "first_observed", "last_observed", "runs"]
FILES = {
    "inventory": "inventory.parquet",
    "ledger": "findings_ledger.parquet",
    "kpis": "kpis.parquet",
    "alias_history": "alias_history.parquet",
    "history": "kpi_history.parquet",
}
REPORT = "report.html"
REPORT_ROWS = 500
KPI_HISTORY = f"{PORTFOLIO}/kpi_history"
# the KPIs whose trend the report and `assurance status` show
HEADLINE_KPIS = [
    "assurance_coverage",
    "evidence_completeness_rate",
    "open_findings_critical",
    "open_findings_high",
    "overdue_remediation",
    "sla_adherence",
    "median_days_to_decision",
]
TREND_RUNS = 12


@dataclass
class Portfolio:
    """The portfolio tables as of `generated_at`."""

    inventory: pd.DataFrame
    ledger: pd.DataFrame
    kpis: pd.DataFrame
    alias_history: pd.DataFrame
    generated_at: datetime
    history: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["generated_at"]))


def record_from_ref(ref: Any) -> VersionRecord:
    """A light VersionRecord from a registry snapshot entry (name, version, status, tags, aliases, run_id,
    created_ms): all the inventory needs, without reading each version's source run."""
    return VersionRecord(
        name=ref.name,
        version=str(ref.version),
        tags=dict(ref.tags),
        model_tags={},
        version_tags={},
        aliases=list(ref.aliases),
        status=str(ref.status),
        source="",
        run_id=ref.run_id,
        model_id=None,
        created_ms=ref.created_ms,
        updated_ms=None,
    )


def metadata_gaps(record: VersionRecord, policy: Policy, tier: str) -> tuple[list[str], int]:
    """Inventory metadata the version lacks (owner, use case and the tier's required tags), and how many are asked."""
    required = list(dict.fromkeys([*INVENTORY_METADATA, *policy.tier_level(tier).required_tags]))
    return [k for k in required if tag_problem(k, record.tags.get(k))], len(required)


def _documentation_complete(store: EvidenceStore, run: RunFolder | None) -> bool | None:
    """Whether the latest run found every required document and tag; None when it did not check."""
    table = (
        read_table(store, run.path, "documentation") if run is not None and run.has("documentation") else None
    )
    return None if table is None else bool((table["status"] == "ok").all())


def _finding_counts(ledger: pd.DataFrame) -> tuple[dict, dict]:
    if ledger.empty:
        return {}, {}
    keys = list(zip(ledger["model"], ledger["version"].astype(str), strict=True))
    opened = ledger.assign(_k=keys)[ledger["status"] == "open"]
    return opened.groupby("_k").size().to_dict(), opened[opened["overdue"]].groupby("_k").size().to_dict()


def _registered_row(record: VersionRecord, policy: Policy, live: set[str]) -> dict:
    decision = decide_tier(record, policy)
    gaps, asked = metadata_gaps(record, policy, decision.tier)
    created = pd.Timestamp(record.created_ms, unit="ms", tz=UTC) if record.created_ms is not None else pd.NaT
    return {
        "model": record.name,
        "version": str(record.version),
        "status": record.status,
        "retired": False,
        "owner": record.tags.get("owner") or None,
        "use_case": record.tags.get("use_case") or None,
        "tier": decision.tier,
        "tier_source": decision.source,
        "tier_rationale": decision.rationale,
        "aliases": ", ".join(sorted(record.aliases)),
        "production": any(a.lower() in live for a in record.aliases),
        "registered_at": created,
        "metadata_completeness": (asked - len(gaps)) / asked if asked else 1.0,
        "missing_metadata": ", ".join(gaps),
        "monitoring_url": tag_problem("monitoring_url", record.tags.get("monitoring_url")) is None,
    }


def _retired_row(model: str, version: str) -> dict:
    return {
        "model": model,
        "version": version,
        "status": "gone from registry",
        "retired": True,
        "production": False,
    }


def _decisions_by_version(store: EvidenceStore) -> dict[tuple[str, str], dict]:
    """Per version, the decision in force (the latest recorded), who made it and when, and the first one's time."""
    decisions = read_decisions(store)
    if decisions.empty:
        return {}
    first = decisions.groupby(["model", "version"])["decided_at"].min()
    return {
        (r.model, r.version): {
            "decision": r.decision,
            "decided_by": r.by,
            "decided_at": r.decided_at,
            "first_decision_at": first[(r.model, r.version)],
        }
        for r in latest_decisions(decisions).itertuples()
    }


def inventory(
    records: list[VersionRecord],
    store: EvidenceStore,
    policy: Policy,
    ledger: pd.DataFrame,
    folders: list[RunFolder],
    now: datetime,
) -> pd.DataFrame:
    """One row per registered version, plus retired versions that only the evidence remembers."""
    live = production_aliases(policy)
    by_version: dict[tuple[str, str], list[RunFolder]] = {}
    for run in folders:
        by_version.setdefault((run.model, run.version), []).append(run)
    rows = [_registered_row(r, policy, live) for r in records]
    registered = {(r["model"], r["version"]) for r in rows}
    rows += [_retired_row(m, v) for m, v in sorted(by_version) if (m, v) not in registered]
    open_counts, overdue_counts = _finding_counts(ledger)
    decided = _decisions_by_version(store)
    now_ts = pd.Timestamp(now)
    for row in rows:
        key = (row["model"], row["version"])
        runs = sorted(by_version.get(key, []), key=lambda r: r.at)
        latest = runs[-1] if runs else None
        cadence = policy.tier_level(row["tier"]).revalidate_days if row.get("tier") else None
        row["runs"] = len(runs)
        row["first_assured"] = runs[0].at if runs else pd.NaT
        row["last_assured"] = latest.at if latest else pd.NaT
        row["last_run"] = latest.path if latest else None
        row["recommendation"] = latest.recommendation if latest else None
        row["open_findings"] = int(open_counts.get(key, 0))
        row["overdue_findings"] = int(overdue_counts.get(key, 0))
        row["documentation_complete"] = _documentation_complete(store, latest)
        # never assured: the review has been due since registration
        due = latest.at + pd.Timedelta(days=cadence or 0) if latest else row.get("registered_at", pd.NaT)
        row["review_due"] = due if cadence is not None and not row["retired"] else pd.NaT
        row["review_overdue"] = bool(not row["retired"] and (latest is None or row["review_due"] < now_ts))
        row["evidence_complete"] = bool(
            latest and not row["review_overdue"] and row["documentation_complete"]
        )
        row.update(decided.get(key, {}))
    frame = pd.DataFrame(rows, columns=INVENTORY_COLUMNS)
    for col in (
        "registered_at",
        "first_assured",
        "last_assured",
        "review_due",
        "decided_at",
        "first_decision_at",
    ):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame.sort_values(["retired", "model", "version"], kind="stable").reset_index(drop=True)


def _ratio(kpi: str, num: int, den: int, description: str) -> dict:
    value = num / den if den else float("nan")
    return {
        "kpi": kpi,
        "value": value,
        "unit": "ratio",
        "numerator": num,
        "denominator": den,
        "description": description,
    }


def _count(kpi: str, value: float, description: str, unit: str = "count") -> dict:
    return {
        "kpi": kpi,
        "value": float(value),
        "unit": unit,
        "numerator": None,
        "denominator": None,
        "description": description,
    }


def _days(start: pd.Series, end: pd.Series) -> pd.Series:
    """Days from `start` to `end`, where both are known."""
    return (
        (pd.to_datetime(end, utc=True) - pd.to_datetime(start, utc=True)).dt.total_seconds() / 86400
    ).dropna()


def kpis(inv: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """Portfolio KPIs over the versions in the registry (retired versions excluded)."""
    current = inv[~inv["retired"].astype(bool)]
    n = len(current)
    prod = current[current["production"].astype(bool)]
    in_scope = set(zip(current["model"], current["version"], strict=True))
    live_ledger = (
        ledger[[k in in_scope for k in zip(ledger["model"], ledger["version"], strict=True)]]
        if len(ledger)
        else ledger
    )
    open_ = live_ledger[live_ledger["status"] == "open"] if len(live_ledger) else live_ledger
    lead_days = _days(current["registered_at"], current["first_assured"])
    decision_days = _days(current["registered_at"], current["first_decision_at"])
    judged = live_ledger["within_sla"].dropna() if len(live_ledger) else pd.Series(dtype=bool)
    rows = [
        _count("registered_versions", n, "Model versions in the registry."),
        _count("production_versions", len(prod), "Versions behind a production alias."),
        _ratio(
            "inventory_coverage",
            int((current["metadata_completeness"] >= 1).sum()),
            n,
            "Versions whose inventory metadata (owner, use case, the tier's required tags) is complete.",
        ),
        _ratio(
            "tiering_completeness",
            int(current["tier_source"].isin(["tag", "rule"]).sum()),
            n,
            "Versions tiered by a valid risk_tier tag or a policy rule (not the fallback default).",
        ),
        _ratio("assurance_coverage", int((current["runs"] > 0).sum()), n, "Versions assured at least once."),
        _ratio(
            "evidence_completeness_rate",
            int(current["evidence_complete"].astype(bool).sum()),
            n,
            "Versions with current evidence: assured within the tier's review cadence, documentation complete.",
        ),
        _ratio(
            "monitoring_coverage",
            int(prod["monitoring_url"].astype(bool).sum()),
            len(prod),
            "Production versions with a monitoring dashboard link (monitoring_url).",
        ),
        *[
            _count(
                f"open_findings_{s}",
                int((open_["severity"] == s).sum()) if len(open_) else 0,
                f"Open {s} findings (accepted risks excluded).",
            )
            for s in SEVERITIES
        ],
        _count(
            "accepted_findings",
            int((live_ledger["status"] == "accepted").sum()) if len(live_ledger) else 0,
            "Findings under an unexpired risk acceptance.",
        ),
        _ratio(
            "overdue_remediation",
            int(open_["overdue"].astype(bool).sum()) if len(open_) else 0,
            len(open_),
            "Open findings past their due date from the policy's SLA.",
        ),
        _count(
            "reviews_overdue",
            int(current["review_overdue"].astype(bool).sum()),
            "Versions never assured or not re-assured within their tier's review cadence.",
        ),
        _count(
            "median_days_to_first_assurance",
            lead_days.median() if len(lead_days) else float("nan"),
            "Median days from registration to the first published assurance run.",
            unit="days",
        ),
        _ratio(
            "sla_adherence",
            int(judged.astype(bool).sum()),
            len(judged),
            "Findings resolved (closed) within their remediation SLA, of those resolved or open past it.",
        ),
        _count(
            "median_days_to_decision",
            decision_days.median() if len(decision_days) else float("nan"),
            "Median days from registration to the first recorded decision (assurance decide).",
            unit="days",
        ),
    ]
    frame = pd.DataFrame(rows, columns=KPI_COLUMNS)
    return frame.astype({"numerator": "Int64", "denominator": "Int64"})


def production_history(store: EvidenceStore, folders: list[RunFolder], policy: Policy) -> pd.DataFrame:
    """Which version each production alias pointed to, over time, from every run's alias record."""
    stacked = stacked_table(store, folders, ALIAS_TABLE)
    if stacked is None or stacked.empty:
        return pd.DataFrame(columns=ALIAS_HISTORY_COLUMNS)
    live = stacked[stacked["alias"].str.lower().isin(production_aliases(policy))]
    grouped = live.groupby(["model", "alias", "version"], as_index=False).agg(
        first_observed=("observed_at", "min"),
        last_observed=("observed_at", "max"),
        runs=("run_id", "nunique"),
    )
    return grouped.sort_values(["model", "alias", "first_observed"]).reset_index(drop=True)[
        ALIAS_HISTORY_COLUMNS
    ]


def build_portfolio(
    records: list[VersionRecord],
    store: EvidenceStore,
    policy: Policy | None = None,
    now: datetime | None = None,
) -> Portfolio:
    """Inventory, ledger, KPIs and production alias history for the registry's versions and the store."""
    policy = policy or Policy()
    now = now or datetime.now(UTC)
    folders = run_folders(store)
    ledger = build_ledger(store, policy, now)
    inv = inventory(records, store, policy, ledger, folders, now)
    history = read_kpi_history(store)
    return Portfolio(inv, ledger, kpis(inv, ledger), production_history(store, folders, policy), now, history)


def kpi_row(kpi_table: pd.DataFrame, generated_at: datetime) -> dict[str, Any]:
    """One portfolio run's KPIs as one history record: when, then each KPI's value (None when undefined)."""
    values = {r.kpi: None if pd.isna(r.value) else float(r.value) for r in kpi_table.itertuples()}
    return {"generated_at": pd.Timestamp(generated_at).tz_convert(UTC).isoformat(), **values}


def read_kpi_history(store: EvidenceStore) -> pd.DataFrame:
    """Every recorded portfolio run's KPIs, one row per run, oldest first (KPIs added later are empty before)."""
    rows = [r for r in journal.read(store, KPI_HISTORY) if "generated_at" in r]
    frame = pd.DataFrame(rows).reindex(
        columns=list(dict.fromkeys(["generated_at", *HEADLINE_KPIS, *(k for r in rows for k in r)]))
    )
    frame["generated_at"] = pd.to_datetime(frame["generated_at"], utc=True)
    return frame.sort_values("generated_at", kind="stable").reset_index(drop=True)


def publish_portfolio(store: EvidenceStore, portfolio: Portfolio) -> list[str]:
    """Replace the `_portfolio/` tables and report with this snapshot, after appending its KPIs to the
    history (the report shows the trend with them); returns the paths of the snapshot written."""
    from assurance.evidence.store import parquet_bytes

    journal.append(store, KPI_HISTORY, [kpi_row(portfolio.kpis, portfolio.generated_at)])
    portfolio = replace(portfolio, history=read_kpi_history(store))
    blobs = {name: parquet_bytes(getattr(portfolio, attr)) for attr, name in FILES.items()}
    blobs[REPORT] = report_html(portfolio).encode()
    for name, data in blobs.items():
        store.replace(f"{PORTFOLIO}/{name}", data)
    return [f"{PORTFOLIO}/{name}" for name in blobs]


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def kpi_value(row: Any) -> str:
    """A KPI as people read it: percent with its fraction, a count, or days."""
    if row.unit == "ratio":
        if row.denominator in (0, None) or pd.isna(row.denominator):
            return "n/a (none in scope)"
        return f"{row.value:.0%} ({row.numerator}/{row.denominator})"
    if row.unit == "days":
        return "n/a" if pd.isna(row.value) else f"{row.value:.1f} days"
    return f"{int(row.value)}"


def open_findings(ledger: pd.DataFrame) -> pd.DataFrame:
    """Open and accepted findings, overdue and most severe first."""
    if ledger.empty:
        return ledger
    live = ledger[ledger["status"] != "closed"]
    return (
        live.assign(_rank=live["severity"].map(severity_rank))
        .sort_values(["overdue", "_rank", "due"], ascending=[False, True, True])
        .drop(columns="_rank")
    )


def _trend_value(value: object, unit: str) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    if unit == "ratio":
        return f"{value:.0%}"
    return f"{value:.1f}" if unit == "days" else f"{int(value)}"


def kpi_trend(portfolio: Portfolio, runs: int = TREND_RUNS) -> pd.DataFrame:
    """The headline KPIs of the last `runs` portfolio runs, oldest first, as people read them: one row per
    run (`generated_at`, then one column per KPI)."""
    history = portfolio.history.tail(runs)
    units = dict(zip(portfolio.kpis["kpi"], portfolio.kpis["unit"], strict=True))
    shown = [k for k in HEADLINE_KPIS if k in history.columns]
    out = pd.DataFrame({"generated_at": history["generated_at"].map(_text)})
    for kpi in shown:
        out[kpi] = [_trend_value(v, units.get(kpi, "count")) for v in history[kpi]]
    return out.reset_index(drop=True)


def report_html(portfolio: Portfolio) -> str:
    """The posture report: KPIs, production versions, inventory, open findings, production alias history.
    Every value is HTML-escaped: tags, names and messages come from users."""
    inv, kp = portfolio.inventory, portfolio.kpis
    kpi_rows = pd.DataFrame(
        {"kpi": kp["kpi"], "value": [kpi_value(r) for r in kp.itertuples()], "meaning": kp["description"]}
    )
    prod = inv[inv["production"].astype(bool)]
    findings = open_findings(portfolio.ledger)
    version_cols = [
        "model",
        "version",
        "tier",
        "aliases",
        "owner",
        "recommendation",
        "open_findings",
        "overdue_findings",
        "decision",
        "decided_by",
        "last_assured",
        "review_due",
        "review_overdue",
    ]
    inventory_cols = [
        "model",
        "version",
        "status",
        "retired",
        "owner",
        "tier",
        "tier_rationale",
        "aliases",
        "metadata_completeness",
        "missing_metadata",
        "runs",
        "last_assured",
        "recommendation",
        "decision",
        "decided_at",
        "documentation_complete",
        "evidence_complete",
        "review_due",
    ]
    finding_cols = [
        "severity",
        "status",
        "model",
        "version",
        "category",
        "subject",
        "message",
        "first_seen",
        "due",
        "overdue",
        "accepted_by",
        "accepted_until",
        "assignee",
        "plan",
        "note",
        "finding_id",
    ]
    trend = kpi_trend(portfolio)
    parts = [
        Part("kpis", "KPIs", table=frame_table(kpi_rows, ["kpi", "value", "meaning"], _text, REPORT_ROWS)),
        Part(
            "kpi-trend",
            f"KPI trend (last {len(trend)} portfolio runs)",
            table=frame_table(trend, list(trend.columns), _text, REPORT_ROWS),
        ),
        Part("production", "Production versions", table=frame_table(prod, version_cols, _text, REPORT_ROWS)),
        Part("open-findings", "Open findings", table=frame_table(findings, finding_cols, _text, REPORT_ROWS)),
        Part("inventory", "Inventory", table=frame_table(inv, inventory_cols, _text, REPORT_ROWS)),
        Part(
            "alias-history",
            "Production alias history",
            table=frame_table(portfolio.alias_history, ALIAS_HISTORY_COLUMNS, _text, REPORT_ROWS),
        ),
    ]
    return render(
        "portfolio_report.html.j2",
        title="Model risk posture",
        generated_at=_text(pd.Timestamp(portfolio.generated_at)),
        toc=parts,
        parts=parts,
        images=Images(),
    )


def posture_text(portfolio: Portfolio, max_rows: int = 50) -> str:
    """The posture for a terminal: KPIs, every current version's standing, and overdue findings."""
    inv, kp = portfolio.inventory, portfolio.kpis
    current = inv[~inv["retired"].astype(bool)]
    lines = [f"Model risk posture at {_text(pd.Timestamp(portfolio.generated_at))} UTC", ""]
    width = max(len(k) for k in kp["kpi"])
    lines += [f"  {r.kpi:<{width}}  {kpi_value(r)}" for r in kp.itertuples()]
    cols = [
        "model",
        "version",
        "tier",
        "aliases",
        "recommendation",
        "open_findings",
        "overdue_findings",
        "review_due",
    ]
    shown = current[cols].head(max_rows).map(_text)
    lines += ["", "Versions:", shown.to_string(index=False) if len(shown) else "  (none registered)"]
    if len(current) > max_rows:
        lines.append(f"  ... and {len(current) - max_rows} more (see {PORTFOLIO}/{FILES['inventory']})")
    lines += _trend_lines(portfolio)
    findings = open_findings(portfolio.ledger)
    overdue = findings[findings["overdue"].astype(bool)] if len(findings) else findings
    if len(overdue):
        cols = ["finding_id", "severity", "model", "version", "subject", "due", "assignee"]
        lines += [
            "",
            f"Overdue findings ({len(overdue)}):",
            overdue[cols].head(max_rows).map(_text).to_string(index=False),
        ]
    return "\n".join(lines) + "\n"


def _trend_lines(portfolio: Portfolio, runs: int = 5) -> list[str]:
    """The headline KPIs over the last portfolio runs, one line per KPI; nothing before there are two runs."""
    trend = kpi_trend(portfolio, runs)
    if len(trend) < 2:
        return []
    table = trend.set_index("generated_at").T
    total = len(portfolio.history)
    lines = table.to_string().splitlines()
    return [
        "",
        f"KPI trend (last {len(trend)} of {total} portfolio runs, oldest first):",
        *(f"  {x}" for x in lines),
    ]
