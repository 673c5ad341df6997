"""Fixtures the Dagster graph tests share."""

import dagster as dg
import pytest

from assurance.evidence.store import EvidenceStore
from assurance.settings import Settings


@pytest.fixture(scope="session")
def two_versions(small_registry, tmp_path_factory):
    """The healthy and the broken version materialized into one sqlite Dagster instance, as in `dagster dev`,
    one run each: the instance, the asset graph, their partition keys and the evidence store."""
    from assurance.cli.launcher import run_version
    from assurance.definitions import build_definitions

    root = tmp_path_factory.mktemp("two_versions")
    settings = Settings(tracking_uri=small_registry.tracking_uri, evidence_root=str(root / "evidence"))
    with dg.instance_for_test(temp_dir=str(root), set_dagster_home=False) as instance:
        for version in (small_registry.healthy, small_registry.broken):
            assert run_version(small_registry.model, version, settings, instance).success
        keys = [f"{small_registry.model}/{v}" for v in (small_registry.healthy, small_registry.broken)]
        yield (
            instance,
            build_definitions(settings).resolve_asset_graph(),
            keys,
            EvidenceStore(settings.evidence_root),
        )
