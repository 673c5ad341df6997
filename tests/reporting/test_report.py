from assurance.domain.findings import Finding, findings_frame
from assurance.domain.values import Section
from assurance.policy.model import Policy
from assurance.policy.recommendation import recommend
from assurance.reporting.html import to_html
from assurance.reporting.markdown import without_images
from assurance.reporting.version_report import render_html, render_markdown
from tests.support import make_record

EVIL = "<script>alert(1)</script>"


def test_user_values_are_escaped_everywhere():
    rec_ = make_record(name=f"m{EVIL}", model_tags={"owner": EVIL, "use_case": "a|b"}, aliases=[EVIL])
    findings = findings_frame(
        [Finding("documentation", "doc.x", EVIL, "high", f"missing {EVIL}")], rec_, Policy.load()
    )
    rec = recommend(findings, Policy.load())
    section = Section("s", "Section", summary=f"| col | v |\n|---|---|\n| {EVIL} | 1 |\n\n- {EVIL}")
    md = render_markdown(rec_, rec, findings, [section], {"data": {}})
    page = render_html(md, rec, {}, rec_.name)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_decision_comes_first_and_plots_are_inline():
    rec_ = make_record(name="m")
    findings = findings_frame(
        [Finding("drift", "drift.feature", "x", "medium", "x drifted")], rec_, Policy.load()
    )
    rec = recommend(findings, Policy.load())
    section = Section("drift", "Drift", summary="Drift summary.", plots={"bars": b"\x89PNGdata"})
    md = render_markdown(rec_, rec, findings, [section], {"data": {}})
    assert (
        md.index("Recommendation: Approve with conditions")
        < md.index("## Drift")
        < md.index("## All findings")
    )
    page = render_html(md, rec, section.plots, "t")
    assert "data:image/png;base64," in page


def test_markdown_tables_keep_escaped_pipes_in_cells():
    page = to_html("| a | b |\n|---|---|\n| x \\| y | 2 |")
    assert "<td>x | y</td>" in page


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
