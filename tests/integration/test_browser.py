"""The Dagster UI in a real browser (Debian's chromium driven by Playwright) against the running stack.

Screenshots are saved under test-artifacts/ for a human to look at; on failure the page text is saved too.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from urllib.parse import quote

import pytest

from tests.integration.conftest import MODEL, wait_run
from tests.integration.servers import REPO

pytestmark = pytest.mark.integration
CHECKS_MODEL = "e2e_drift"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# the per-version graph, upstream of the published evidence
ASSURANCE_ASSETS = [
    "model_version",
    "reference_data",
    "current_data",
    "predictions",
    "data_quality",
    "drift",
    "findings",
    "recommendation",
    "evidence_report",
]


@pytest.fixture
def page(chromium):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})  # tall: the graph is tall
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()


@contextmanager
def saved_on_failure(page, name: str):
    """Keep what the browser showed when an expectation failed: a screenshot and the page text."""
    try:
        yield
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"{name}-failure.png"))
        (ARTIFACTS / f"{name}-failure.txt").write_text(page.inner_text("body"))
        raise


def dismiss_community_popup(page) -> None:
    """The first visit shows a "Join the community" dialog that covers the page."""
    dialog = page.get_by_text(re.compile("join the .*community", re.I))
    try:
        dialog.first.wait_for(state="visible", timeout=5_000)
    except Exception:  # noqa: BLE001 - no pop-up this time
        return
    for name in ("Skip", "Dismiss", "Close", "No thanks", "Not now"):
        button = page.get_by_role("button", name=re.compile(name, re.I))
        if button.count():
            button.first.click()
            break
    else:
        page.keyboard.press("Escape")
    dialog.first.wait_for(state="hidden", timeout=10_000)


def skip_community_popup_whenever_it_shows(page) -> None:
    """On a busy machine the pop-up can open after the page has rendered: Playwright skips it before any action."""
    page.add_locator_handler(
        page.get_by_text(re.compile("join the .*community", re.I)),
        lambda: page.get_by_role("button", name=re.compile("skip", re.I)).click(),
    )


def close_assistant_panel(page) -> None:
    """MLflow's UI opens an assistant side panel that covers part of the run page."""
    close = page.get_by_role("button", name="Close", exact=True)
    if close.count():
        close.first.click()


def test_asset_lineage_and_a_version_materialization_are_shown(registered, validated, page):
    page.goto(
        f"{registered.ui_url}/assets/evidence_report?view=lineage&lineageScope=upstream&lineageDepth=10"
    )
    with saved_on_failure(page, "asset-lineage"):
        dismiss_community_popup(page)
        for name in ASSURANCE_ASSETS:
            page.get_by_text(name, exact=True).first.wait_for(state="visible")
    page.screenshot(path=str(ARTIFACTS / "asset-lineage.png"))

    key = f"{MODEL}/1"
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{registered.ui_url}/assets/evidence_report?view=partitions&partition={quote(key, safe='')}")
    with saved_on_failure(page, "evidence-report-partition"):
        dismiss_community_popup(page)
        page.get_by_text(key).first.wait_for(state="visible")
        page.get_by_text("Latest materialization").wait_for(state="visible")
        page.get_by_text(validated["1"].run_id[:8]).first.wait_for(state="visible")  # the run that made it
        page.get_by_text("recommendation", exact=True).first.wait_for(state="visible")  # its metadata
    page.screenshot(path=str(ARTIFACTS / "evidence-report-partition.png"))


@pytest.fixture(scope="module")
def drift_versions(registered, validated) -> dict[str, str]:
    """A second model: version 1 scores fresh rows of its population, version 2 rows whose `amount` tripled.

    Registered after the first model's runs finished, so the sensor's runs of these two do not compete
    with them. Returns each version's partition key by version.
    """
    from assurance.demo.registry_builder import register_version
    from tests.conftest import FEATURES, LABEL, fit_model, make_frame

    reference = make_frame(1200, 31)
    model = fit_model(reference)
    drifted = make_frame(1200, 33)
    drifted["amount"] *= 3
    for current in (make_frame(1200, 32), drifted):
        register_version(
            CHECKS_MODEL,
            model,
            reference,
            current,
            label=LABEL,
            features=FEATURES,
            data_dir=registered.root / "data",
            tracking_uri=registered.tracking_uri,
            model_tags={"owner": "retention-team", "use_case": "internal churn outreach"},
        )
    keys = {v: f"{CHECKS_MODEL}/{v}" for v in ("1", "2")}
    for key in keys.values():
        wait_run(registered, key, 420, **{"assurance/trigger": "new_version"})
    return keys


def latest_check(instance, asset: str, check: str, partition: str):
    """What the instance stored for one version's check: the UI must show this, not another version's."""
    import dagster as dg
    from dagster._core.event_api import PartitionKeyFilter

    [record] = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(asset), check),
        limit=1,
        partition_filter=PartitionKeyFilter(key=partition),
    )
    return record


def test_each_version_shows_its_own_check_result(registered, drift_versions, page):
    """The drift check's page, per partition: the planted drift fails version 2 and leaves version 1 passing."""
    stored = {
        v: latest_check(registered.instance, "drift", "drift_feature", k) for v, k in drift_versions.items()
    }
    assert [stored[v].evaluation.passed for v in ("1", "2")] == [True, False]  # the planted contrast
    page.set_viewport_size({"width": 1400, "height": 1000})
    skip_community_popup_whenever_it_shows(page)
    page.goto(f"{registered.ui_url}/assets/drift?view=checks&checkDetail=drift_feature")
    with saved_on_failure(page, "check-partitions"):
        page.locator("button[role=tab]", has_text="Partitions").click()
    for version, key in drift_versions.items():
        record = stored[version]
        with saved_on_failure(page, f"check-drift-feature-v{version}"):
            page.get_by_text(key, exact=True).filter(visible=True).last.click()
            latest = page.get_by_text("Latest execution", exact=True)
            panel = page.locator("div").filter(has=latest).filter(has_text=key).last
            panel.get_by_text(record.run_id[:8], exact=True).wait_for(state="visible")  # this version's run
            shown = panel.inner_text()
            assert ("Passed" if record.evaluation.passed else "Failed") in shown.split("\n")
            assert str(record.evaluation.metadata["subjects"].value) in shown
            assert all(other not in shown for other in drift_versions.values() if other != key)
            if record.evaluation.description:
                assert record.evaluation.description[:60] in shown
        page.screenshot(path=str(ARTIFACTS / f"check-drift-feature-v{version}.png"))


def test_the_assurance_run_opens_in_the_mlflow_ui_with_its_metrics_and_report(registered, validated, page):
    """The version's tag names its assurance run; Dagster links the report's copy on that run's page, where
    the metrics logged with their intervals and the report preview are shown."""
    import dagster as dg
    from mlflow import MlflowClient

    stack, key = registered, f"{MODEL}/1"
    client = MlflowClient(stack.tracking_uri, stack.tracking_uri)
    run_id = client.get_model_version(MODEL, "1").tags["assurance.result.mlflow_run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["assurance.version"] == "1"
    run_page = f"{stack.tracking_uri}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
    (record,) = stack.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("evidence_report"), asset_partitions=[key]), limit=1
    ).records
    metadata = record.asset_materialization.metadata
    report_link = f"{run_page}/artifactPath/report.html"
    assert metadata["report"].value == report_link and metadata["mlflow_run"].value == run_page

    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{stack.ui_url}/assets/evidence_report?view=partitions&partition={quote(key, safe='')}")
    with saved_on_failure(page, "evidence-report-links"):
        dismiss_community_popup(page)
        page.locator(f'a[href="{report_link}"]').first.wait_for(state="attached")

    page.goto(run_page)
    with saved_on_failure(page, "mlflow-assurance-run"):
        search = page.get_by_placeholder("Search metrics")
        search.wait_for(state="visible")
        close_assistant_panel(page)
        search.fill("current/roc_auc")
        for name in ("current/roc_auc", "current/roc_auc_ci_low", "current/roc_auc_ci_high"):
            page.get_by_role("cell", name=name, exact=True).wait_for(state="visible")
        page.get_by_text(repr(run.data.metrics["current/roc_auc"]), exact=True).wait_for(state="visible")
        page.get_by_text("evidence_run_id", exact=True).wait_for(state="visible")
    page.screenshot(path=str(ARTIFACTS / "mlflow-assurance-run.png"))

    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}"))
    page.on("response", lambda r: failed.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None)
    page.goto(report_link)
    with saved_on_failure(page, "mlflow-report-artifact"):
        report = page.frame_locator("iframe").first
        report.get_by_text(re.compile(r"^Recommendation: ")).first.wait_for(state="visible")
        report.get_by_text(f"Model assurance report: {MODEL} version 1").wait_for(state="visible")
        page.wait_for_timeout(2000)  # the MLflow UI polls for ever: no idle network to wait for
    page.screenshot(path=str(ARTIFACTS / "mlflow-report-artifact.png"))
    assert failed == [], failed  # nothing the report or its page asked for went missing
    frame = next(f for f in page.frames if f != page.main_frame and f.query_selector("h1"))
    broken = frame.evaluate(
        """() => [
            ...[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => 'img ' + i.alt),
            ...[...document.querySelectorAll('a[href^="#"]')]
                .filter(a => !document.getElementById(decodeURIComponent(a.getAttribute('href').slice(1))))
                .map(a => 'link ' + a.getAttribute('href')),
        ]"""
    )
    assert broken == [], broken  # every plot drawn, every contents link lands on its part
