"""Model names that collide with the product's folders or look like paths, through `assurance run` and the
portfolio: evidence stays inside the root, one folder per model, and every name shows as typed.

MLflow refuses `..` itself (and any name starting with `..`), so the climbing attempt is a slash
lookalike followed by `..`, which MLflow accepts.
"""

import html
import json
from pathlib import Path

import pandas as pd
import pytest

from assurance.cli.main import main
from assurance.evidence.history import run_folders
from assurance.evidence.store import PORTFOLIO, EvidenceStore, safe_segment
from tests.conftest import FEATURES, LABEL, fit_model, make_frame

NAMES = [
    PORTFOLIO,  # the product's own portfolio folder
    "\u2215..",  # DIVISION SLASH then `..`: `/..` wherever the lookalike is taken for a slash
    "churn\uff0feu <b>",  # FULLWIDTH SOLIDUS, and markup that reports must escape
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """One version of each awkward model in a sqlite registry: its URI, an evidence root, each version."""
    from assurance.demo.registry_builder import embedded_tracking_uri, register_version

    root = tmp_path_factory.mktemp("awkward")
    uri = embedded_tracking_uri(root)
    reference = make_frame(600, 1)
    model = fit_model(reference)
    common = {"label": LABEL, "features": FEATURES, "data_dir": root / "data", "tracking_uri": uri}
    versions = {
        name: register_version(
            name, model, reference, make_frame(600, 2), model_tags={"owner": "risk-team"}, **common
        )
        for name in NAMES
    }
    return uri, root / "evidence", versions


def test_awkward_names_get_their_own_folders_inside_the_root(registry, capsys, tmp_path):
    uri, evidence, versions = registry
    docs = {}
    for name in NAMES:
        args = ["run", "--tracking-uri", uri, "--model", name, "--evidence", str(evidence), "--json"]
        assert main([*args, "--quiet"]) == 0
        docs[name] = json.loads(capsys.readouterr().out)
    assert {d["model"] for d in docs.values()} == set(NAMES)
    assert all(f["model"] == name for name, d in docs.items() for f in d["findings"])
    everything = [p.resolve() for p in evidence.rglob("*")]
    assert everything and all(p.is_relative_to(evidence.resolve()) for p in everything)
    folders = {p.name for p in evidence.iterdir()}
    assert folders == {safe_segment(n) for n in NAMES} and len(folders) == len(NAMES)

    store = EvidenceStore(str(evidence))
    assert sorted(r.model for r in run_folders(store)) == sorted(NAMES)
    for name, doc in docs.items():
        rel = store.latest_run_path(name, versions[name])
        assert doc["evidence_dir"].endswith(rel) and store.verify(rel) == []
        assert store.read_manifest(rel)["model"] == name
        assert f"report: {name} version" in store.read_bytes(f"{rel}/report.md").decode()
        page = store.read_bytes(f"{rel}/report.html").decode()
        assert html.escape(name) in page and "<b>" not in page

    assert main(["status", "--tracking-uri", uri, "--evidence", str(evidence), "--publish"]) == 0
    posture = capsys.readouterr().out
    assert all(name in posture for name in NAMES)
    portfolio = evidence / PORTFOLIO
    assert (portfolio / "report.html").exists()
    journals = {"kpi_history", "acceptances", "decisions", "remediation", "alerts"}
    assert {p.name for p in portfolio.iterdir() if p.is_dir()} <= journals  # no model's runs in here
    assert sorted(pd.read_parquet(portfolio / "inventory.parquet")["model"]) == sorted(NAMES)

    climber = NAMES[1]
    export = ["export", climber, versions[climber], "--evidence", str(evidence), "--out", str(tmp_path)]
    assert main(export) == 0
    bundle = Path(capsys.readouterr().out.strip())
    assert bundle.parent == tmp_path and main(["verify", str(bundle)]) == 0
