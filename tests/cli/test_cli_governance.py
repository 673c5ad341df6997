"""Governance end to end: a real registry, the per-version graph in process, and the CLI subcommands."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assurance.cli.main import main
from assurance.evidence.store import EvidenceStore
from assurance.governance.ledger import build_ledger
from assurance.settings import Settings
from tests.support import FEATURES, GOOD_CARD, LABEL, classifier, make_frame

MODEL = "gov_check"
OWNER_TAGS = {"owner": "retention-team", "use_case": "churn outreach emails"}


@pytest.fixture(scope="module")
def governed(tmp_path_factory):
    """Version 1 documented and approved behind `champion`; version 2 behind `production` with neither."""
    from assurance.cli.launcher import run_version
    from assurance.demo.registry_builder import embedded_tracking_uri, register_version

    root = tmp_path_factory.mktemp("governance")
    uri = embedded_tracking_uri(root)
    evidence = str(root / "evidence")
    training = make_frame(2000, 0)
    model = classifier().fit(training[FEATURES], training[LABEL])
    reference = make_frame(2000, 1)  # a holdout, so reference performance is not in-sample
    common = {"label": LABEL, "features": FEATURES, "data_dir": root / "data", "tracking_uri": uri}
    approval = {
        "approval.ticket": "CHG-42",
        "approval.approved_by": "model-risk-lead",
        "approval.approved_at": datetime.now(UTC).date().isoformat(),
    }
    good = register_version(
        MODEL,
        model,
        reference,
        make_frame(2000, 2),
        model_tags=OWNER_TAGS,
        version_tags=approval,
        aliases=["champion"],
        documents={"model_card.md": GOOD_CARD},
        **common,
    )
    bare = register_version(MODEL, model, reference, make_frame(2000, 3), aliases=["production"], **common)
    settings = Settings(tracking_uri=uri, evidence_root=evidence)
    instance = dg.DagsterInstance.ephemeral()
    outcomes = {v: run_version(MODEL, v, settings, instance) for v in (good, bare)}
    return {
        "uri": uri,
        "evidence": evidence,
        "settings": settings,
        "good": good,
        "bare": bare,
        "outcomes": outcomes,
        "instance": instance,
    }


@pytest.fixture
def env(governed, monkeypatch):
    """Commands get the registry and evidence root from their options; no Dagster home leaks in."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return governed


def test_production_without_card_or_approval_holds(env):
    outcome = env["outcomes"][env["bare"]]
    assert outcome.success, outcome.error
    frame = outcome.findings
    found = set(zip(frame["category"], frame["subject"], strict=True))
    assert ("documentation", "model_card.md") in found
    assert ("change_control", "approval") in found
    assert outcome.summary["recommendation"] == "hold"


def test_documented_approved_healthy_version_approves(env):
    outcome = env["outcomes"][env["good"]]
    assert outcome.success, outcome.error
    frame = outcome.findings
    assert not frame["category"].isin(["documentation", "change_control"]).any(), frame[["check", "message"]]
    assert outcome.summary["recommendation"] == "approve", outcome.summary["reasons"]


def test_accepted_finding_stops_holding_and_ids_stay_stable(env, capsys):
    from assurance.cli.launcher import run_version

    first = env["outcomes"][env["bare"]].findings
    critical = first[first["category"] == "change_control"]["finding_id"].item()
    expires = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    assert (
        main(
            [
                "accept",
                critical,
                "--reason",
                "approval in progress, CHG-43",
                "--expires",
                expires,
                "--by",
                "cro",
                "--evidence",
                env["evidence"],
            ]
        )
        == 0
    )
    assert f"Accepted {critical} for {MODEL} version {env['bare']}" in capsys.readouterr().out

    again = run_version(MODEL, env["bare"], env["settings"], env["instance"])
    assert again.success, again.error
    frame = again.findings.set_index("finding_id")
    assert sorted(frame.index) == sorted(first["finding_id"])
    assert frame.loc[critical, "status"] == "accepted"
    assert frame.loc[critical, "first_seen"] == first.set_index("finding_id").loc[critical, "first_seen"]
    assert again.summary["recommendation"] != "hold", again.summary["reasons"]

    ledger = build_ledger(EvidenceStore(env["evidence"]))
    mine = ledger[(ledger["model"] == MODEL) & (ledger["version"] == env["bare"])]
    assert mine["finding_id"].is_unique and set(mine["runs_seen"]) == {2}
    assert mine.set_index("finding_id").loc[critical, "status"] == "accepted"


def test_accept_rejects_unknown_ids(env, capsys):
    assert (
        main(
            [
                "accept",
                "feedfacefeedface",
                "--reason",
                "x",
                "--expires",
                "2999-01-01",
                "--evidence",
                env["evidence"],
            ]
        )
        == 2
    )
    assert "unknown finding id" in capsys.readouterr().err


def test_export_then_verify(env, tmp_path, capsys):
    args = ["export", MODEL, env["good"], "--evidence", env["evidence"], "--out", str(tmp_path)]
    assert main(args) == 0
    bundle = Path(capsys.readouterr().out.strip())
    assert bundle.parent == tmp_path and bundle.suffix == ".zip"
    assert main([*args, "--pdf"]) == 0
    printed = [Path(line) for line in capsys.readouterr().out.split()]
    assert printed == [bundle, bundle.with_suffix(".pdf")]
    store = EvidenceStore(env["evidence"])
    stored = store.read_bytes(f"{store.latest_run_path(MODEL, env['good'])}/report.pdf")
    assert printed[1].read_bytes() == stored and stored.startswith(b"%PDF-")
    assert main(["verify", str(bundle)]) == 0
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    bundle.write_bytes(bytes(data))
    assert main(["verify", str(bundle)]) == 1
    assert "problem" in capsys.readouterr().err
    assert main(["export", MODEL, "99", "--evidence", env["evidence"]]) == 2


def test_status_prints_posture_and_publishes(env, capsys):
    assert main(["status", "--tracking-uri", env["uri"], "--evidence", env["evidence"], "--publish"]) == 0
    out = capsys.readouterr().out
    assert "inventory_coverage" in out and "monitoring_coverage" in out and MODEL in out
    assert (Path(env["evidence"]) / "_portfolio" / "report.html").exists()


def test_portfolio_assets_materialize_and_publish(env):
    from assets.portfolio import portfolio_assets
    from resources import build_resources

    result = dg.materialize(
        portfolio_assets, resources=build_resources(env["settings"]), instance=env["instance"]
    )
    assert result.success
    inventory = result.output_for_node("model_inventory")
    assert set(inventory["version"]) == {env["good"], env["bare"]}
    assert inventory.set_index("version").loc[env["bare"], "production"]
    [shown] = result.asset_materializations_for_node("model_inventory")
    preview = shown.metadata["preview"]  # a typed table the UI renders, not markdown text
    assert isinstance(preview, dg.TableMetadataValue)
    assert {r.data["version"] for r in preview.records} == {env["good"], env["bare"]}
    assert {c.name: c.type for c in preview.schema.columns}["open_findings"] == "int"
    kpis = result.output_for_node("portfolio_kpis").set_index("kpi")
    assert kpis.loc["production_versions", "value"] == 2
    report = Path(result.output_for_node("portfolio_report")["report"])
    assert report.exists() and "Model risk posture" in report.read_text()
