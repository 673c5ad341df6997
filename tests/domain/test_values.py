"""Partition keys, and the batches of versions one run covers."""

from assurance.domain.values import RANGE_END_TAG, RANGE_START_TAG, consecutive, covered, version_order

ORDER = ["m/1", "m/2", "m/3", "n/1", "m/4", "m/5"]


def test_versions_are_batched_only_where_they_are_neighbouring_partitions():
    assert consecutive(["m/5", "m/1", "m/2", "m/3", "m/4"], ORDER, 2) == [
        ["m/1", "m/2"],
        ["m/3"],
        ["m/4", "m/5"],
    ]
    assert consecutive(["m/1", "n/1"], ORDER, 10) == [["m/1"], ["n/1"]]
    assert consecutive(["n/1"], ORDER, 10) == [["n/1"]]


def test_a_run_covers_its_partition_or_its_range():
    assert covered({"dagster/partition": "m/2"}, ORDER) == ["m/2"]
    assert covered({RANGE_START_TAG: "m/3", RANGE_END_TAG: "m/4"}, ORDER) == ["m/3", "n/1", "m/4"]
    assert covered({RANGE_START_TAG: "gone/1", RANGE_END_TAG: "m/4"}, ORDER) == []
    assert covered({}, ORDER) == []


def test_versions_sort_by_model_then_number():
    assert sorted(["m/10", "n/1", "m/9", "m/2"], key=version_order) == ["m/2", "m/9", "m/10", "n/1"]
