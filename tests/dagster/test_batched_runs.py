"""A backfill's batch (one run over several versions) records for each version what its own run would."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest
from dagster._core.event_api import PartitionKeyFilter

from assurance.domain.values import RANGE_END_TAG, RANGE_START_TAG
from assurance.evidence.store import EvidenceStore
from assurance.settings import Settings

# Metadata that names the run or its evidence folder, or times it, so it differs between any two runs.
RUN_SPECIFIC = {"run_id", "evidence_dir", "report", "mlflow_run", "path", "tags", "summary"}


def _comparable(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items() if k not in RUN_SPECIFIC and not k.startswith("seconds")}


@pytest.fixture(scope="module")
def batch(small_registry, two_versions, tmp_path_factory):
    """The versions of `two_versions`, assured in one run as a backfill's batch."""
    from assurance.cli.launcher import run_versions

    _, _, keys, _ = two_versions
    root = tmp_path_factory.mktemp("batch")
    settings = Settings(tracking_uri=small_registry.tracking_uri, evidence_root=str(root / "evidence"))
    with dg.instance_for_test(temp_dir=str(root), set_dagster_home=False) as instance:
        outcomes = run_versions(keys, settings, instance)
        assert all(o.success for o in outcomes.values()), [o.error for o in outcomes.values()]
        yield instance, EvidenceStore(settings.evidence_root)


def test_a_batch_is_one_run_of_both_versions(two_versions, batch):
    _, _, keys, _ = two_versions
    [run] = batch[0].get_runs()
    assert run.tags[RANGE_START_TAG] == keys[0]
    assert run.tags[RANGE_END_TAG] == keys[-1]


def _published(store: EvidenceStore, key: str) -> tuple[str, list, set]:
    name, version = key.rsplit("/", 1)
    rel = store.latest_run_path(name, version)
    assert store.verify(rel) == []
    manifest = store.read_manifest(rel)
    findings = pd.read_parquet(f"{store.base}/{rel}/findings.parquet")
    rows = sorted(map(tuple, findings[["finding_id", "check", "subject", "severity"]].values.tolist()))
    return manifest["recommendation"], rows, {f["path"] for f in manifest["files"]}


def test_each_version_publishes_the_same_recommendation_findings_and_files(two_versions, batch):
    _, _, keys, single_store = two_versions
    published = {key: (_published(single_store, key), _published(batch[1], key)) for key in keys}
    for key, (alone, batched) in published.items():
        assert batched == alone, key
    (healthy, _), (broken, _) = published.values()
    assert healthy[1] != broken[1]  # two different outcomes, each kept to its version


def _materialization(instance, asset, key):
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[key]), limit=1
    ).records
    return record


def test_each_version_gets_its_own_materialization_and_metadata(two_versions, batch):
    single, graph, keys, _ = two_versions
    assets = [k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None]
    assert len(assets) > 15
    for asset in assets:
        for key in keys:
            alone, batched = (
                _materialization(i, asset, key).asset_materialization for i in (single, batch[0])
            )
            assert batched.partition == key
            assert batched.metadata.keys() == alone.metadata.keys(), (asset, key)
            assert _comparable(batched.metadata) == _comparable(alone.metadata), (asset, key)


def test_each_version_gets_its_own_check_results_against_its_materialization(two_versions, batch):
    single, graph, keys, _ = two_versions
    outcomes = {"single": [], "batch": []}
    for check in graph.asset_check_keys:
        for key in keys:
            for name, instance in (("single", single), ("batch", batch[0])):
                [record] = instance.event_log_storage.get_asset_check_execution_history(
                    check, limit=1, partition_filter=PartitionKeyFilter(key=key)
                )
                evaluation = record.evaluation
                assert evaluation.partition == key
                target = evaluation.target_materialization_data
                assert (
                    target
                    and target.storage_id == _materialization(instance, check.asset_key, key).storage_id
                )
                outcomes[name].append((check, key, evaluation.passed, evaluation.severity))
    assert outcomes["batch"] == outcomes["single"]
    assert any(not passed for *_, passed, _ in outcomes["batch"])
    # no result recorded without a version: the UI would show it for every version
    for check in graph.asset_check_keys:
        history = batch[0].event_log_storage.get_asset_check_execution_history(check, limit=10)
        assert all(r.partition in keys for r in history)
