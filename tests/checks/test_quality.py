"""Data quality: planted problems are found on exactly the right columns, healthy data stays quiet."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from assurance.checks import quality
from assurance.checks.quality.findings import escalate
from assurance.checks.quality.learning import value_kind
from assurance.domain.findings import severity_rank
from assurance.domain.values import Dataset, Inputs, Sampling, Section, VersionRecord
from assurance.policy.model import Policy
from tests.support import make_record

SIGNATURE = [
    {"name": "age", "type": "double"},
    {"name": "income", "type": "double"},
    {"name": "segment", "type": "string"},
    {"name": "tenure", "type": "long"},
    {"name": "children", "type": "long"},
    {"name": "score", "type": "double"},
    {"name": "member", "type": "boolean"},
    {"name": "opened", "type": "datetime"},
]


def record(tags: dict[str, str] | None = None, signature: list[dict] | None = SIGNATURE) -> VersionRecord:
    tags = {"assurance.label": "default"} if tags is None else tags
    return make_record(name="lender", version="3", model_tags=tags, run_id=None, signature=signature)


def frame(n: int, seed: int) -> pd.DataFrame:
    """Loan-like rows with every kind of column the suite distinguishes."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(45, 12, n),
            "income": rng.lognormal(10, 0.4, n),
            "segment": rng.choice(["retail", "premium", "student", "rare"], n, p=[0.6, 0.25, 0.14, 0.01]),
            "tenure": rng.integers(0, 400, n),
            "children": rng.integers(0, 5, n),
            "score": rng.uniform(300, 850, n),
            "member": rng.random(n) < 0.3,
            "opened": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 10**8, n), unit="s"),
            "default": rng.integers(0, 2, n),
        }
    )


def run(
    reference: pd.DataFrame | Dataset | None,
    current: pd.DataFrame | Dataset | None,
    rec: VersionRecord | None = None,
    policy: Policy | None = None,
) -> Section:
    def dataset(role: str, data: pd.DataFrame | Dataset | None) -> Dataset | None:
        return Dataset(role, f"/data/{role}.parquet", data) if isinstance(data, pd.DataFrame) else data

    inputs = Inputs(
        record=rec or record(),
        policy=policy or Policy(),
        reference=dataset("reference", reference),
        current=dataset("current", current),
    )
    return quality.run(inputs)


def pairs(section: Section) -> set[tuple[str, str]]:
    return {(f.check, f.subject) for f in section.findings}


def planted_current(reference_seed: int = 2) -> pd.DataFrame:
    """Five problems on five columns; `score`, `member`, `opened` and `children` stay healthy."""
    cur = frame(3000, reference_seed)
    rng = np.random.default_rng(7)
    rows = lambda share: rng.choice(len(cur), int(share * len(cur)), replace=False)  # noqa: E731
    cur.loc[rows(0.20), "age"] = np.nan
    cur.loc[rows(0.10), "income"] = cur["income"].max() * 100
    cur.loc[rows(0.10), "segment"] = "crypto"
    cur.loc[rows(0.05), "tenure"] = np.nan  # stored as float now: missingness, not a type change
    return cur.drop(columns=["member"])


@pytest.fixture(scope="module")
def planted() -> Section:
    return run(frame(3000, 1), planted_current())


def test_planted_problems_are_found_on_exactly_their_columns(planted: Section) -> None:
    assert pairs(planted) == {
        ("quality.missing_values", "age"),
        ("quality.out_of_range", "income"),
        ("quality.unseen_categories", "segment"),
        ("quality.missing_values", "tenure"),
        ("schema.missing_column", "member"),
    }
    assert {f.category for f in planted.findings} == {"data_quality", "schema"}
    assert all(f.evidence == "quality.parquet" for f in planted.findings)
    assert set(f.check for f in planted.findings) <= {c.name for c in quality.CHECKS}


def test_far_exceeded_rates_are_one_severity_worse(planted: Section) -> None:
    by_subject = {f.subject: f for f in planted.findings}
    assert by_subject["age"].severity == "high"  # 20% missing: 10x the 2% tolerance
    assert by_subject["tenure"].severity == "medium"  # 5% missing: 2.5x the tolerance
    assert by_subject["age"].observed == pytest.approx(0.20, abs=0.005)
    assert by_subject["income"].observed == pytest.approx(0.10, abs=0.01)
    assert "crypto" in by_subject["segment"].message
    assert "current" in by_subject["member"].message


def test_evidence_table_has_one_row_per_role_column_expectation(planted: Section) -> None:
    table = planted.tables["quality"]
    assert list(table.columns) == quality.TABLE_COLUMNS
    assert table["success"].dtype == bool and table["observed"].dtype == float
    assert not table.duplicated(["role", "column", "expectation"]).any()
    assert set(table["role"]) == {"reference", "current"}
    reference = table[table["role"] == "reference"]
    assert reference["success"].all()  # a suite learned from reference holds on reference
    failed = table[(table["role"] == "current") & ~table["success"]]
    assert set(zip(failed["column"], failed["expectation"], strict=True)) == {
        ("age", "expect_column_values_to_not_be_null"),
        ("income", "expect_column_values_to_be_between"),
        ("segment", "expect_column_values_to_be_in_set"),
        ("tenure", "expect_column_values_to_not_be_null"),
        ("member", "expect_column_to_exist"),
    }
    assert planted.metrics["expectations_failed_current"] == 5
    assert planted.metrics["rows_reference"] == 3000
    assert planted.summary.startswith("| column | expectation |")
    assert "current: 3,000 rows" in planted.summary


def test_healthy_current_from_another_seed_raises_nothing_at_medium_or_above() -> None:
    section = run(frame(3000, 1), frame(3000, 2))
    serious = [f for f in section.findings if severity_rank(f.severity) <= severity_rank("medium")]
    assert serious == []
    assert "All expectations held" in section.summary


def test_unavailable_current_is_a_finding_and_reference_is_still_checked() -> None:
    broken = Dataset("current", "s3://bucket/current.parquet", error="access denied")
    section = run(frame(500, 1), broken)
    finding = next(f for f in section.findings if f.check == "data.unavailable")
    assert finding.subject == "current" and finding.severity == "high"
    assert "s3://bucket/current.parquet" in finding.message and "access denied" in finding.message
    assert set(section.tables["quality"]["role"]) == {"reference"}
    assert pairs(run(frame(500, 1), None)) == {("data.unavailable", "current")}


def test_missing_label_tag_or_label_column_is_a_finding() -> None:
    untagged = run(frame(300, 1), frame(300, 2), record(tags={}))
    assert ("data.label_missing", "assurance.label") in pairs(untagged)
    wrong = run(frame(300, 1), frame(300, 2), record(tags={"assurance.label": "defaulted"}))
    assert ("data.label_missing", "defaulted") in pairs(wrong)


def test_current_without_labels_is_noted_not_a_finding() -> None:
    section = run(frame(300, 1), frame(300, 2).drop(columns=["default"]))
    assert not any(f.check == "data.label_missing" for f in section.findings)
    assert "no label column 'default'" in section.summary


def test_without_signature_reference_columns_are_expected() -> None:
    section = run(frame(500, 1), frame(500, 2).drop(columns=["score"]), record(signature=None))
    assert pairs(section) == {("schema.missing_column", "score")}
    assert any("no signature" in s for s in section.skipped)
    assert "default" not in set(section.tables["quality"]["column"])  # the label is not a feature


def test_values_of_the_wrong_type_are_one_schema_finding() -> None:
    cur = frame(500, 2)
    cur["score"] = cur["score"].map(lambda v: f"{v:.1f}")
    section = run(frame(500, 1), cur)
    assert pairs(section) == {("schema.type_mismatch", "score")}
    assert "double" in section.findings[0].message and "current" in section.findings[0].message


@pytest.mark.parametrize("backend", ["pyarrow", "numpy_nullable"])
def test_storage_dtypes_are_not_type_changes(backend: str) -> None:
    cur = frame(500, 2)
    cur["opened"] = cur["opened"].dt.tz_localize("UTC")
    cur.loc[:50, "tenure"] = np.nan  # float storage for an integer feature
    section = run(frame(500, 1), cur.convert_dtypes(dtype_backend=backend))
    assert pairs(section) == {("quality.missing_values", "tenure")}


def test_duplicate_rows_beyond_the_reference_share_are_a_finding() -> None:
    cur = frame(500, 2)
    cur = pd.concat([cur, cur.iloc[:100]], ignore_index=True)
    section = run(frame(500, 1), cur)
    assert pairs(section) == {("quality.duplicates", "current")}
    # compared on 500-row samples of each (the reference's size): about 100/600 of them repeat
    assert 0.12 < section.findings[0].observed < 0.21


def test_large_data_is_checked_on_a_seeded_sample() -> None:
    data = copy.deepcopy(Policy().data)
    data["thresholds"]["quality"]["sample_rows"] = 400
    policy = Policy(data)
    first = run(frame(1000, 1), planted_current(), policy=policy)
    again = run(frame(1000, 1), planted_current(), policy=policy)
    assert "seeded sample" in first.summary
    assert first.metrics["rows_current"] == 3000
    assert ("quality.missing_values", "age") in pairs(first)
    pd.testing.assert_frame_equal(first.tables["quality"], again.tables["quality"])


def test_data_read_as_a_sample_says_its_counts_are_the_samples() -> None:
    """Rows and duplicates counted on data sampled to fit the memory budget name the full size."""
    sampling = Sampling(rows_total=90_000, rows_kept=3000, method="Bernoulli per row", seed=0, budget_mb=2)
    current = Dataset("current", "/data/current.csv", planted_current(), sampling=sampling)
    section = run(frame(3000, 1), current)
    assert section.metrics["rows_current"] == 3000 and section.metrics["rows_total_current"] == 90_000
    assert section.metrics["rows_total_reference"] == section.metrics["rows_reference"] == 3000
    assert "current data was read as a seeded uniform sample of 3,000 of 90,000 rows" in section.summary
    assert "reference data was read" not in section.summary
    table = section.tables["quality"]
    details = table[table["expectation"] == "expect_no_duplicate_rows"].set_index("role")["details"]
    assert details["current"].endswith("sampled from 90,000")
    assert "sampled" not in details["reference"]
    duplicated = run(
        frame(3000, 1), Dataset("current", "/c.csv", pd.concat([planted_current()] * 2), sampling=sampling)
    )
    message = next(f.message for f in duplicated.findings if f.check == "quality.duplicates")
    assert "sampled from 90,000" in message


def test_odd_data_becomes_notes_not_crashes() -> None:
    n = 60
    rng = np.random.default_rng(0)
    odd = pd.DataFrame(
        {
            "all_null": [np.nan] * n,
            "mixed": [("a" if i % 3 else i) for i in range(n)],
            "lists": [[i] for i in range(n)],
            "flag": pd.array([True, None, False] * (n // 3), dtype="boolean"),
            "stamp": pd.date_range("2024-01-01", periods=n, tz="Europe/Paris"),
            "kind": pd.Categorical(rng.choice(["x", "y"], n)),
            "text": pd.array(rng.choice(["p", "q"], n), dtype="string"),
        }
    )
    odd[("tuple", "name")] = 1.0
    odd[7] = rng.normal(size=n)
    odd["a.b [c]"] = rng.normal(size=n)
    odd = pd.concat([odd, odd[["mixed"]]], axis=1)  # a repeated column name
    for reference, current in [
        (odd, odd.iloc[::-1]),
        (odd, odd.iloc[0:0]),
        (odd.iloc[0:0], odd),
        (odd, pd.DataFrame()),
    ]:
        section = run(reference, current, record(signature=None))
        assert list(section.tables["quality"].columns) == quality.TABLE_COLUMNS
        assert all(f.check in {c.name for c in quality.CHECKS} for f in section.findings)
    healthy = run(odd, odd.iloc[::-1], record(signature=None))
    assert not [f for f in healthy.findings if f.check != "data.label_missing"]
    assert any("lists" in note for note in healthy.skipped)
    assert any("repeats column names" in note for note in healthy.skipped)
    emptied = run(odd, pd.DataFrame(), record(signature=None))
    assert ("schema.missing_column", "all_null") in pairs(emptied)


def test_escalation_raises_one_level_only_far_beyond_tolerance() -> None:
    assert escalate("medium", excess=0.11, tolerance=0.02, factor=5) == "high"
    assert escalate("medium", excess=0.10, tolerance=0.02, factor=5) == "medium"
    assert escalate("low", excess=1.0, tolerance=0.05, factor=5) == "medium"
    assert escalate("critical", excess=1.0, tolerance=0.05, factor=5) == "critical"
    assert escalate("medium", excess=1.0, tolerance=0.0, factor=5) == "medium"


def test_value_kinds_follow_dtype_and_cardinality() -> None:
    limits = Policy().thresholds.quality
    ids = pd.Series([f"id{i}" for i in range(1000)])
    assert value_kind(pd.Series(np.arange(1000)), limits) == "numeric"
    assert value_kind(pd.Series(np.arange(1000) % 4), limits) == "categorical"
    assert value_kind(pd.Series(np.linspace(0, 1, 1000).round(1)), limits) == "numeric"
    assert value_kind(pd.Series([True, False] * 10), limits) == "categorical"
    assert value_kind(ids, limits) == "other"
    assert value_kind(pd.Series(pd.date_range("2020", periods=10)), limits) == "other"


def test_a_few_values_just_outside_a_small_references_range_are_noise() -> None:
    rng = np.random.default_rng(4)
    quiet = 0
    for seed in range(15):
        rng = np.random.default_rng(seed)
        ref = pd.DataFrame({"x": rng.normal(size=171), "c": rng.choice(list("abcdefghij"), 171)})
        cur = pd.DataFrame({"x": rng.normal(size=171), "c": rng.choice(list("abcdefghij"), 171)})
        section = run(ref, cur, rec=record_without_signature())
        quiet += not [f for f in section.findings if f.check.startswith("quality.")]
    assert quiet == 15
    table = section.tables["quality"]
    current_rates = table[
        (table["role"] == "current") & table["expectation"].str.contains("between|null|in_set")
    ]
    assert current_rates["p_value"].notna().all() and (current_rates["rows"] == 171).all()


@pytest.mark.parametrize("rows", [60, 2_000, 300_000])
def test_a_material_rise_in_missing_or_out_of_range_values_is_found_at_any_size(rows: int) -> None:
    rng = np.random.default_rng(rows)
    ref = pd.DataFrame({"x": rng.normal(size=rows), "y": rng.normal(size=rows)})
    cur = pd.DataFrame({"x": rng.normal(size=rows), "y": rng.normal(size=rows)})
    cur.loc[rng.random(rows) < 0.25, "x"] = np.nan
    outside = rng.permutation(rows) < rows // 5
    cur.loc[outside, "y"] = 9.0 + rng.random(int(outside.sum()))
    section = run(ref, cur, rec=record_without_signature())
    found = {(f.check, f.subject) for f in section.findings if f.check.startswith("quality.")}
    assert found == {("quality.missing_values", "x"), ("quality.out_of_range", "y")}


def test_a_tiny_rise_is_significant_at_large_n_but_not_material() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"x": rng.normal(size=300_000)})
    cur = pd.DataFrame({"x": rng.normal(size=300_000)})
    cur.loc[rng.random(len(cur)) < 0.01, "x"] = np.nan
    section = run(ref, cur, rec=record_without_signature())
    row = section.tables["quality"].query("role == 'current' and expectation.str.contains('null')").iloc[0]
    assert row["q_value"] < 1e-6 and row["success"]
    assert [f for f in section.findings if f.check.startswith("quality.")] == []


def record_without_signature() -> VersionRecord:
    """Features are the reference's columns; no label, so only the data is judged."""
    return record(tags={"assurance.label": ""}, signature=None)
