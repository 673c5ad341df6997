"""The Dagster UI in a real browser (Debian's chromium driven by Playwright) against the running stack.

Screenshots are saved under test-artifacts/ for a human to look at; on failure the page text is saved too.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from urllib.parse import quote

import pytest

from tests.integration.conftest import MODEL
from tests.integration.servers import REPO

pytestmark = pytest.mark.integration
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
