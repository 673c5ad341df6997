"""A version whose data is several times the memory budget is assured on a seeded sample, and says so."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assurance.evidence.store import EvidenceStore
from assurance.settings import Settings
from tests.conftest import FEATURES, LABEL, fit_model, make_frame

BUDGET_MB = 2
ROWS = 80_000  # about 12 MB in memory per dataset: six times the budget


@pytest.fixture(scope="module")
def big_version(tmp_path_factory):
    """A registry of its own: reference as Parquet and current as CSV, both far above the budget."""
    from assurance.demo.registry_builder import embedded_tracking_uri, register_version

    root = tmp_path_factory.mktemp("budget")
    uri = embedded_tracking_uri(root)
    reference, current = make_frame(ROWS, 1), make_frame(ROWS, 2)
    assert min(f.memory_usage(deep=True).sum() for f in (reference, current)) > 5 * BUDGET_MB * 2**20
    current_csv = root / "current.csv"
    current.to_csv(current_csv, index=False)
    version = register_version(
        "budgeted",
        fit_model(reference.head(3000)),
        reference,
        None,
        label=LABEL,
        features=FEATURES,
        data_dir=root / "data",
        tracking_uri=uri,
        model_tags={"owner": "retention-team"},
        version_tags={"assurance.current": current_csv.as_uri()},
        serialization="cloudpickle",
    )
    return uri, version, root


def test_data_above_the_budget_is_assured_on_a_sample_recorded_in_the_evidence(big_version, tmp_path):
    from assurance.cli.launcher import run_version

    uri, version, _ = big_version
    settings = Settings(tracking_uri=uri, evidence_root=str(tmp_path / "ev"), data_memory_budget_mb=BUDGET_MB)
    instance = dg.DagsterInstance.ephemeral()
    outcome = run_version("budgeted", version, settings, instance)
    assert outcome.success, outcome.error

    store = EvidenceStore(settings.evidence_root)
    rel = store.latest_run_path("budgeted", version)
    assert store.verify(rel) == []
    folder = Path(store.base) / rel
    data = json.loads((folder / "manifest.json").read_text())["data"]
    for role in ("reference", "current"):
        sampling = data[role]["sampling"]
        assert sampling["rows_total"] == ROWS and sampling["budget_mb"] == BUDGET_MB
        assert 0 < sampling["rows_kept"] == data[role]["rows"] < ROWS
        assert sampling["seed"] is not None and sampling["method"]

    report = (folder / "report.md").read_text()
    kept = data["current"]["sampling"]["rows_kept"]
    assert f"{kept:,} of {ROWS:,} rows" in report and "memory budget" in report
    quality = pd.read_parquet(folder / "quality.parquet")
    duplicates = quality[quality["expectation"] == "expect_no_duplicate_rows"]
    assert set(duplicates["role"]) == {"reference", "current"}
    assert duplicates["details"].str.contains(f"sampled from {ROWS:,}").all()
    assert "its row and duplicate counts are the sample's" in report
    assert "so the shared share is a lower bound" in report  # leakage: reference rows left unread

    event = instance.get_latest_materialization_event(dg.AssetKey("current_data"))
    metadata = event.asset_materialization.metadata
    assert metadata["sampled"].value is True and metadata["rows_total"].value == ROWS
    assert metadata["dagster/row_count"].value == kept
