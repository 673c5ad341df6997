"""The challenger comparison in the Dagster graph: the champion's model comes from a real sqlite registry."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from assurance.settings import Settings
from tests import support as sv

SELECTION = ["model_version", "reference_data", "current_data", "predictions", "challenger"]


@dataclass
class Versions:
    tracking_uri: str
    root: Path


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Versions:
    """`pair`: v1 behind `champion`, v2 trained on scrambled labels; `orphan`: v1 behind `champion` with its
    model artifacts gone, v2 healthy."""
    from assurance.demo.registry_builder import embedded_tracking_uri, register_version
    from assurance.registry.client import Registry

    root = tmp_path_factory.mktemp("challenger_registry")
    uri = embedded_tracking_uri(root)
    reference, current = sv.make_frame(1500, seed=2), sv.make_frame(1500, seed=3)
    common = {
        "label": sv.LABEL,
        "features": sv.FEATURES,
        "data_dir": root / "data",
        "tracking_uri": uri,
        "serialization": "cloudpickle",
        "version_tags": {"assurance.slices": "region"},
    }
    healthy = sv.classifier().fit(
        sv.make_frame(3000, seed=1)[sv.FEATURES], sv.make_frame(3000, seed=1)[sv.LABEL]
    )
    train = sv.make_frame(3000, seed=4)
    scrambled = sv.classifier().fit(
        train[sv.FEATURES], np.random.default_rng(5).permutation(train[sv.LABEL].to_numpy())
    )
    register_version("pair", healthy, reference, current, aliases=["champion"], **common)
    register_version("pair", scrambled, reference, current, aliases=["production"], **common)
    register_version("orphan", healthy, reference, current, aliases=["champion"], **common)
    register_version("orphan", healthy, reference, current, **common)
    lost = Registry(uri)
    download = lost.model_download_uri(lost.version_record("orphan", "1"))
    shutil.rmtree(Path(download.removeprefix("file://")))
    return Versions(uri, root)


def materialize(registry: Versions, tmp_path, model: str):
    import resources
    from assets.analyses import analysis_assets
    from assets.version import current_data, model_version, predictions, reference_data

    settings = Settings(tracking_uri=registry.tracking_uri, evidence_root=str(tmp_path / "evidence"))
    instance = dg.DagsterInstance.ephemeral()
    key = f"{model}/2"
    instance.add_dynamic_partitions("model_versions", [key])
    result = dg.materialize(
        [model_version, reference_data, current_data, predictions, *analysis_assets()],
        selection=SELECTION,
        partition_key=key,
        instance=instance,
        resources=resources.build_resources(settings),
    )
    assert result.success
    checks = {
        e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.path == ["challenger"]
    }
    return result.output_for_node("challenger"), checks


def test_version_2_is_compared_with_the_champion_version_1(registry, tmp_path):
    section, checks = materialize(registry, tmp_path, "pair")
    assert section.skipped == []
    frame = section.tables["challenger"].set_index("metric")
    assert set(frame["champion_version"]) == {"1"} and set(frame["role"]) == {"current"}
    assert frame.loc["roc_auc", "champion"] > 0.8 > 0.6 > frame.loc["roc_auc", "challenger"]
    assert {"champion_roc_auc", "challenger_roc_auc", "same_decision"} <= set(section.metrics)
    assert "roc_auc" in {f.subject for f in section.findings if f.check == "challenger.worse"}
    assert "| metric | champion v1 | challenger v2 |" in section.summary
    assert set(section.tables["challenger_slices"]["slice"]) == {f"region={r}" for r in sv.REGIONS}
    assert checks["challenger_worse"].passed is False
    assert checks["challenger_worse"].severity == dg.AssetCheckSeverity.ERROR


def test_a_champion_whose_model_is_gone_is_a_skipped_comparison(registry, tmp_path):
    section, checks = materialize(registry, tmp_path, "orphan")
    assert section.findings == [] and section.tables == {}
    assert len(section.skipped) == 1
    assert "the champion, version 1 behind 'champion', could not be loaded" in section.skipped[0]
    assert checks["challenger_worse"].passed is True
    assert "could not be loaded" in checks["challenger_worse"].metadata["not_run"].value
