"""The version report: Markdown structure renders, user text stays inert, contents, plots, PDF and trend."""

from __future__ import annotations

import io
from html.parser import HTMLParser

import pandas as pd
import pytest
from pypdf import PdfReader

from assurance.checks import performance
from assurance.checks.drift import TABLE_COLUMNS as DRIFT_COLUMNS
from assurance.domain.findings import Finding, findings_frame
from assurance.domain.values import Section
from assurance.evidence.publication import evidence_files
from assurance.evidence.store import EvidenceStore, new_run_id
from assurance.policy.model import Policy
from assurance.policy.recommendation import recommend
from assurance.reporting import version_report
from assurance.reporting.markdown import without_images
from assurance.reporting.pdf import to_pdf
from assurance.reporting.render import markdown
from assurance.reporting.trend import metric_history
from tests.support import make_record

EVIL = "<script>alert(1)</script>"
EVIL_IMG = "<img src=x onerror=alert(1)>"
RICH = f"""Read the [runbook](https://example.com/runbook) first; a [bad link](javascript:alert(1)) stays text.

1. first *step* with `inline code`
2. second **step**

- bullet {EVIL}
- bullet {EVIL_IMG}

```
pip install model-assurance
```

| column | value |
|---|---|
| {EVIL} | 1 |
"""


class Elements(HTMLParser):
    """Every element of a page as (tag, attributes), and the text inside each `nav` and `script`."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if tag == name]

    def names(self) -> set[str]:
        return {tag for tag, _ in self.elements}


def report(sections: list[Section], record=None, earlier: pd.DataFrame | None = None, run_id: str = "r1"):
    record = record or make_record(name="m")
    policy = Policy.load()
    findings = findings_frame([Finding("drift", "drift.feature", "x", "medium", "x drifted")], record, policy)
    rec = recommend(findings, policy)
    prov = {"run_id": run_id, "data": {}, "finished_at": pd.Timestamp.now("UTC").isoformat()}
    return version_report.build(record, rec, findings, sections, prov, earlier)


def test_markdown_structure_renders_and_user_text_is_inert():
    record = make_record(name=f"m{EVIL}", model_tags={"owner": EVIL_IMG, "use_case": "a|b"}, aliases=[EVIL])
    built = report([Section("s", "Section", summary=RICH)], record)
    page = version_report.to_html(built)
    parsed = Elements(page)
    assert {
        "ol",
        "ul",
        "li",
        "em",
        "strong",
        "code",
        "pre",
        "table",
        "th",
        "td",
        "details",
        "nav",
    } <= parsed.names()
    hrefs = [a.get("href") for a in parsed.tags("a")]
    assert "https://example.com/runbook" in hrefs
    assert "script" not in parsed.names()
    assert not [attrs for _, attrs in parsed.elements if "onerror" in attrs]
    assert not [h for h in hrefs if h and h.strip().lower().startswith("javascript:")]
    assert [i["src"] for i in parsed.tags("img") if not i["src"].startswith("data:image/png;base64,")] == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "[bad link](javascript:alert(1))" in page  # refused as a link, shown as the text it is


def test_contents_link_to_every_section_and_sections_collapse():
    sections = [Section("drift", "Drift", summary="d"), Section("slices", "Slice performance", summary="s")]
    parsed = Elements(version_report.to_html(report(sections)))
    anchors = {s["id"] for s in parsed.tags("section")}
    toc = {a["href"] for a in parsed.tags("a") if a.get("href", "").startswith("#")}
    assert {"recommendation", "section-drift", "section-slices", "trend", "all-findings"} <= anchors
    assert toc == {f"#{a}" for a in anchors}
    assert len(parsed.tags("details")) == len(anchors) - 1  # every part but the decision collapses


def test_decision_comes_first_and_plots_are_inline():
    section = Section("drift", "Drift", summary="Drift summary.", plots={"bars": b"\x89PNGdata"})
    built = report([section])
    md = version_report.to_markdown(built)
    assert (
        md.index("Recommendation: Approve with conditions")
        < md.index("## Drift")
        < md.index("## All findings")
    )
    assert "![bars](plots/bars.png)" in md
    page = version_report.to_html(built)
    assert page.index("Recommendation") < page.index("Drift summary.")
    assert [i["src"] for i in Elements(page).tags("img")] == ["data:image/png;base64,iVBOR2RhdGE="]


def test_markdown_tables_keep_escaped_pipes_in_cells():
    assert "<td>x | y</td>" in markdown("| a | b |\n|---|---|\n| x \\| y | 2 |")


def test_pdf_holds_the_decision_findings_and_plots(tmp_path):
    from assurance.reporting import plots

    png = plots.bars(["a", "b"], [1, 2], "counts")
    built = report(
        [Section("s", "Section", summary=RICH + "\n\n![counts](plots/counts.png)", plots={"counts": png})]
    )
    pdf = to_pdf(version_report.to_markdown(built), built.plots, built.title)
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert len(reader.pages) >= 1 and reader.metadata.title == built.title
    assert "Recommendation: Approve with conditions" in text and "x drifted" in text
    assert "pip install model-assurance" in text and EVIL in text  # hostile text printed as text
    assert sum(len(p.images) for p in reader.pages) == 1


def _run_tables(auc: float, drifted: bool) -> list[Section]:
    perf = pd.DataFrame(
        [("current", "roc_auc", auc, auc - 0.02, auc + 0.02, 500, False)], columns=performance.TABLE_COLUMNS
    )
    drift = pd.DataFrame(
        [{**dict.fromkeys(DRIFT_COLUMNS, ""), "role": "feature", "column": "x", "drifted": drifted}]
    )
    return [
        Section("performance", "Performance", tables={"performance": perf}),
        Section("drift", "Drift", tables={"drift": drift}),
    ]


def test_trend_chart_appears_from_the_second_run(tmp_path):
    store = EvidenceStore(str(tmp_path / "evidence"))
    record = make_record(name="m", version="3")
    first = report(_run_tables(0.81, False), record)
    assert "there is no trend yet" in version_report.to_markdown(first) and "trend" not in first.plots

    earlier_sections = _run_tables(0.81, False)
    rec = recommend(findings_frame([], record, Policy.load()), Policy.load())
    files = evidence_files(
        record, earlier_sections, findings_frame([], record, Policy.load()), rec, {"data": {}, "run_id": "a"}
    )
    store.publish_run("m", "3", new_run_id(), files, {"finished_at": "2025-01-01T00:00:00+00:00"})
    earlier = metric_history(store, "m", "3")
    assert set(earlier["metric"]) == {"open findings", "drifted feature share", "roc_auc on current data"}

    second = report(_run_tables(0.70, True), record, earlier, run_id="b")
    md = version_report.to_markdown(second)
    assert (
        "![Headline metrics across runs](plots/trend.png)" in md
        and "| roc_auc on current data | 0.81 | 0.7 |" in md
    )
    assert second.plots["trend"].startswith(b"\x89PNG")
    page = version_report.to_html(second)
    assert 'alt="Headline metrics across runs"' in page


@pytest.mark.parametrize("hostile", [EVIL, EVIL_IMG, "javascript:alert(1)", "[x](javascript:alert(1))"])
def test_monitoring_url_is_a_link_only_when_it_is_an_http_url(hostile):
    page = version_report.to_html(report([], make_record(name="m", model_tags={"monitoring_url": hostile})))
    parsed = Elements(page)
    assert not [a for a in parsed.tags("a") if "javascript" in a["href"].lower() or "<" in a["href"]]
    assert "script" not in parsed.names() and not [a for _, a in parsed.elements if "onerror" in a]
    good = "https://grafana.example.com/d/1?x=1&y=2"
    parsed = Elements(
        version_report.to_html(report([], make_record(name="m", model_tags={"monitoring_url": good})))
    )
    assert good in [a["href"] for a in parsed.tags("a")]


def test_summaries_shown_outside_the_report_name_their_plots_instead_of_linking_them():
    summary = (
        "Two columns drifted.\n\n![drift_by_feature](plots/drift_by_feature.png)\n\n| a | b |\n|---|---|"
    )
    shown = without_images(summary)
    assert "](plots/" not in shown
    assert "`drift_by_feature` is in the evidence report" in shown
    assert shown.startswith("Two columns drifted.") and shown.endswith("| a | b |\n|---|---|")
    assert without_images("[a link](https://example.org)") == "[a link](https://example.org)"
    assert without_images("![a `b`](plots/x.png)") == "(plot `a b` is in the evidence report)"
