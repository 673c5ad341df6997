"""Data quality: a Great Expectations suite learned from the reference data, run on reference and current.

The reference data is what the model learned from, so it defines what "normal" looks like: which
columns exist and with which types (from the model signature when there is one), how often each
feature is missing, the numeric ranges and the known categories. Each of those becomes a GX
expectation whose `mostly` encodes the policy's tolerance; the suite then runs on both datasets,
every result lands in `quality.parquet`, and what fails on current becomes a finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from assurance.domain.findings import SEVERITIES, Finding, severity_rank
from assurance.domain.values import Dataset, Inputs, Section, VersionRecord

if TYPE_CHECKING:
    from assurance.policy.model import Policy

EVIDENCE = "quality.parquet"
ROLES = ("reference", "current")
SAMPLE_SEED = 0
TABLE_COLUMNS = ["role", "column", "expectation", "success", "observed", "threshold", "details"]
ALL_COLUMNS = "*"

CHECKS: dict[str, str] = {
    "data.unavailable": "Reference or current data could not be loaded, so the checks that need it did not run.",
    "data.label_missing": "The `assurance.label` tag is absent or names a column the reference data lacks.",
    "schema.missing_column": "A model input (from the signature, else the reference columns) is missing from a dataset.",
    "schema.type_mismatch": "A column's values do not fit the type the model signature declares.",
    "quality.missing_values": "A feature is missing in current data more often than in reference, beyond the policy's margin.",
    "quality.out_of_range": "Too many current values of a numeric feature fall outside the reference range.",
    "quality.unseen_categories": "Too many current values of a categorical feature were never seen in reference.",
    "quality.duplicates": "A dataset holds more exact duplicate rows than the policy allows.",
}

_INTS = [f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)]
_NULLABLE_INTS = [f"{sign}Int{bits}Dtype" for sign in ("", "U") for bits in (8, 16, 32, 64)]
_INTEGER_TYPES = [*_INTS, *_NULLABLE_INTS, "int"]
_NUMBER_TYPES = [*_INTEGER_TYPES, "float16", "float32", "float64", "Float32Dtype", "Float64Dtype", "float"]
# Pandas dtypes (and, for object columns, Python value types) that fit each MLflow signature type.
# Numbers are lenient on width: a feed rarely controls it and scoring casts safely between them.
TYPE_LISTS: dict[str, list[str]] = {
    "double": _NUMBER_TYPES,
    "float": _NUMBER_TYPES,
    "long": _INTEGER_TYPES,
    "integer": _INTEGER_TYPES,
    "boolean": ["bool", "BooleanDtype"],
    "string": ["str"],
    "binary": ["bytes"],
    "datetime": ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]", "Timestamp"],
}

EXPECTATIONS = {  # the GX expectation behind each table `expectation` name
    "expect_column_to_exist": "ExpectColumnToExist",
    "expect_column_values_to_be_in_type_list": "ExpectColumnValuesToBeInTypeList",
    "expect_column_values_to_not_be_null": "ExpectColumnValuesToNotBeNull",
    "expect_column_values_to_be_between": "ExpectColumnValuesToBeBetween",
    "expect_column_values_to_be_in_set": "ExpectColumnValuesToBeInSet",
}
COLUMNS_PER_BATCH = 32
DUPLICATES = "expect_no_duplicate_rows"  # computed with pandas on the full dataset, not sampled


@dataclass(frozen=True)
class Limits:
    """The policy's quality thresholds, read once."""

    missing_rate_increase: float
    out_of_range_rate: float
    range_margin: float
    unseen_category_rate: float
    duplicate_rate: float
    max_categories: int
    max_category_share: float
    sample_rows: int
    escalation_factor: float

    @classmethod
    def from_policy(cls, policy: Policy) -> Limits:
        q = {name: policy.threshold(f"quality.{name}") for name in cls.__dataclass_fields__}
        return cls(**q)


@dataclass(frozen=True)
class Rule:
    """One expectation learned from the reference data.

    `threshold` is the largest acceptable rate; `baseline` is the reference's own rate, so the
    policy's tolerance is `threshold - baseline` (it is 0 except for missingness and duplicates).
    """

    column: str
    expectation: str
    check: str
    threshold: float = 0.0
    baseline: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    learned: str = ""


@dataclass(frozen=True)
class Outcome:
    """One rule evaluated on one dataset. `observed` is a rate (share of rows or values), NaN if it could not run."""

    role: str
    rule: Rule
    success: bool
    observed: float
    note: str = ""
    examples: str = ""

    @property
    def details(self) -> str:
        """What was learned, what was seen, and a few offending values."""
        parts = [self.rule.learned, self.note, f"e.g. {self.examples}" if self.examples else ""]
        return "; ".join(p for p in parts if p)


def run(inputs: Inputs) -> Section:
    """Learn the suite from reference, run it on both datasets and turn what fails into findings."""
    section = Section("data_quality", "Data quality")
    policy, record = inputs.policy, inputs.record
    limits = Limits.from_policy(policy)
    section.findings += availability_findings(inputs, policy)
    datasets = {role: inputs.dataset(role) for role in ROLES}
    frames = {role: ds.frame for role, ds in datasets.items() if ds is not None and ds.ok}
    label_findings, label = check_label(record, frames.get("reference"), policy)
    section.findings += label_findings

    cleaned = {role: clean_columns(role, frame, section) for role, frame in frames.items()}
    schema = expected_schema(record, cleaned.get("reference"), label, section)
    duplicate_outcomes = duplicate_outcomes_for(cleaned, limits, section)
    sampled = {role: sample(frame, limits.sample_rows) for role, frame in cleaned.items()}
    working = {role: normalise(frame, schema) for role, frame in sampled.items()}

    rules = schema_rules(schema, section)
    if "reference" in working:
        rules += learn_rules(
            working["reference"], [c for c in schema if c in working["reference"]], limits, section
        )
    else:
        section.skip("Missingness, range and category checks need reference data to learn from; none ran.")
    outcomes = [o for role, frame in working.items() for o in evaluate(role, frame, rules, section)]
    outcomes += duplicate_outcomes

    section.findings += schema_findings(outcomes, policy, bool(record.signature_inputs))
    section.findings += rate_findings(outcomes, policy, limits)
    table = outcomes_table(outcomes)
    section.tables = {"quality": table}
    section.metrics = quality_metrics(frames, table)
    section.summary = summary(table, frames, limits, label)
    return section


# --- availability and label -------------------------------------------------------------------


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
            Finding(
                category="data_quality",
                check="data.unavailable",
                subject=role,
                severity=policy.severity("data.unavailable", "high"),
                message=(
                    f"The {role} data ({where}) could not be loaded ({error}), so the checks that need "
                    f"it could not run: fix the URI or its access."
                ),
                evidence=EVIDENCE,
            )
        )
    return findings


def check_label(
    record: VersionRecord, reference: pd.DataFrame | None, policy: Policy
) -> tuple[list[Finding], str | None]:
    """The label names the column performance is measured on; current may lack it (labels come late)."""
    label = record.tags.get("assurance.label") or None
    severity = policy.severity("data.label_missing", "medium")
    if label is None:
        message = "The model has no `assurance.label` tag, so its performance cannot be checked: tag the label column."
        return [_label_finding("assurance.label", severity, message)], None
    if reference is not None and label not in {str(c) for c in reference.columns}:
        message = (
            f"The `assurance.label` tag names '{label}', which the reference data does not have, so "
            f"performance cannot be checked: fix the tag or the data."
        )
        return [_label_finding(label, severity, message)], label
    return [], label


def _label_finding(subject: str, severity: str, message: str) -> Finding:
    return Finding("data_quality", "data.label_missing", subject, severity, message, evidence=EVIDENCE)


# --- preparing frames -------------------------------------------------------------------------


def clean_columns(role: str, frame: pd.DataFrame, section: Section) -> pd.DataFrame:
    """String column names, first of each duplicate kept: GX and the evidence table need unique text names."""
    names = [str(c) if str(c) != "" else "(unnamed)" for c in frame.columns]
    keep = ~pd.Index(names).duplicated()
    dropped = sorted({n for n, k in zip(names, keep, strict=True) if not k})
    if dropped:
        section.skip(f"The {role} data repeats column names {dropped}: only the first of each was checked.")
    out = frame.iloc[:, np.flatnonzero(keep)].copy(deep=False)
    out.columns = [n for n, k in zip(names, keep, strict=True) if k]
    return out


def sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """A seeded sample above `rows` rows, so the cost stays bounded and reruns agree."""
    return frame.sample(n=rows, random_state=SAMPLE_SEED) if len(frame) > rows else frame


def normalise(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """Bring every column to a dtype the type expectation can judge; a column that resists stays as it is."""
    out = frame.copy(deep=False)
    for col in out.columns:
        original = out[col]
        try:
            column = _normalised(original, schema.get(col, ""))
        except (TypeError, ValueError, OverflowError):
            continue  # the type expectation reports what it finds
        if column is not original:
            out[col] = column
    return out


def _normalised(series: pd.Series, kind: str) -> pd.Series:
    """Judge values, not storage.

    Arrow-backed columns become numpy-backed; time zones are dropped; strings, categories and other
    non-numeric extension dtypes become object columns (each value's type is then checked); integer
    features stored as floats because they hold missing values become nullable integers, so the gaps
    count as missingness, not as a type change.
    """
    s = series
    if isinstance(s.dtype, pd.ArrowDtype):
        if s.dtype.kind == "M":
            s = pd.Series(pd.to_datetime(s.to_numpy(dtype=object), utc=True), index=s.index, name=s.name)
        else:
            s = s.convert_dtypes(dtype_backend="numpy_nullable")
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert(None)
    if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) and not (
        ptypes.is_numeric_dtype(s.dtype) or ptypes.is_bool_dtype(s.dtype)
    ):
        return s.astype(object)
    if kind in ("long", "integer") and ptypes.is_float_dtype(s.dtype) and _integral(s):
        return s.astype("Int64")
    return s


def _integral(series: pd.Series) -> bool:
    values = series.dropna().to_numpy(dtype=float)
    return bool(np.isfinite(values).all() and (values == np.round(values)).all())


# --- learning the suite -----------------------------------------------------------------------


def expected_schema(
    record: VersionRecord, reference: pd.DataFrame | None, label: str | None, section: Section
) -> dict[str, str]:
    """Feature -> MLflow type: from the signature, else inferred from the reference columns minus the label."""
    if record.signature_inputs:
        return {str(c["name"]): _type_name(c.get("type")) for c in record.signature_inputs if c.get("name")}
    if reference is None:
        section.skip("The model has no signature and there is no reference data: the schema was not checked.")
        return {}
    section.skip(
        "The model has no signature: the expected features and their types were taken from the "
        "reference data (all columns but the label)."
    )
    return {col: infer_type(reference[col]) for col in reference.columns if col != label}


def _type_name(value: Any) -> str:
    """Signature types are strings for columns; nested types (arrays, objects) arrive as dicts."""
    if isinstance(value, dict):
        return str(value.get("type", ""))
    return str(value or "")


def infer_type(series: pd.Series) -> str:
    """The MLflow type a reference column would have been logged with."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return infer_type(pd.Series(dtype.categories))
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if ptypes.is_integer_dtype(dtype):
        return "long"
    if ptypes.is_float_dtype(dtype):
        return "double"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if ptypes.is_string_dtype(dtype) and series.dropna().map(type).eq(str).all():
        return "string"
    return ""  # mixed or exotic values: no type is asserted


def schema_rules(schema: dict[str, str], section: Section) -> list[Rule]:
    """Every expected feature must exist; those with a known type must hold values of that type."""
    rules = [Rule(col, "expect_column_to_exist", "schema.missing_column") for col in schema]
    unchecked = sorted(
        f"{col} ({kind or 'unknown'})" for col, kind in schema.items() if kind not in TYPE_LISTS
    )
    if unchecked:
        section.skip(f"Types not checked for {', '.join(unchecked)}: there is no type check for them.")
    rules += [
        Rule(
            col,
            "expect_column_values_to_be_in_type_list",
            "schema.type_mismatch",
            kwargs={"type_list": TYPE_LISTS[kind]},
            learned=kind,
        )
        for col, kind in schema.items()
        if kind in TYPE_LISTS
    ]
    return rules


def learn_rules(reference: pd.DataFrame, columns: list[str], limits: Limits, section: Section) -> list[Rule]:
    """Missingness, then range or categories, per feature; a column that defeats learning becomes a note."""
    rules: list[Rule] = []
    for col in columns:
        series = reference[col]
        rules.append(missing_rule(series, col, limits))
        try:
            rules += value_rules(series.dropna(), col, limits)
        except Exception as exc:  # noqa: BLE001 - odd data in one column must not stop the others
            section.skip(f"Could not learn the values of '{col}' from reference: {type(exc).__name__}: {exc}")
    return rules


def missing_rule(series: pd.Series, col: str, limits: Limits) -> Rule:
    """Current may miss a feature as often as reference did, plus the policy's margin."""
    missing = float(series.isna().mean()) if len(series) else 0.0
    threshold = min(1.0, missing + limits.missing_rate_increase)
    return Rule(
        col,
        "expect_column_values_to_not_be_null",
        "quality.missing_values",
        threshold=threshold,
        baseline=missing,
        kwargs={"mostly": 1.0 - threshold},
        learned=f"reference missing {missing:.2%}",
    )


def value_rules(values: pd.Series, col: str, limits: Limits) -> list[Rule]:
    """The reference's range for numeric features, its known values for categorical ones, else nothing."""
    kind = value_kind(values, limits)
    if kind == "numeric":
        return _range_rule(values, col, limits)
    if kind == "categorical":
        return [_category_rule(values, col, limits)]
    return []


def value_kind(values: pd.Series, limits: Limits) -> str:
    """'numeric' (range check), 'categorical' (known-values check) or 'other' (neither is meaningful).

    Booleans and integers with few distinct values are categories; floats are numeric; dates move
    on with time, so their range says nothing; text with mostly distinct values (ids, free text)
    has no category set worth learning.
    """
    if (
        values.empty
        or ptypes.is_datetime64_any_dtype(values.dtype)
        or ptypes.is_timedelta64_dtype(values.dtype)
    ):
        return "other"
    if ptypes.is_bool_dtype(values.dtype):
        return "categorical"
    if ptypes.is_float_dtype(values.dtype):
        return "numeric"
    distinct = values.nunique()
    if ptypes.is_integer_dtype(values.dtype):
        return "categorical" if distinct <= limits.max_categories else "numeric"
    if distinct <= limits.max_categories or distinct <= limits.max_category_share * len(values):
        return "categorical"
    return "other"


def _range_rule(values: pd.Series, col: str, limits: Limits) -> list[Rule]:
    """Reference [min, max] widened by the margin. A fresh sample of the same distribution falls
    outside a sample's extremes 2/(n+1) of the time, so that share is the baseline, not a problem."""
    finite = values.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return []
    lo, hi = float(finite.min()), float(finite.max())
    margin = limits.range_margin * (hi - lo)
    baseline = 2.0 / (finite.size + 1)
    threshold = min(1.0, baseline + limits.out_of_range_rate)
    return [
        Rule(
            col,
            "expect_column_values_to_be_between",
            "quality.out_of_range",
            threshold=threshold,
            baseline=baseline,
            kwargs={"min_value": lo - margin, "max_value": hi + margin, "mostly": 1.0 - threshold},
            learned=f"range [{lo - margin:.6g}, {hi + margin:.6g}]",
        )
    ]


def _category_rule(values: pd.Series, col: str, limits: Limits) -> Rule:
    """Known values of a categorical feature. The share of reference values seen only once estimates
    how often a fresh sample shows a value the reference lacks (Good-Turing): that is the baseline."""
    counts = values.value_counts()
    known = [_native(v) for v in counts.index]
    baseline = float((counts == 1).sum()) / len(values)
    threshold = min(1.0, baseline + limits.unseen_category_rate)
    shown = ", ".join(map(repr, known[:10])) + (", ..." if len(known) > 10 else "")
    return Rule(
        col,
        "expect_column_values_to_be_in_set",
        "quality.unseen_categories",
        threshold=threshold,
        baseline=baseline,
        kwargs={"value_set": known, "mostly": 1.0 - threshold},
        learned=f"{len(known)} known values: {shown}",
    )


def _native(value: Any) -> Any:
    """numpy scalars to Python ones, so GX can serialise the value set."""
    return value.item() if isinstance(value, np.generic) else value


# --- evaluating -------------------------------------------------------------------------------


def evaluate(role: str, frame: pd.DataFrame, rules: list[Rule], section: Section) -> list[Outcome]:
    """Run the rules on one dataset, a few columns per GX batch.

    GX copies the whole frame for each column expectation, so one batch over a wide frame costs
    columns x frame; batches of a few columns, each one consolidated copy, keep the cost linear.
    """
    columns = list(dict.fromkeys(r.column for r in rules))
    outcomes: list[Outcome] = []
    for start in range(0, len(columns), COLUMNS_PER_BATCH):
        chunk = set(columns[start : start + COLUMNS_PER_BATCH])
        chunk_rules = [r for r in rules if r.column in chunk]
        present = [c for c in frame.columns if c in chunk]
        outcomes += validate(role, frame[present].copy(), chunk_rules, section)
    return outcomes


def validate(role: str, frame: pd.DataFrame, rules: list[Rule], section: Section) -> list[Outcome]:
    """The rules that apply to this frame as one GX suite on an in-memory pandas batch."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    applicable = [r for r in rules if r.expectation == "expect_column_to_exist" or r.column in frame.columns]
    if not applicable:
        return []
    try:
        context = _ephemeral_context()
        expectations = [
            getattr(gxe, EXPECTATIONS[rule.expectation])(column=rule.column, **rule.kwargs, meta={"rule": i})
            for i, rule in enumerate(applicable)
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
        _outcome(role, applicable[int(r.expectation_config.meta["rule"])], r, frame, section) for r in results
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


def _outcome(role: str, rule: Rule, result: Any, frame: pd.DataFrame, section: Section) -> Outcome:
    """Read a GX result as a rate: the share of rows (missingness) or non-missing values that broke the rule."""
    info = result.exception_info or {}
    if info.get("raised_exception"):
        message = str(info.get("exception_message") or "unknown error").splitlines()[0]
        section.skip(f"{rule.expectation} on {role} column '{rule.column}' could not run: {message}")
        return Outcome(role, rule, False, math.nan, f"could not run: {message}")
    res = result.result or {}
    success = bool(result.success)
    if rule.expectation == "expect_column_to_exist":
        return Outcome(role, rule, success, 0.0 if success else 1.0, "" if success else "column absent")
    pct = res.get("unexpected_percent")
    observed = float(pct) / 100.0 if pct is not None else (0.0 if success else 1.0)
    note = f"dtype {frame[rule.column].dtype}" if rule.check == "schema.type_mismatch" else ""
    examples = "" if rule.check == "quality.missing_values" else _examples(res.get("partial_unexpected_list"))
    return Outcome(role, rule, success, observed, note, examples)


def _examples(values: list[Any] | None, limit: int = 5) -> str:
    if not values:
        return ""
    seen: list[str] = []
    for v in values:
        v = _native(v)
        text = f"{v:.6g}" if isinstance(v, float) else repr(v)[:40]
        if text not in seen:
            seen.append(text)
    return ", ".join(seen[:limit])


def duplicate_share(frame: pd.DataFrame) -> float:
    """Share of rows that repeat an earlier row exactly; unhashable cells are compared as text."""
    if frame.empty:
        return 0.0
    try:
        return float(frame.duplicated().mean())
    except TypeError:
        return float(frame.astype(str).duplicated().mean())


def duplicate_outcomes_for(
    frames: dict[str, pd.DataFrame], limits: Limits, section: Section
) -> list[Outcome]:
    """Duplicates on each full dataset; current is allowed the reference's own share plus the policy's."""
    shares: dict[str, float] = {}
    for role, frame in frames.items():
        try:
            shares[role] = duplicate_share(frame)
        except Exception as exc:  # noqa: BLE001 - a frame pandas cannot compare is a note
            section.skip(f"Duplicate rows could not be counted on {role}: {type(exc).__name__}: {exc}")
    outcomes = []
    for role, share in shares.items():
        baseline = shares.get("reference", 0.0) if role == "current" else 0.0
        threshold = baseline + limits.duplicate_rate
        rule = Rule(ALL_COLUMNS, DUPLICATES, "quality.duplicates", threshold=threshold, baseline=baseline)
        note = f"{int(round(share * len(frames[role])))} duplicate rows"
        outcomes.append(Outcome(role, rule, share <= threshold, share, note))
    return outcomes


# --- findings ---------------------------------------------------------------------------------


def escalate(severity: str, excess: float, tolerance: float, factor: float) -> str:
    """One level worse when the excess over the baseline is more than `factor` times the tolerance."""
    if tolerance > 0 and excess > factor * tolerance:
        return SEVERITIES[max(0, severity_rank(severity) - 1)]
    return severity


def schema_findings(outcomes: list[Outcome], policy: Policy, from_signature: bool) -> list[Finding]:
    """One finding per column and schema check, naming every dataset where it failed."""
    failed: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        if o.rule.check.startswith("schema.") and not o.success and not math.isnan(o.observed):
            failed.setdefault((o.rule.check, o.rule.column), []).append(o)
    findings = []
    source = "model signature" if from_signature else "reference data"
    for (check, col), group in failed.items():
        roles = " and ".join(o.role for o in group)
        if check == "schema.missing_column":
            message = (
                f"Feature '{col}' expected from the {source} is missing from the {roles} data, so the "
                f"model cannot score it as intended: restore the column or update the signature."
            )
            default = "high"
        else:
            found = "; ".join(f"{o.role} has {o.note}, {o.observed:.1%} of values off" for o in group)
            message = (
                f"Feature '{col}' should hold {group[0].rule.learned} values per the {source} but does not "
                f"({found}): fix the type upstream{' or the signature' if from_signature else ''}."
            )
            default = "medium"
        findings.append(
            Finding(
                category="schema",
                check=check,
                subject=col,
                severity=policy.severity(check, default),
                message=message,
                observed=max(o.observed for o in group),
                threshold=0.0,
                evidence=EVIDENCE,
            )
        )
    return findings


_RATE_MESSAGES = {
    "quality.missing_values": (
        "{observed:.1%} of current values of '{column}' are missing against {baseline:.1%} in reference "
        "(allowed up to {threshold:.1%}): find where the feed loses them before trusting the scores."
    ),
    "quality.out_of_range": (
        "{observed:.1%} of current values of '{column}' fall outside the reference {learned} (allowed "
        "{threshold:.1%}{examples}): check units and upstream changes, the model never saw such values."
    ),
    "quality.unseen_categories": (
        "{observed:.1%} of current values of '{column}' are categories never seen in reference (allowed "
        "{threshold:.1%}{examples}): map them or retrain, the model has not learned them."
    ),
    "quality.duplicates": (
        "{observed:.1%} of {role} rows ({note}) are exact duplicates (allowed {threshold:.1%}): check "
        "the extraction for repeated records."
    ),
}
_DEFAULT_SEVERITY = {"quality.duplicates": "low"}


def rate_findings(outcomes: list[Outcome], policy: Policy, limits: Limits) -> list[Finding]:
    """Quality rules failing on current (duplicates on either dataset) become findings, worse when far off.

    Values of the wrong type already have their finding: their range or categories are not reported again.
    """
    mistyped = {
        (o.role, o.rule.column) for o in outcomes if o.rule.check == "schema.type_mismatch" and not o.success
    }
    findings = []
    for o in outcomes:
        check = o.rule.check
        if check not in _RATE_MESSAGES or o.success or math.isnan(o.observed):
            continue
        if o.role != "current" and check != "quality.duplicates":
            continue
        if (
            check in ("quality.out_of_range", "quality.unseen_categories")
            and (o.role, o.rule.column) in mistyped
        ):
            continue
        severity = escalate(
            policy.severity(check, _DEFAULT_SEVERITY.get(check, "medium")),
            excess=o.observed - o.rule.baseline,
            tolerance=o.rule.threshold - o.rule.baseline,
            factor=limits.escalation_factor,
        )
        message = _RATE_MESSAGES[check].format(
            observed=o.observed,
            baseline=o.rule.baseline,
            threshold=o.rule.threshold,
            column=o.rule.column,
            role=o.role,
            learned=o.rule.learned,
            note=o.note,
            examples=f"; e.g. {o.examples}" if o.examples else "",
        )
        subject = o.role if check == "quality.duplicates" else o.rule.column
        findings.append(
            Finding("data_quality", check, subject, severity, message, o.observed, o.rule.threshold, EVIDENCE)
        )
    return findings


# --- evidence and report ----------------------------------------------------------------------


def outcomes_table(outcomes: list[Outcome]) -> pd.DataFrame:
    """One row per (dataset, column, expectation): the evidence file `quality.parquet`."""
    rows = [
        {
            "role": o.role,
            "column": o.rule.column,
            "expectation": o.rule.expectation,
            "success": bool(o.success),
            "observed": float(o.observed),
            "threshold": float(o.rule.threshold),
            "details": o.details,
        }
        for o in outcomes
    ]
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return table.astype({"success": bool, "observed": float, "threshold": float})


def quality_metrics(frames: dict[str, pd.DataFrame], table: pd.DataFrame) -> dict[str, float]:
    """Counts for the Dagster asset's metadata; a dataset that could not be had counts 0 rows."""
    metrics = {f"rows_{role}": float(len(frames[role])) if role in frames else 0.0 for role in ROLES}
    metrics["expectations_evaluated"] = float(len(table))
    for role in ROLES:
        metrics[f"expectations_failed_{role}"] = float(((table["role"] == role) & ~table["success"]).sum())
    return metrics


def summary(table: pd.DataFrame, frames: dict[str, pd.DataFrame], limits: Limits, label: str | None) -> str:
    """Failed expectations on current first, then the counts an analyst scans for."""
    lines = []
    failed = table[(table["role"] == "current") & ~table["success"]]
    if len(failed):
        lines += ["| column | expectation | observed | threshold | details |", "|---|---|---|---|---|"]
        for row in failed.itertuples(index=False):
            details = str(row.details).replace("|", "\\|")
            lines.append(
                f"| {row.column} | {row.expectation} | {row.observed:.2%} | {row.threshold:.2%} | {details} |"
            )
        lines.append("")
    elif "current" in frames:
        lines += ["All expectations held on the current data.", ""]
    counts = []
    for role, frame in frames.items():
        part = table[table["role"] == role]
        counts.append(
            f"{role}: {len(frame):,} rows, {len(part)} expectations, {int((~part['success']).sum())} failed"
        )
    lines.append("; ".join(counts) + "." if counts else "No data could be checked.")
    if any(len(f) > limits.sample_rows for f in frames.values()):
        lines.append(
            f"Datasets above {limits.sample_rows:,} rows were checked on a seeded sample of that size "
            f"(duplicates on all rows)."
        )
    current = frames.get("current")
    if label and current is not None and label not in {str(c) for c in current.columns}:
        lines.append(f"The current data has no label column '{label}' yet.")
    return "\n".join(lines)
