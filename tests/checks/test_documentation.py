import pytest

from assurance.checks.documentation import (
    document_problems,
    empty_sections,
    placeholder_markers,
    run,
    tag_problem,
)
from assurance.domain.values import Inputs
from assurance.policy.model import Policy
from tests.support import GOOD_CARD, make_record

HIGH_TAGS = {
    "owner": "risk-team@example.com",
    "use_case": "credit underwriting",
    "monitoring_url": "https://grafana.example.com/d/credit",
}
DATASHEET = GOOD_CARD.replace("Model card", "Datasheet")

TEMPLATE = """# Model card: <model name>

## Intended use
<!-- Describe who uses the model and for what. -->

## Training data

## Performance
TODO

## Limitations
[Fill in known limitations]
"""


def analyse(record, policy=None):
    return run(Inputs(record=record, policy=policy or Policy()))


def by_check(section):
    return {(f.check, f.subject): f for f in section.findings}


def test_fully_documented_high_tier_version_has_no_findings():
    record = make_record(
        model_tags=HIGH_TAGS, documents={"model_card.md": GOOD_CARD, "datasheet.md": DATASHEET}
    )
    section = analyse(record)
    assert section.findings == []
    assert section.metrics["completeness"] == 1.0
    assert "**high**" in section.summary and "use case" in section.summary


def test_each_gap_is_named():
    record = make_record(
        model_tags={"use_case": "credit underwriting"}, documents={"model_card.md": GOOD_CARD}
    )
    found = by_check(analyse(record))
    assert set(found) == {
        ("documentation.missing_artifact", "datasheet.md"),
        ("documentation.missing_tag", "owner"),
        ("monitoring.missing_tag", "monitoring_url"),
    }
    assert found[("monitoring.missing_tag", "monitoring_url")].category == "monitoring"
    # the high tier's own severity overrides the policy-wide medium for missing documents
    assert found[("documentation.missing_artifact", "datasheet.md")].severity == "high"
    assert found[("documentation.missing_tag", "owner")].severity == "medium"
    assert "datasheet.md" in found[("documentation.missing_artifact", "datasheet.md")].message


def test_template_card_is_a_gap():
    record = make_record(
        model_tags={"owner": "a", "use_case": "churn outreach"}, documents={"model_card.md": TEMPLATE}
    )
    section = analyse(record)
    (finding,) = section.findings
    assert (finding.check, finding.subject) == ("documentation.incomplete_artifact", "model_card.md")
    assert "placeholders" in finding.message and "nothing under them" in finding.message
    table = section.tables["documentation"]
    assert table.loc[table["name"] == "model_card.md", "status"].item() == "incomplete"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("   \n\n", "is empty"),
        ("# Model card\n\n## Overview\n", "is empty"),
        ("# Model card\n\nA scorer.", "has only 2 words"),
        (GOOD_CARD + "\nLorem ipsum dolor sit amet.", "placeholders"),
        (GOOD_CARD + "\nOwner: {{ owner }}", "placeholders"),
        (GOOD_CARD + "\n## Ethical considerations\n", "nothing under them (Ethical considerations)"),
        (GOOD_CARD.replace("0.81", "TBD"), "placeholders (TBD)"),
    ],
)
def test_document_problems(text, expected):
    assert any(expected in p for p in document_problems(text, 40))


def test_real_markup_is_not_a_placeholder():
    text = (
        GOOD_CARD
        + "\n<details><summary>More</summary>See <https://example.com> or <a href='x'>x</a>.</details>\n"
    )
    text += "\n```python\nprint('<not a placeholder> TODO')\n```\nUse `List<String>` here.\n"
    assert placeholder_markers(text) == []
    assert document_problems(text, 40) == []


def test_angle_placeholders_found():
    assert placeholder_markers("Owner: <owner> for <model name>") == ["<owner>", "<model name>"]


def test_parent_heading_with_filled_subsections_is_not_empty():
    assert empty_sections("# Card\n## Use\nScores loans.\n## Data\n") == ["Data"]


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("owner", "ana@example.com", True),
        ("owner", " ", False),
        ("owner", "TBD", False),
        ("owner", "n/a", False),
        ("monitoring_url", "https://grafana.example.com/d/x", True),
        ("monitoring_url", "grafana dashboard", False),
        ("monitoring_url", "javascript:alert(1)", False),
    ],
)
def test_tag_problem(key, value, ok):
    assert (tag_problem(key, value) is None) is ok


def test_invalid_risk_tier_is_a_finding_and_tier_still_derived():
    record = make_record(
        model_tags={"risk_tier": "extreme", "owner": "a", "use_case": "internal research"},
    )
    section = analyse(record)
    found = by_check(section)
    assert ("documentation.invalid_risk_tier", "risk_tier") in found
    assert "**low**" in section.summary
    assert section.tables["documentation"]["tier"].eq("low").all()


def test_no_source_run_says_so():
    record = make_record(model_tags={"owner": "a", "use_case": "churn"}, run_id=None, artifacts=[])
    (finding,) = analyse(record).findings
    assert "no source run" in finding.message


def test_artifact_found_case_insensitively_and_unreadable_counts_as_present():
    record = make_record(model_tags={"owner": "a", "use_case": "churn"}, artifacts=["Model_Card.md"])
    assert analyse(record).findings == []


def test_min_words_comes_from_policy():
    policy = Policy().with_overrides({"thresholds": {"documentation": {"min_words": 500}}})
    record = make_record(
        model_tags={"owner": "a", "use_case": "churn"}, documents={"model_card.md": GOOD_CARD}
    )
    (finding,) = analyse(record, policy).findings
    assert "at least 500" in finding.message
