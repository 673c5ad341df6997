"""Data quality: a Great Expectations suite learned from the reference data, run on reference and current.

The reference data is what the model learned from, so it defines what "normal" looks like: which
columns exist and with which types (from the model signature when there is one), how often each
feature is missing, the numeric ranges and the known categories. Each of those becomes a GX
expectation whose `mostly` encodes the policy's tolerance; the suite then runs on both datasets,
every result lands in `quality.parquet`, and what fails on current becomes a finding when a noise test
also says values of one population would rarely show such a rate at these sizes (Benjamini-Hochberg
over the run's tests): 4 of 171 values just outside a 171-row reference's range is chance, not drift.
"""

from __future__ import annotations

from assurance.checks.quality.expectations import CHECKS, ROLES
from assurance.checks.quality.findings import (
    availability_findings,
    check_label,
    judge_rates,
    rate_findings,
    schema_findings,
)
from assurance.checks.quality.learning import learn_expectations
from assurance.checks.quality.schema import clean_columns, expected_schema, normalise, schema_expectations
from assurance.checks.quality.summary import TABLE_COLUMNS, quality_metrics, results_table, summary
from assurance.checks.quality.validation import duplicate_results, evaluate
from assurance.checks.rows import sample
from assurance.domain.values import Inputs, Section

__all__ = ["CHECKS", "TABLE_COLUMNS", "run"]


def run(inputs: Inputs) -> Section:
    """Learn the suite from reference, run it on both datasets and turn what fails into findings."""
    section = Section("data_quality", "Data quality")
    policy, record = inputs.policy, inputs.record
    limits = policy.thresholds.quality
    section.findings += availability_findings(inputs, policy)
    datasets = {role: inputs.dataset(role) for role in ROLES}
    frames = {role: ds.frame for role, ds in datasets.items() if ds is not None and ds.ok}
    samplings = {role: ds.sampling for role, ds in datasets.items() if ds is not None and ds.sampling}
    label_findings, label = check_label(record, frames.get("reference"), policy)
    section.findings += label_findings

    cleaned = {role: clean_columns(role, frame, section) for role, frame in frames.items()}
    schema = expected_schema(record, cleaned.get("reference"), label, section)
    duplicates = duplicate_results(cleaned, limits, section, samplings)
    sampled = {role: sample(frame, limits.sample_rows) for role, frame in cleaned.items()}
    working = {role: normalise(frame, schema) for role, frame in sampled.items()}

    expectations = schema_expectations(schema, section)
    if "reference" in working:
        expectations += learn_expectations(
            working["reference"], [c for c in schema if c in working["reference"]], limits, section
        )
    else:
        section.skip("Missingness, range and category checks need reference data to learn from; none ran.")
    results = [r for role, frame in working.items() for r in evaluate(role, frame, expectations, section)]
    results = judge_rates([*results, *duplicates], limits.alpha)

    section.findings += schema_findings(results, policy, bool(record.signature_inputs))
    section.findings += rate_findings(results, policy, limits)
    table = results_table(results)
    section.tables = {"quality": table}
    section.metrics = quality_metrics(frames, table, samplings)
    section.summary = summary(table, frames, limits, label, samplings)
    return section
