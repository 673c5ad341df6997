"""What every assurance asset shares: owners, the progress log, tables."""

import logging

import dagster as dg
import pandas as pd

OWNERS = ["team:model-risk"]
progress_log = logging.getLogger("assurance.progress")


def progress(context: dg.AssetExecutionContext, version: str, message: str) -> None:
    """One line about `version` to the run's log in the UI and to the command line's progress output."""
    context.log.info(message if context.has_partition_key else f"{version}: {message}")
    progress_log.info("%s: %s", version, message)


def _column_type(dtype) -> str:
    for test, name in (
        (pd.api.types.is_bool_dtype, "bool"),
        (pd.api.types.is_integer_dtype, "int"),
        (pd.api.types.is_float_dtype, "float"),
        (pd.api.types.is_datetime64_any_dtype, "datetime"),
    ):
        if test(dtype):
            return name
    return "string"


def _cell(value) -> str | int | float | bool | None:
    """A table cell as Dagster stores it: missing values empty, numpy scalars plain, the rest text."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, str | int | float | bool) else str(value)


def table_metadata(frame: pd.DataFrame) -> dg.TableMetadataValue:
    """`frame` as a metadata table with typed columns: the UI renders it as a sortable table, where a
    markdown table would show as raw text in the asset's metadata list."""
    schema = dg.TableSchema(
        columns=[dg.TableColumn(str(name), _column_type(dtype)) for name, dtype in frame.dtypes.items()]
    )
    records = [dg.TableRecord({str(k): _cell(v) for k, v in row.items()}) for row in frame.to_dict("records")]
    return dg.MetadataValue.table(records, schema)
