"""Running the suite: the learned expectations as Great Expectations suites, and duplicate rows."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from assurance.checks.quality.expectations import (
    ALL_COLUMNS,
    DUPLICATE_ROWS,
    DUPLICATES,
    MISSING_VALUES,
    TYPE_MISMATCH,
    UNSEEN_CATEGORIES,
    Expectation,
    ExpectationResult,
)
from assurance.checks.quality.learning import native
from assurance.checks.rows import sample
from assurance.domain.values import Sampling, Section
from assurance.policy.thresholds import QualityThresholds

EXPECTATIONS = {  # the GX expectation behind each table `expectation` name
    "expect_column_to_exist": "ExpectColumnToExist",
    "expect_column_values_to_be_in_type_list": "ExpectColumnValuesToBeInTypeList",
    "expect_column_values_to_not_be_null": "ExpectColumnValuesToNotBeNull",
    "expect_column_values_to_be_between": "ExpectColumnValuesToBeBetween",
    "expect_column_values_to_be_in_set": "ExpectColumnValuesToBeInSet",
}
COLUMNS_PER_BATCH = 32


def evaluate(
    role: str, frame: pd.DataFrame, expectations: list[Expectation], section: Section
) -> list[ExpectationResult]:
    """Run the expectations on one dataset, a few columns per GX batch.

    GX copies the whole frame for each column expectation, so one batch over a wide frame costs
    columns x frame; batches of a few columns, each one consolidated copy, keep the cost linear.
    """
    columns = list(dict.fromkeys(r.column for r in expectations))
    results: list[ExpectationResult] = []
    for start in range(0, len(columns), COLUMNS_PER_BATCH):
        chunk = set(columns[start : start + COLUMNS_PER_BATCH])
        chunk_expectations = [r for r in expectations if r.column in chunk]
        present = [c for c in frame.columns if c in chunk]
        results += validate(role, frame[present].copy(), chunk_expectations, section)
    return results


def validate(
    role: str, frame: pd.DataFrame, expectations: list[Expectation], section: Section
) -> list[ExpectationResult]:
    """The expectations that apply to this frame as one GX suite on an in-memory pandas batch."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    applicable = [e for e in expectations if e.name == "expect_column_to_exist" or e.column in frame.columns]
    if not applicable:
        return []
    try:
        context = _ephemeral_context()
        expectations = [
            getattr(gxe, EXPECTATIONS[expectation.name])(
                column=expectation.column, **expectation.kwargs, meta={"index": i}
            )
            for i, expectation in enumerate(applicable)
        ]
        suite = gx.ExpectationSuite(
            name=f"quality_{role}", expectations=expectations
        )  # add_expectation is quadratic
        asset = context.data_sources.add_pandas(f"assurance_{role}").add_dataframe_asset(role)
        batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(
            batch_parameters={"dataframe": frame}
        )
        results = batch.validate(suite, result_format="BASIC").results
    except Exception as exc:  # noqa: BLE001 - GX failing on odd data is a note, not a crash
        names = sorted({r.column for r in applicable})
        section.skip(f"Great Expectations could not validate {names} on {role}: {type(exc).__name__}: {exc}")
        return []
    return [
        _result(role, applicable[int(r.expectation_config.meta["index"])], r, frame, section) for r in results
    ]


def _ephemeral_context() -> Any:
    """An in-memory GX context: no project files, no analytics, no progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _result(
    role: str, expectation: Expectation, result: Any, frame: pd.DataFrame, section: Section
) -> ExpectationResult:
    """Read a GX result as a rate: the share of rows (missingness) or non-missing values that broke the expectation."""
    info = result.exception_info or {}
    if info.get("raised_exception"):
        message = str(info.get("exception_message") or "unknown error").splitlines()[0]
        section.skip(f"{expectation.name} on {role} column '{expectation.column}' could not run: {message}")
        return ExpectationResult(role, expectation, False, math.nan, f"could not run: {message}")
    res = result.result or {}
    success = bool(result.success)
    if expectation.name == "expect_column_to_exist":
        return ExpectationResult(
            role, expectation, success, 0.0 if success else 1.0, "" if success else "column absent"
        )
    pct = res.get("unexpected_percent")
    observed = float(pct) / 100.0 if pct is not None else (0.0 if success else 1.0)
    note = f"dtype {frame[expectation.column].dtype}" if expectation.check == TYPE_MISMATCH else ""
    examples = "" if expectation.check == MISSING_VALUES else _examples(res.get("partial_unexpected_list"))
    hits = int(res.get("unexpected_count") or 0)
    rows = int(res.get("element_count") or 0)
    if expectation.check != MISSING_VALUES:  # rates of values, not of rows
        rows -= int(res.get("missing_count") or 0)
    pooled = pooled_counts(expectation, frame) if expectation.check == UNSEEN_CATEGORIES else ()
    return ExpectationResult(
        role, expectation, success, observed, note, examples, hits=hits, rows=rows, pooled_counts=pooled
    )


def pooled_counts(expectation: Expectation, frame: pd.DataFrame) -> tuple[int, ...]:
    """Each category's count in reference and this dataset together, for the unseen-categories test."""
    counts = dict(expectation.reference_counts)
    for value, count in frame[expectation.column].value_counts().items():
        key = native(value)
        counts[key] = counts.get(key, 0) + int(count)
    return tuple(counts.values())


def _examples(values: list[Any] | None, limit: int = 5) -> str:
    if not values:
        return ""
    seen: list[str] = []
    for v in values:
        v = native(v)
        text = f"{v:.6g}" if isinstance(v, float) else repr(v)[:40]
        if text not in seen:
            seen.append(text)
    return ", ".join(seen[:limit])


def duplicate_count(frame: pd.DataFrame) -> int:
    """Rows that repeat an earlier row exactly; unhashable cells are compared as text."""
    if frame.empty:
        return 0
    try:
        return int(frame.duplicated().sum())
    except TypeError:
        return int(frame.astype(str).duplicated().sum())


def duplicate_results(
    frames: dict[str, pd.DataFrame],
    limits: QualityThresholds,
    section: Section,
    samplings: dict[str, Sampling],
) -> list[ExpectationResult]:
    """Duplicates on each dataset; current is allowed the reference's own share plus the policy's.

    Repeats grow with size when values are discrete (two of a million rows coincide far more often
    than two of a hundred), so current is compared with reference on seeded samples of equal size.
    The note says when those are samples, including data read as a sample to fit the memory budget.
    """
    counted = {}
    sized = _equal_sizes(frames)
    for role, frame in sized.items():
        try:
            counted[role] = duplicate_count(frame), len(frame)
        except Exception as exc:  # noqa: BLE001 - a frame pandas cannot compare is a note
            section.skip(f"Duplicate rows could not be counted on {role}: {type(exc).__name__}: {exc}")
    results = []
    ref_hits, ref_rows = counted.get("reference", (0, 0))
    for role, (hits, rows) in counted.items():
        share = hits / rows if rows else 0.0
        baseline = ref_hits / ref_rows if role == "current" and ref_rows else 0.0
        threshold = baseline + limits.duplicate_rate
        expectation = Expectation(
            ALL_COLUMNS,
            DUPLICATES,
            DUPLICATE_ROWS,
            threshold=threshold,
            baseline=baseline,
            reference_rows=ref_rows if role == "current" else 0,
            reference_hits=ref_hits if role == "current" else 0,
        )
        total = samplings[role].rows_total if role in samplings else len(frames[role])
        note = f"{hits} duplicate rows of {rows}" + (f" sampled from {total:,}" if rows < total else "")
        results.append(
            ExpectationResult(role, expectation, share <= threshold, share, note, hits=hits, rows=rows)
        )
    return results


def _equal_sizes(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    if len(frames) < 2:
        return frames
    size = min(len(f) for f in frames.values())
    return {role: sample(frame, size) for role, frame in frames.items()}
