import pandas as pd
import pytest

from assurance.domain.findings import COLUMNS, Finding, counts_by_severity, finding_id, findings_frame
from assurance.domain.values import VersionRecord
from assurance.policy.model import Policy
from assurance.policy.recommendation import recommend
from tests.support import make_record


def record(**tags) -> VersionRecord:
    return make_record(name="m", version="3", model_tags=tags)


def test_finding_id_is_stable_and_specific():
    assert finding_id("m", "c", "s") == finding_id("m", "c", "s")
    assert len({finding_id("m", "c", "s"), finding_id("m", "c", "t"), finding_id("n", "c", "s")}) == 3


def test_unknown_category_or_severity_is_rejected():
    with pytest.raises(ValueError):
        Finding("nonsense", "c", "s", "high", "m")
    with pytest.raises(ValueError):
        Finding("drift", "c", "s", "urgent", "m")


def test_frame_has_schema_owner_due_and_worst_first():
    fs = [
        Finding("drift", "drift.feature", "x", "low", "small drift", 0.11, 0.1),
        Finding("schema", "schema.missing_column", "y", "critical", "gone"),
    ]
    frame = findings_frame(fs, record(owner="ana"), Policy.load())
    assert list(frame.columns) == COLUMNS
    assert frame["severity"].tolist() == ["critical", "low"]
    assert (frame["owner"] == "ana").all()
    assert frame.loc[0, "due"] < frame.loc[1, "due"]
    assert frame.loc[1, "observed"] == "0.11"


@pytest.mark.parametrize(
    "severities,decision",
    [
        ([], "approve"),
        (["low"], "approve"),
        (["medium", "low"], "approve_with_conditions"),
        (["high", "medium"], "hold"),
    ],
)
def test_recommendation_rule(severities, decision):
    fs = [Finding("drift", "drift.feature", f"c{i}", s, f"msg {i}") for i, s in enumerate(severities)]
    rec = recommend(findings_frame(fs, record(), Policy.load()), Policy.load())
    assert rec.decision == decision
    assert rec.reasons


def test_accepted_findings_do_not_count():
    frame = findings_frame([Finding("drift", "drift.feature", "x", "high", "m")], record(), Policy.load())
    frame["status"] = "accepted"
    assert counts_by_severity(frame)["high"] == 0
    assert recommend(frame, Policy.load()).decision == "approve"


def test_empty_frame_counts():
    assert counts_by_severity(pd.DataFrame(columns=COLUMNS)) == dict.fromkeys(
        counts_by_severity(pd.DataFrame(columns=COLUMNS)), 0
    )


def test_reasons_group_one_kind_of_problem():
    fs = [
        Finding("performance", "performance.degradation", m, "high", f"{m} dropped")
        for m in ("auc", "f1", "brier")
    ]
    fs.append(Finding("schema", "schema.missing_column", "x", "high", "x is gone"))
    rec = recommend(findings_frame(fs, record(), Policy.load()), Policy.load())
    assert rec.decision == "hold" and len(rec.reasons) == 2
    grouped = next(r for r in rec.reasons if "performance.degradation" in r)
    assert grouped.startswith("high: 3 performance.degradation findings") and all(
        m in grouped for m in ("auc", "f1", "brier")
    )
    assert "high: x is gone" in rec.reasons
