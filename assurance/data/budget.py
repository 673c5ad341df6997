"""Reading data bigger than the memory budget as a seeded uniform sample that fits it.

Before a dataset is read, what its rows will cost in memory is estimated from its first rows and its
row count (Parquet footers; a CSV's size over the length of its first lines). Data within the budget is
read whole as before. Larger data is streamed instead, Parquet record batch by record batch and CSV chunk
by chunk, keeping every row with the same probability (a seeded Bernoulli draw per row), so the kept rows
and the read's own working copies fit the budget and a rerun draws the same sample. The `Sampling` that
comes back goes into the evidence: counts (rows, duplicates) are then the sample's, while rates and
distributions estimate the full data's as any uniform sample does.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from assurance.domain.values import Sampling

if TYPE_CHECKING:
    import pandas as pd

SEED = 0
HEAD_ROWS = 1_000  # rows measured for the memory one row takes
HEAD_BYTES = 1 << 20  # text measured for the length of one CSV line
MAX_BATCH_ROWS = 65_536
MIN_BATCH_ROWS = 1_024
READ_BUFFER = 1 << 20  # Parquet pages stream through a buffer this size; pre-buffering reads whole row groups
MB = 1 << 20


@dataclass(frozen=True)
class Cost:
    """What reading a dataset takes: its rows and the memory each row needs while being read."""

    rows: int
    row_bytes: float

    def fits(self, budget_bytes: int) -> bool:
        return self.rows * self.row_bytes <= budget_bytes

    def rows_within(self, budget_bytes: int) -> int:
        return max(1, int(budget_bytes // max(self.row_bytes, 1.0)))


def _batch_rows(keep: int) -> int:
    """Batches no larger than the sample, so one batch in flight does not double the read's memory."""
    return int(min(MAX_BATCH_ROWS, max(MIN_BATCH_ROWS, keep // 4)))


def _bytes_per_row(frame: pd.DataFrame) -> float:
    return float(frame.memory_usage(deep=True, index=False).sum()) / max(len(frame), 1)


def _parquet_dataset(fs: Any, path: str):
    """The Parquet file or folder as pandas reads it: hive folders (`year=2024/`) give columns too."""
    import pyarrow.dataset as ds

    partitioning = ds.HivePartitioning.discover(infer_dictionary=True)
    return ds.dataset(path, filesystem=fs, format="parquet", partitioning=partitioning)


def _parquet_file(fh: Any):
    """Pages stream through a small buffer: pre-buffering, pyarrow's default, reads a whole row group."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(fh, buffer_size=READ_BUFFER, pre_buffer=False)


def parquet_cost(fs: Any, path: str) -> Cost:
    """Rows from the footers; per row, the Arrow batch plus the pandas frame made from it (both live
    while a table is converted)."""
    dataset = _parquet_dataset(fs, path)
    rows = dataset.count_rows()
    for file in dataset.files:
        with fs.open(file, "rb") as fh:
            head = next(_parquet_file(fh).iter_batches(batch_size=HEAD_ROWS), None)
        if head is not None and head.num_rows:
            return Cost(rows, head.nbytes / head.num_rows + _bytes_per_row(head.to_pandas()))
    return Cost(rows, 0.0)


def _with_partition(table: Any, keys: dict[str, Any], schema: Any) -> Any:
    """A file's rows with the values its hive folder names, typed as the dataset types them."""
    import pyarrow as pa

    for field in schema:
        if field.name in keys and field.name not in table.column_names:
            table = table.append_column(field, pa.array([keys[field.name]] * table.num_rows, type=field.type))
    return table


def sample_parquet(fs: Any, path: str, cost: Cost, budget_mb: int) -> tuple[pd.DataFrame, Sampling]:
    """Every row kept with probability budget/need, record batch by record batch, file by file; only
    kept rows stay in memory."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    keep = cost.rows_within(budget_mb * MB)
    share, rng = keep / cost.rows, np.random.default_rng(SEED)
    dataset = _parquet_dataset(fs, path)
    tables = []
    for fragment in dataset.get_fragments():
        with fs.open(fragment.path, "rb") as fh:
            parquet = _parquet_file(fh)
            kept = [
                batch.filter(pa.array(rng.random(batch.num_rows) < share))
                for batch in parquet.iter_batches(batch_size=_batch_rows(keep))
            ]
            table = pa.Table.from_batches(kept, schema=parquet.schema_arrow)
        tables.append(
            _with_partition(table, ds.get_partition_keys(fragment.partition_expression), dataset.schema)
        )
    frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    return frame, Sampling(
        cost.rows, len(frame), "Bernoulli per row over Parquet record batches", SEED, budget_mb
    )


def _open_text(fs: Any, path: str):
    return fs.open(path, "rb", compression="infer")


def _text_bytes(fs: Any, path: str) -> int:
    """The CSV's size as text: the file's size, or for a compressed file its bytes once decompressed."""
    from fsspec.utils import infer_compression

    if infer_compression(path) is None:
        return int(fs.size(path))
    total = 0
    with _open_text(fs, path) as fh:
        for block in iter(lambda: fh.read(MB), b""):
            total += len(block)
    return total


def csv_cost(fs: Any, path: str, sep: str) -> Cost:
    """Rows from the text size over the mean length of the first lines (quoted line breaks only make the
    estimate larger); per row, what parsing holds at once: the text, one offset per field, typed values."""
    import pandas as pd

    with _open_text(fs, path) as fh:
        head = fh.read(HEAD_BYTES)
    line_bytes = len(head) / max(head.count(b"\n"), 1)
    rows = max(int(_text_bytes(fs, path) / line_bytes) - 1, 0)
    with _open_text(fs, path) as fh:
        typed = pd.read_csv(fh, sep=sep, nrows=HEAD_ROWS, low_memory=False)
    return Cost(rows, line_bytes + 8 * typed.shape[1] + _bytes_per_row(typed))


def _chunks(fs: Any, path: str, sep: str, rows: int, **options: Any):
    import pandas as pd

    with _open_text(fs, path) as fh:
        yield from pd.read_csv(fh, sep=sep, dtype=str, chunksize=rows, **options)


def sample_csv(fs: Any, path: str, sep: str, cost: Cost, budget_mb: int) -> tuple[pd.DataFrame, Sampling]:
    """Count the rows, then keep each with probability budget/need, chunk by chunk, as text in a temporary
    file that is parsed once at the end: column types are inferred over the whole sample, as a full read
    infers them over the whole file, rather than chunk by chunk, and the kept rows wait on disk, not in memory."""
    import pandas as pd

    keep = cost.rows_within(budget_mb * MB)
    batch = _batch_rows(keep)
    total = sum(len(chunk) for chunk in _chunks(fs, path, sep, batch, usecols=[0]))
    share, rng = keep / max(total, 1), np.random.default_rng(SEED)
    with tempfile.TemporaryFile() as spool:
        for i, chunk in enumerate(_chunks(fs, path, sep, batch)):
            chunk[rng.random(len(chunk)) < share].to_csv(spool, index=False, header=i == 0)
        spool.seek(0)
        frame = pd.read_csv(spool, low_memory=False)
    return frame, Sampling(total, len(frame), "Bernoulli per row over CSV chunks", SEED, budget_mb)
