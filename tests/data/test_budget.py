"""Data larger than the memory budget is read as a seeded uniform sample that fits it, never whole."""

from __future__ import annotations

import tracemalloc
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from assurance.data.budget import MB
from assurance.data.sources import load_dataset, read_table, read_within, reference_of, reload
from tests.support import make_record

BUDGET_MB = 2
ROWS = 120_000


def frame(n: int, seed: int) -> pd.DataFrame:
    """Rows with an id (to find each kept row in the source), numbers, a category and free text."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "row_id": np.arange(n),
            "amount": rng.gamma(2.0, 50.0, n),
            "count": rng.integers(0, 9, n),
            "segment": rng.choice(["a", "b", "c"], n),
            "note": [f"customer {i} says hello" for i in range(n)],
        }
    )


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """The same rows as Parquet (several row groups), a hive-partitioned Parquet folder, CSV and gzipped CSV:
    about 10x the budget in memory."""
    folder = tmp_path_factory.mktemp("big")
    data = frame(ROWS, 7)
    assert data.memory_usage(deep=True).sum() > 8 * BUDGET_MB * MB
    data.to_parquet(folder / "big.parquet", row_group_size=25_000)
    data.to_parquet(folder / "hive", partition_cols=["segment"])
    data.to_csv(folder / "big.csv", index=False)
    data.to_csv(folder / "big.csv.gz", index=False)
    return data, folder


POOLS: list[pa.MemoryPool] = []  # a pool must outlive every buffer allocated in it, so none is ever dropped


@contextmanager
def peak_memory():
    """Peak bytes live during the block: Python and NumPy allocations (tracemalloc) plus Arrow's pool.

    Arrow allocates outside the Python heap, so the block gets a fresh pool whose own peak is counted;
    allocator caches and shared-library pages (which RSS would add) are left out on purpose.
    """
    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    POOLS.append(pool)
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    tracemalloc.start()
    result = {}
    try:
        yield result
    finally:
        result["bytes"] = tracemalloc.get_traced_memory()[1] + pool.max_memory()
        tracemalloc.stop()
        pa.set_memory_pool(previous)


def test_data_within_the_budget_is_read_whole(tmp_path):
    small = frame(500, 1)
    small.to_parquet(tmp_path / "s.parquet")
    small.to_csv(tmp_path / "s.csv", index=False)
    for name in ("s.parquet", "s.csv"):
        got, sampling = read_within(str(tmp_path / name), BUDGET_MB)
        assert sampling is None
        pd.testing.assert_frame_equal(got, read_table(str(tmp_path / name)))


def test_a_csv_whose_line_breaks_inflate_the_estimate_is_read_whole(tmp_path):
    """Quoted line breaks make a CSV look like more rows than it holds: when every row fits, none is dropped."""
    lines = frame(3000, 2).assign(note=lambda f: f["note"] + "\n" * 40)
    lines.to_csv(tmp_path / "notes.csv", index=False)
    got, sampling = read_within(str(tmp_path / "notes.csv"), BUDGET_MB)
    assert sampling is None
    pd.testing.assert_frame_equal(got, read_table(str(tmp_path / "notes.csv")))


@pytest.mark.parametrize("name", ["big.parquet", "hive", "big.csv", "big.csv.gz"])
def test_data_above_the_budget_is_a_reproducible_uniform_sample_that_fits(big, name):
    _, folder = big
    uri = str(folder / name)
    got, sampling = read_within(uri, BUDGET_MB)
    assert sampling is not None
    assert sampling.rows_total == ROWS and sampling.rows_kept == len(got) and sampling.budget_mb == BUDGET_MB
    assert 0.02 * ROWS < len(got) < 0.5 * ROWS
    assert got.memory_usage(deep=True).sum() <= BUDGET_MB * MB
    # every kept row is a row of the whole read, unchanged, with its columns and their types
    whole = read_table(uri).set_index("row_id").loc[got["row_id"]].reset_index()
    pd.testing.assert_frame_equal(got, whole)
    # uniform over the whole file: each tenth of the rows contributes its share of the sample
    per_tenth = np.bincount(got["row_id"] * 10 // ROWS, minlength=10) / len(got)
    assert np.all(np.abs(per_tenth - 0.1) < 0.02), per_tenth
    again, _ = read_within(uri, BUDGET_MB)
    pd.testing.assert_frame_equal(got, again)


@pytest.mark.parametrize("name", ["big.parquet", "big.csv"])
def test_a_sampled_read_stays_near_the_budget_where_a_whole_read_does_not(big, name):
    _, folder = big
    uri = str(folder / name)
    read_within(uri, BUDGET_MB)  # first use of each code path allocates caches that are not the data's
    with peak_memory() as whole:
        read_table(uri)
    with peak_memory() as sampled:
        read_within(uri, BUDGET_MB)
    assert whole["bytes"] > 8 * BUDGET_MB * MB
    assert sampled["bytes"] < 3 * BUDGET_MB * MB, sampled["bytes"] / MB


def test_a_sampled_dataset_says_so(big):
    _, folder = big
    record = make_record(name="m", version_tags={"assurance.current": str(folder / "big.csv")})
    dataset = load_dataset(record, "current", budget_mb=BUDGET_MB)
    assert dataset.ok and dataset.sampling is not None
    assert dataset.rows == dataset.sampling.rows_kept < dataset.rows_total == ROWS
    assert f"{dataset.rows:,} of {ROWS:,} rows" in dataset.sampling.describe()
    assert dataset.fingerprint  # provenance names the whole file, not the sample
    again = reload(reference_of(dataset), BUDGET_MB)  # a later run that needs the data alone
    assert again.sampling == dataset.sampling
    pd.testing.assert_frame_equal(again.frame, dataset.frame)
