"""Findings: data that could not be had, a missing label, schema breaks and rates beyond tolerance and noise."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import pandas as pd

from assurance.checks import significance
from assurance.checks.quality.expectations import (
    DUPLICATE_ROWS,
    EVIDENCE,
    LABEL_MISSING,
    MISSING_COLUMN,
    MISSING_VALUES,
    OUT_OF_RANGE,
    ROLES,
    TYPE_MISMATCH,
    UNAVAILABLE,
    UNSEEN_CATEGORIES,
    ExpectationResult,
)
from assurance.domain.checks import CheckSpec
from assurance.domain.findings import SEVERITIES, Finding, severity_rank
from assurance.domain.values import Dataset, Inputs, VersionRecord
from assurance.policy.thresholds import QualityThresholds

if TYPE_CHECKING:
    from assurance.policy.model import Policy


def availability_findings(inputs: Inputs, policy: Policy) -> list[Finding]:
    """One finding per dataset that could not be had: every later check silently shrinks without it."""
    findings = []
    for role in ROLES:
        ds: Dataset | None = inputs.dataset(role)
        if ds is not None and ds.ok:
            continue
        where = ds.uri if ds is not None and ds.uri else f"no `assurance.{role}` tag"
        error = (ds.error if ds is not None else None) or "no dataset was provided"
        findings.append(
            UNAVAILABLE.finding(
                role,
                policy.severity(UNAVAILABLE),
                f"The {role} data ({where}) could not be loaded ({error}), so the checks that need "
                f"it could not run: fix the URI or its access.",
                evidence=EVIDENCE,
            )
        )
    return findings


def check_label(
    record: VersionRecord, reference: pd.DataFrame | None, policy: Policy
) -> tuple[list[Finding], str | None]:
    """The label names the column performance is measured on; current may lack it (labels come late)."""
    label = record.tags.get("assurance.label") or None
    severity = policy.severity(LABEL_MISSING)
    if label is None:
        message = "The model has no `assurance.label` tag, so its performance cannot be checked: tag the label column."
        return [LABEL_MISSING.finding("assurance.label", severity, message, evidence=EVIDENCE)], None
    if reference is not None and label not in {str(c) for c in reference.columns}:
        message = (
            f"The `assurance.label` tag names '{label}', which the reference data does not have, so "
            f"performance cannot be checked: fix the tag or the data."
        )
        return [LABEL_MISSING.finding(label, severity, message, evidence=EVIDENCE)], label
    return [], label


def escalate(severity: str, excess: float, tolerance: float, factor: float) -> str:
    """One level worse when the excess over the baseline is more than `factor` times the tolerance."""
    if tolerance > 0 and excess > factor * tolerance:
        return SEVERITIES[max(0, severity_rank(severity) - 1)]
    return severity


def schema_findings(results: list[ExpectationResult], policy: Policy, from_signature: bool) -> list[Finding]:
    """One finding per column and schema check, naming every dataset where it failed."""
    failed: dict[tuple[CheckSpec, str], list[ExpectationResult]] = {}
    for r in results:
        check = r.expectation.check
        if check in (MISSING_COLUMN, TYPE_MISMATCH) and not r.success and not math.isnan(r.observed):
            failed.setdefault((check, r.expectation.column), []).append(r)
    findings = []
    source = "model signature" if from_signature else "reference data"
    for (check, col), group in failed.items():
        roles = " and ".join(r.role for r in group)
        if check == MISSING_COLUMN:
            message = (
                f"Feature '{col}' expected from the {source} is missing from the {roles} data, so the "
                f"model cannot score it as intended: restore the column or update the signature."
            )
        else:
            found = "; ".join(f"{r.role} has {r.note}, {r.observed:.1%} of values off" for r in group)
            message = (
                f"Feature '{col}' should hold {group[0].expectation.learned} values per the {source} but does not "
                f"({found}): fix the type upstream{' or the signature' if from_signature else ''}."
            )
        findings.append(
            check.finding(
                col,
                policy.severity(check),
                message,
                observed=max(r.observed for r in group),
                threshold=0.0,
                evidence=EVIDENCE,
            )
        )
    return findings


_RATE_MESSAGES = {
    MISSING_VALUES: (
        "{observed:.1%} of current values of '{column}' are missing against {baseline:.1%} in reference "
        "(allowed up to {threshold:.1%}): find where the feed loses them before trusting the scores."
    ),
    OUT_OF_RANGE: (
        "{observed:.1%} of current values of '{column}' fall outside the reference {learned} (allowed "
        "{threshold:.1%}{examples}): check units and upstream changes, the model never saw such values."
    ),
    UNSEEN_CATEGORIES: (
        "{observed:.1%} of current values of '{column}' are categories never seen in reference (allowed "
        "{threshold:.1%}{examples}): map them or retrain, the model has not learned them."
    ),
    DUPLICATE_ROWS: (
        "{observed:.1%} of {role} rows ({note}) are exact duplicates (allowed {threshold:.1%}): check "
        "the extraction for repeated records."
    ),
}


def noise_pvalue(result: ExpectationResult) -> float:
    """How likely values of one population show a current rate this high, by the test that fits the rate.

    Missing values and duplicates: one-sided Fisher against the reference's own count. Out of range:
    the chance of so many current values outside the range of the reference's values when both are
    exchangeable. Unseen categories: the chance that so many current values fall in categories that,
    with both datasets one random split, all landed in current.
    """
    e = result.expectation
    if e.check in (MISSING_VALUES, DUPLICATE_ROWS):
        return significance.rate_increase_pvalue(result.hits, result.rows, e.reference_hits, e.reference_rows)
    if e.check == OUT_OF_RANGE:
        return significance.outside_range_pvalue(result.hits, e.reference_rows, result.rows)
    return significance.unseen_pvalue(result.hits, result.pooled_counts, e.reference_rows, result.rows)


def judge_rates(results: list[ExpectationResult], alpha: float) -> list[ExpectationResult]:
    """Noise tests for every rate measured on current data, Benjamini-Hochberg over all of them; a rate
    beyond its threshold fails only when its q-value is at most `alpha` too."""
    tested = [
        i
        for i, r in enumerate(results)
        if r.role == "current" and r.expectation.check in _RATE_MESSAGES and not math.isnan(r.observed)
    ]
    p = [noise_pvalue(results[i]) for i in tested]
    q = significance.adjust(p)
    judged = list(results)
    for i, p_value, q_value in zip(tested, p, q, strict=True):
        r = results[i]
        beyond_noise = bool(q_value <= alpha)
        judged[i] = dataclasses.replace(
            r, p_value=p_value, q_value=float(q_value), success=r.success or not beyond_noise
        )
    return judged


def rate_findings(
    results: list[ExpectationResult], policy: Policy, limits: QualityThresholds
) -> list[Finding]:
    """Quality expectations failing on current (duplicates on either dataset) become findings, worse when
    far off. Current rates were judged against noise first (`judge_rates`).

    Values of the wrong type already have their finding: their range or categories are not reported again.
    """
    mistyped = {
        (r.role, r.expectation.column)
        for r in results
        if r.expectation.check == TYPE_MISMATCH and not r.success
    }
    findings = []
    for r in results:
        check = r.expectation.check
        if check not in _RATE_MESSAGES or r.success or math.isnan(r.observed):
            continue
        if r.role != "current" and check != DUPLICATE_ROWS:
            continue
        if check in (OUT_OF_RANGE, UNSEEN_CATEGORIES) and (r.role, r.expectation.column) in mistyped:
            continue
        severity = escalate(
            policy.severity(check),
            excess=r.observed - r.expectation.baseline,
            tolerance=r.expectation.threshold - r.expectation.baseline,
            factor=limits.escalation_factor,
        )
        message = _RATE_MESSAGES[check].format(
            observed=r.observed,
            baseline=r.expectation.baseline,
            threshold=r.expectation.threshold,
            column=r.expectation.column,
            role=r.role,
            learned=r.expectation.learned,
            note=r.note,
            examples=f"; e.g. {r.examples}" if r.examples else "",
        )
        subject = r.role if check == DUPLICATE_ROWS else r.expectation.column
        findings.append(
            check.finding(subject, severity, message, r.observed, r.expectation.threshold, EVIDENCE)
        )
    return findings
