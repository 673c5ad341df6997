"""Reading reference and current data from the URIs model owners put in their tags.

Local paths, `file://` and any fsspec protocol; Parquet (file or folder) and CSV. Every failure
becomes a `Dataset` with an `error` an analyst can act on, never an exception.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from assurance.domain.errors import DataError, describe_error
from assurance.domain.values import Dataset, Sampling, VersionRecord
from assurance.settings import MEMORY_BUDGET_ENV

if TYPE_CHECKING:
    import pandas as pd

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".tsv")


def _fs(uri: str):
    """The file system and path behind a URI, with cached listings dropped: object-store clients keep them
    for the life of the process, and data uploaded since must not look missing or half there."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(_decoded_file_uri(uri))
    fs.invalidate_cache()
    return fs, path


def _decoded_file_uri(uri: str) -> str:
    """A `file://` URI as the local path it names: `Path.as_uri()` (and so MLflow and most tools) encodes
    spaces and `%` in a path, which fsspec would take literally. A path whose name really holds `%20` is
    kept as written."""
    from pathlib import Path
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    if not uri.startswith("file://"):
        return uri
    decoded = url2pathname(urlparse(uri).path)
    return decoded if Path(decoded).exists() or not Path(uri.removeprefix("file://")).exists() else uri


def _files(fs, path: str) -> list[str]:
    if fs.isdir(path):
        return sorted(p for p in fs.find(path) if not p.rsplit("/", 1)[-1].startswith(("_", ".")))
    return [path]


def fingerprint(uri: str) -> str:
    """sha256 over the bytes of every file behind the URI, so evidence names exactly the data it judged."""
    fs, path = _fs(uri)
    digest = hashlib.sha256()
    for file in _files(fs, path):
        digest.update(file.rsplit("/", 1)[-1].encode())
        with fs.open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _format(uri: str, fs, path: str) -> str:
    """`parquet` or `csv`; raises DataError with a plain reason for anything else."""
    if not fs.exists(path):
        raise DataError(f"nothing exists at {uri}")
    lower = path.lower()
    if fs.isdir(path) or lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    raise DataError(
        f"{uri} is neither Parquet ({', '.join(PARQUET_SUFFIXES)}) nor CSV ({', '.join(CSV_SUFFIXES)})"
    )


def _separator(path: str) -> str:
    return "\t" if path.lower().endswith(".tsv") else ","


def _read_whole(fs, path: str, kind: str) -> pd.DataFrame:
    import pandas as pd

    if kind == "csv":
        with fs.open(path, "rb", compression="infer") as fh:
            return pd.read_csv(fh, sep=_separator(path), low_memory=False)
    if fs.isdir(path):
        return pd.read_parquet(path, filesystem=fs)
    with fs.open(path, "rb") as fh:
        return pd.read_parquet(fh)


def read_table(uri: str) -> pd.DataFrame:
    """Read a Parquet file or folder, or a CSV file, whole; raises DataError with a plain reason otherwise."""
    fs, path = _fs(uri)
    return _read_whole(fs, path, _format(uri, fs, path))


def read_within(uri: str, budget_mb: int) -> tuple[pd.DataFrame, Sampling | None]:
    """Read the data whole when it fits the memory budget, else a seeded uniform sample that fits it."""
    from assurance.data import budget

    fs, path = _fs(uri)
    kind = _format(uri, fs, path)
    sep = _separator(path)
    cost = budget.csv_cost(fs, path, sep) if kind == "csv" else budget.parquet_cost(fs, path)
    if cost.fits(budget_mb * budget.MB):
        return _read_whole(fs, path, kind), None
    if kind == "csv":
        frame, sampling = budget.sample_csv(fs, path, sep, cost, budget_mb)
    else:
        frame, sampling = budget.sample_parquet(fs, path, cost, budget_mb)
    return frame, sampling if sampling.rows_kept < sampling.rows_total else None  # an overestimate kept all


def data_uri(record: VersionRecord, role: str) -> tuple[str | None, str]:
    """The URI for reference, current or training data and where it came from (for the report).

    Reference and training data both fall back to the training dataset logged on the source run."""
    tag = f"assurance.{role}"
    if record.tags.get(tag):
        return record.tags[tag], f"tag {tag}"
    if role in ("reference", "training"):
        for ds in record.run_datasets:
            if ds.get("context", "training") in ("training", "train", "") and ds.get("source"):
                return ds["source"], "training dataset logged on the source run"
    return None, f"tag {tag} not set"


def _empty(role: str, uri: str, origin: str, sampling: Sampling | None) -> str:
    if sampling:
        return (
            f"{role} data at {uri} ({origin}) holds {sampling.rows_total:,} rows but the sample that fits the "
            f"{sampling.budget_mb:,} MB memory budget kept none: raise {MEMORY_BUDGET_ENV}"
        )
    return f"{role} data at {uri} ({origin}) has no rows"


def load_dataset(record: VersionRecord, role: str, budget_mb: int) -> Dataset:
    """Read one dataset for a version within the memory budget, turning every problem into `Dataset.error`."""
    uri, origin = data_uri(record, role)
    label = record.tags.get("assurance.label") or None
    if uri is None:
        hint = " and no training dataset is logged on the source run" if role == "reference" else ""
        return Dataset(role, None, error=f"no {role} data: {origin}{hint}", label=label)
    try:
        frame, sampling = read_within(uri, budget_mb)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the same finding for the analyst
        return Dataset(
            role,
            uri,
            error=f"{role} data at {uri} ({origin}) could not be read: {describe_error(exc, 300)}",
            label=label,
        )
    if frame.empty:
        return Dataset(role, uri, error=_empty(role, uri, origin, sampling), label=label, sampling=sampling)
    try:
        fp = fingerprint(uri)
    except Exception:  # noqa: BLE001 - a fingerprint is provenance, not a reason to drop the data
        fp = None
    return Dataset(role, uri, frame=frame, fingerprint=fp, label=label, sampling=sampling)


def reference_of(dataset: Dataset) -> dict[str, str | None]:
    """What identifies a loaded dataset without its rows: enough to read the same data again."""
    return {
        "role": dataset.role,
        "uri": dataset.uri,
        "error": dataset.error,
        "fingerprint": dataset.fingerprint,
        "label": dataset.label,
    }


def reload(ref: dict[str, str | None], budget_mb: int) -> Dataset:
    """Read a dataset again from its reference, refusing data that changed since it was first loaded.

    Within the same budget a sample is drawn again with the same seed, so it holds the same rows.
    """
    role, uri, label = ref["role"], ref["uri"], ref["label"]
    if ref["error"] or not uri:
        return Dataset(role, uri, error=ref["error"], label=label)
    try:
        (frame, sampling), fp = read_within(uri, budget_mb), fingerprint(uri)
    except Exception as exc:  # noqa: BLE001
        return Dataset(
            role,
            uri,
            error=f"{role} data at {uri} could not be read again: {describe_error(exc, 300)}",
            label=label,
        )
    if ref["fingerprint"] and fp != ref["fingerprint"]:
        return Dataset(
            role,
            uri,
            error=f"{role} data at {uri} changed since it was loaded: materialize {role}_data again",
            label=label,
        )
    return Dataset(role, uri, frame=frame, fingerprint=fp, label=label, sampling=sampling)
