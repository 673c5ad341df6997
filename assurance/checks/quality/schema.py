"""The schema the model expects, and frames brought to a shape the quality suite can judge.

The expected features and their MLflow types come from the model signature, else from the reference
columns; every expected feature must exist, and those with a known type must hold values of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from assurance.checks.quality.expectations import MISSING_COLUMN, TYPE_MISMATCH, Expectation
from assurance.domain.values import Section, VersionRecord

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


def schema_expectations(schema: dict[str, str], section: Section) -> list[Expectation]:
    """Every expected feature must exist; those with a known type must hold values of that type."""
    expectations = [Expectation(col, "expect_column_to_exist", MISSING_COLUMN) for col in schema]
    unchecked = sorted(
        f"{col} ({kind or 'unknown'})" for col, kind in schema.items() if kind not in TYPE_LISTS
    )
    if unchecked:
        section.skip(f"Types not checked for {', '.join(unchecked)}: there is no type check for them.")
    expectations += [
        Expectation(
            col,
            "expect_column_values_to_be_in_type_list",
            TYPE_MISMATCH,
            kwargs={"type_list": TYPE_LISTS[kind]},
            learned=kind,
        )
        for col, kind in schema.items()
        if kind in TYPE_LISTS
    ]
    return expectations
