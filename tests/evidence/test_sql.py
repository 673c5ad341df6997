from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from assurance.domain.findings import Finding, findings_frame
from assurance.evidence.sql import connect, main, views
from assurance.evidence.store import EvidenceStore, new_run_id, parquet_bytes
from assurance.policy.model import Policy
from tests.support import make_record

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DRIFT = Finding("drift", "drift.feature", "amount", "medium", "Amount drifted.")


@pytest.fixture
def root(tmp_path):
    store = EvidenceStore(str(tmp_path / "ev"))
    for day, (model, findings) in enumerate([("it's", [DRIFT]), ("it's", []), ("b", [DRIFT])]):
        at = T0 + timedelta(days=day)
        record = make_record(name=model)
        files = {
            "findings.parquet": parquet_bytes(findings_frame(findings, record, Policy(), now=at)),
            "drift.parquet": parquet_bytes(pd.DataFrame({"feature": ["amount"], "psi": [0.1 * (day + 1)]})),
        }
        store.publish_run(model, "1", new_run_id(at), files, {"finished_at": at.isoformat()})
    return store.root


def test_views_over_runs_with_provenance(root):
    con = connect(root)
    assert {"runs", "findings", "drift", "latest_findings", "ledger", "acceptances"} <= set(views(con))
    drift = con.execute("SELECT model, version, psi FROM drift ORDER BY run_at").fetchall()
    assert drift == [("it's", "1", 0.1), ("it's", "1", 0.2), ("b", "1", pytest.approx(0.3))]
    # the latest run of it's reported nothing: its finding is closed and not among the latest
    assert con.execute("SELECT model FROM latest_findings").fetchall() == [("b",)]
    status = dict(con.execute("SELECT model, status FROM ledger").fetchall())
    assert status == {"it's": "closed", "b": "open"}


def test_command_line_query_and_errors(root, capsys):
    assert main(["--evidence", root, "--format", "csv", "SELECT count(*) AS n FROM runs"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "3"]
    assert main(["--evidence", root, "SELECT * FROM missing_view"]) == 2
    assert "views:" in capsys.readouterr().err


def test_empty_root(tmp_path):
    con = connect(str(tmp_path / "nothing"))
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM ledger").fetchone() == (0,)


def test_remote_roots_are_read_through_fsspec():
    store = EvidenceStore("memory://sql-test/evidence")
    files = {"drift.parquet": parquet_bytes(pd.DataFrame({"psi": [0.5]}))}
    store.publish_run("m", "2", new_run_id(T0), files, {"finished_at": T0.isoformat()})
    con = connect(store.root)
    assert con.execute("SELECT model, version, psi FROM drift").fetchall() == [("m", "2", 0.5)]
