import pandas as pd
import pytest

from assurance.data.sources import fingerprint, load_dataset, read_table
from assurance.domain.values import VersionRecord
from tests.support import make_record


def rec(**tags) -> VersionRecord:
    return make_record(name="m", version_tags=tags)


@pytest.fixture
def frame():
    return pd.DataFrame({"a": [1.0, 2.0, None], "b": ["x", "y", "z"]})


def test_reads_parquet_csv_and_folders(tmp_path, frame):
    frame.to_parquet(tmp_path / "d.parquet")
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "dir").mkdir()
    frame.iloc[:2].to_parquet(tmp_path / "dir" / "part-0.parquet")
    frame.iloc[2:].to_parquet(tmp_path / "dir" / "part-1.parquet")
    for uri in (str(tmp_path / "d.parquet"), (tmp_path / "d.csv").as_uri(), str(tmp_path / "dir")):
        got = read_table(uri)
        assert got.shape == frame.shape, uri
        assert got["b"].tolist() == ["x", "y", "z"]


def test_fingerprint_follows_content(tmp_path, frame):
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    first = fingerprint(str(path))
    frame.assign(a=0).to_csv(path, index=False)
    assert fingerprint(str(path)) != first


@pytest.mark.parametrize(
    "tags,needle",
    [
        ({}, "tag assurance.current not set"),
        ({"assurance.current": "/nonexistent/x.parquet"}, "nothing exists"),
        ({"assurance.current": "TMP/data.json"}, "neither Parquet"),
        ({"assurance.current": "TMP/empty.csv"}, "could not be read"),
    ],
)
def test_problems_become_dataset_errors(tmp_path, tags, needle):
    (tmp_path / "data.json").write_text("{}")
    (tmp_path / "empty.csv").write_text("")
    tags = {k: v.replace("TMP", str(tmp_path)) for k, v in tags.items()}
    ds = load_dataset(rec(**tags), "current", budget_mb=64)
    assert not ds.ok
    assert needle in ds.error


def test_reference_falls_back_to_logged_training_dataset(tmp_path, frame):
    frame.to_parquet(tmp_path / "train.parquet")
    record = rec(**{"assurance.label": "a"})
    record.run_datasets = [
        {"name": "train", "source": str(tmp_path / "train.parquet"), "context": "training"}
    ]
    ds = load_dataset(record, "reference", budget_mb=64)
    assert ds.ok and ds.rows == 3 and ds.label == "a" and ds.has_label


def test_a_file_uri_with_encoded_spaces_and_percent_is_read(tmp_path):
    import pandas as pd

    from assurance.data.sources import fingerprint, read_table

    folder = tmp_path / "q3 data 100%"
    folder.mkdir()
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet(folder / "ref.parquet")
    uri = (folder / "ref.parquet").as_uri()
    assert "%20" in uri and "%25" in uri
    assert read_table(uri)["a"].tolist() == [1, 2, 3]
    assert len(fingerprint(uri)) == 64
