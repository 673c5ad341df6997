import re
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from assurance.checks import change_control, documentation
from assurance.domain.findings import findings_frame
from assurance.domain.values import Inputs
from assurance.evidence.store import EvidenceStore, new_run_id, parquet_bytes
from assurance.governance.portfolio import (
    PORTFOLIO,
    build_portfolio,
    posture_text,
    publish_portfolio,
    record_from_ref,
    report_html,
)
from assurance.policy.model import Policy
from assurance.policy.recommendation import recommend
from assurance.registry.client import VersionRef
from tests.support import GOOD_CARD, make_record

POLICY = Policy()
T0 = datetime(2025, 1, 1, tzinfo=UTC)
REGISTERED_MS = int((T0 - timedelta(days=2)).timestamp() * 1000)
GOOD_TAGS = {
    "owner": "ana",
    "use_case": "churn outreach",
    "monitoring_url": "https://grafana.example.com/d/1",
}
APPROVAL = {"approval.ticket": "CHG-1", "approval.approved_by": "bo", "approval.approved_at": "2024-12-30"}


def assure(store, record, at):
    """What the per-version graph publishes, for the governance analyses only."""
    sections = [
        documentation.run(Inputs(record, POLICY)),
        change_control.run(Inputs(record, POLICY, store=store)),
    ]
    for s in sections:  # the run's own observation time is `at`, not the wall clock
        if "change_control" in s.tables:
            s.tables["change_control"]["observed_at"] = pd.Timestamp(at)
    frame = findings_frame([f for s in sections for f in s.findings], record, POLICY, now=at)
    files = {f"{k}.parquet": parquet_bytes(t) for s in sections for k, t in s.tables.items()}
    files["findings.parquet"] = parquet_bytes(frame)
    manifest = {"finished_at": at.isoformat(), "recommendation": recommend(frame, POLICY).decision}
    store.publish_run(record.name, record.version, new_run_id(at), files, manifest)


@pytest.fixture
def portfolio_store(tmp_path):
    store = EvidenceStore(str(tmp_path / "evidence"))
    docs = {"model_card.md": GOOD_CARD}
    good_v1 = make_record(
        "churn",
        "1",
        model_tags=GOOD_TAGS,
        version_tags=APPROVAL,
        documents=docs,
        aliases=["production"],
        created_ms=REGISTERED_MS,
    )
    good_v2 = make_record("churn", "2", model_tags=GOOD_TAGS, documents=docs, created_ms=REGISTERED_MS)
    bad = make_record(
        "credit",
        "1",
        model_tags={"owner": "<script>alert(1)</script>", "use_case": "consumer loans"},
        aliases=["champion"],
        documents={},
        created_ms=REGISTERED_MS,
    )
    gone = make_record("legacy", "4", model_tags=GOOD_TAGS, documents=docs)
    assure(store, good_v1, T0)
    assure(store, bad, T0 + timedelta(days=1))
    assure(store, gone, T0)
    # production moves from churn v1 to v2 later: the history keeps v1's time in production
    moved_v1 = make_record(
        "churn", "1", model_tags=GOOD_TAGS, version_tags=APPROVAL, documents=docs, created_ms=REGISTERED_MS
    )
    assure(store, moved_v1, T0 + timedelta(days=3))
    return store, [moved_v1, good_v2, bad]


@pytest.fixture
def portfolio(portfolio_store):
    store, records = portfolio_store
    return build_portfolio(records, store, POLICY, now=T0 + timedelta(days=10))


def inv_row(portfolio, model, version):
    inv = portfolio.inventory
    return inv[(inv["model"] == model) & (inv["version"] == version)].iloc[0]


def test_inventory_lists_registered_and_retired_versions(portfolio):
    inv = portfolio.inventory
    assert list(zip(inv["model"], inv["version"], inv["retired"], strict=True)) == [
        ("churn", "1", False),
        ("churn", "2", False),
        ("credit", "1", False),
        ("legacy", "4", True),
    ]
    credit = inv_row(portfolio, "credit", "1")
    assert (credit["tier"], credit["tier_source"], credit["production"]) == ("high", "rule", True)
    assert credit["recommendation"] == "hold"
    # an owner that is markup, not a name, does not count as one
    assert credit["missing_metadata"] == "owner, monitoring_url"
    assert credit["metadata_completeness"] == pytest.approx(1 / 3)
    assert not credit["documentation_complete"]
    assert credit["open_findings"] >= 3


def test_review_due_from_tier_cadence(portfolio):
    v1 = inv_row(portfolio, "churn", "1")
    assert v1["last_assured"] == pd.Timestamp(T0 + timedelta(days=3))
    assert v1["review_due"] == pd.Timestamp(T0 + timedelta(days=3 + 180))
    assert not v1["review_overdue"] and v1["evidence_complete"]
    never = inv_row(portfolio, "churn", "2")
    assert never["runs"] == 0 and never["review_overdue"] and not never["evidence_complete"]
    assert never["review_due"] == pd.Timestamp(REGISTERED_MS, unit="ms", tz=UTC)


def test_kpis(portfolio):
    k = portfolio.kpis.set_index("kpi")
    assert k.loc["registered_versions", "value"] == 3
    assert k.loc["production_versions", "value"] == 1
    assert (k.loc["assurance_coverage", "numerator"], k.loc["assurance_coverage", "denominator"]) == (2, 3)
    assert k.loc["monitoring_coverage", "value"] == 0.0  # credit is in production without monitoring_url
    assert (
        k.loc["tiering_completeness", "numerator"] == 1
    )  # only credit matched a rule; churn took the default
    assert k.loc["open_findings_critical", "value"] == 1  # credit behind champion without approval
    assert k.loc["overdue_remediation", "numerator"] == 1  # the critical finding's 7-day SLA has passed
    assert k.loc["median_days_to_first_assurance", "value"] == pytest.approx(2.5)
    # the retired version's findings do not count
    assert k.loc["inventory_coverage", "denominator"] == 3


def test_production_alias_history_survives_alias_moves(portfolio):
    hist = portfolio.alias_history
    assert list(zip(hist["model"], hist["alias"], hist["version"], strict=True)) == [
        ("churn", "production", "1"),
        ("credit", "champion", "1"),
    ]
    assert hist.loc[0, "first_observed"] == pd.Timestamp(T0)


def test_report_escapes_user_values(portfolio):
    page = report_html(portfolio)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "inventory_coverage" in page and "Production alias history" in page


def test_report_contents_link_to_every_section(portfolio):
    page = report_html(portfolio)
    anchors = re.findall(r'<section id="([^"]+)">', page)
    assert len(anchors) == 6 and page.count("<details open>") == 6
    assert "kpi-trend" in anchors
    assert re.findall(r'<a href="#([^"]+)">', page) == anchors


def test_posture_text(portfolio):
    text = posture_text(portfolio)
    assert "monitoring_coverage" in text and "0% (0/1)" in text
    assert "credit" in text and "Overdue findings (1)" in text


def test_publish_portfolio_replaces_snapshot(portfolio_store, portfolio):
    store, records = portfolio_store
    written = publish_portfolio(store, portfolio)
    assert f"{PORTFOLIO}/inventory.parquet" in written
    again = publish_portfolio(store, build_portfolio(records[:1], store, POLICY, now=T0 + timedelta(days=10)))
    assert again == written
    inv = pd.read_parquet(f"{store.base}/{PORTFOLIO}/inventory.parquet")
    assert int((~inv["retired"]).sum()) == 1
    assert not [p for p in store.fs.ls(f"{store.base}/{PORTFOLIO}", detail=False) if "staging" in p]


def test_record_from_registry_snapshot():
    ref = VersionRef("m", "3", "READY", {"risk_tier": "low", "owner": "a"}, ("prod",), "r1", REGISTERED_MS)
    record = record_from_ref(ref)
    assert (record.name, record.version, record.aliases, record.tags["owner"]) == ("m", "3", ["prod"], "a")
    store_less = build_portfolio([record], EvidenceStore("memory://empty-portfolio"), POLICY, now=T0)
    row = store_less.inventory.iloc[0]
    assert (row["tier"], row["production"], row["runs"]) == ("low", True, 0)


def test_kpi_history_keeps_one_row_per_portfolio_run_and_shows_the_trend(portfolio_store):
    from assurance.governance.decisions import record_decision
    from assurance.governance.portfolio import KPI_HISTORY, read_kpi_history

    store, records = portfolio_store
    first = build_portfolio(records, store, POLICY, now=T0 + timedelta(days=10))
    assert first.history.empty and "KPI trend" not in posture_text(first)
    publish_portfolio(store, first)
    k = first.kpis.set_index("kpi")
    # the critical finding of credit is open past its 7-day SLA; nothing was resolved yet
    assert (k.loc["sla_adherence", "numerator"], k.loc["sla_adherence", "denominator"]) == (0, 1)
    assert pd.isna(k.loc["median_days_to_decision", "value"])

    record_decision(store, "churn", "1", "approve", "ana", "reviewed", now=T0 + timedelta(days=4))
    second = build_portfolio(records, store, POLICY, now=T0 + timedelta(days=11))
    publish_portfolio(store, second)
    assert second.kpis.set_index("kpi").loc["median_days_to_decision", "value"] == pytest.approx(6.0)
    churn = inv_row(second, "churn", "1")
    assert (churn["decision"], churn["decided_by"]) == ("approve", "ana")

    history = read_kpi_history(store)
    assert len(history) == 2 and len(store.read_folder(KPI_HISTORY)) == 2
    assert list(history["generated_at"]) == [pd.Timestamp(T0 + timedelta(days=d)) for d in (10, 11)]
    assert (
        pd.isna(history.loc[0, "median_days_to_decision"])
        and history.loc[1, "median_days_to_decision"] == 6.0
    )
    page = (store.fs.cat_file(f"{store.base}/{PORTFOLIO}/report.html")).decode()
    assert "KPI trend (last 2 portfolio runs)" in page
    published = pd.read_parquet(f"{store.base}/{PORTFOLIO}/kpi_history.parquet")
    assert len(published) == 2
    text = posture_text(build_portfolio(records, store, POLICY, now=T0 + timedelta(days=12)))
    trend = text.split("KPI trend (last 2 of 2 portfolio runs, oldest first):")[1]
    assert "sla_adherence" in trend and "0%" in trend
    assert [
        line.split()[1:] for line in trend.splitlines() if line.strip().startswith("median_days_to_decision")
    ] == [["n/a", "6.0"]]
