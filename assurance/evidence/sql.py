"""Query all evidence with SQL: DuckDB views over the Parquet files of every published run.

    python -m assurance.evidence.sql [--evidence ROOT] [--policy FILE] ["SELECT ..."]

Without a query it opens a small shell (`.tables` lists the views, `.quit` leaves). Views:

- `runs`: one row per published run (model, version, run_id, path, at, recommendation)
- one view per evidence table across runs (`findings`, `drift`, `performance`, `quality`, `slices`,
  `change_control`, ...), each row tagged with model, version, run_id and run_at
- `latest_findings`: the findings of each version's latest run
- `ledger`: the findings ledger (history, status, due, overdue, acceptances, remediation); `acceptances`;
  `decisions`: every decision record (`assurance decide`)
- `inventory`, `kpis`, `alias_history`, `kpi_history`: the last published portfolio snapshot, when there is one

Per-run tables are read lazily by DuckDB from the files themselves (through fsspec for remote roots).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING

import pandas as pd

from assurance.domain.errors import AssuranceError, one_line
from assurance.evidence.history import RunFolder, run_folders, runs_frame
from assurance.evidence.store import PORTFOLIO, EvidenceStore
from assurance.governance.decisions import describe_conditions, read_decisions
from assurance.governance.ledger import build_ledger, read_acceptances
from assurance.policy.model import Policy
from assurance.settings import DEFAULT_EVIDENCE_ROOT, EVIDENCE_ENV, POLICY_ENV, Settings

if TYPE_CHECKING:
    import duckdb

PROVENANCE = ["model", "version", "run_id", "run_at"]
PORTFOLIO_VIEWS = {
    "inventory": "inventory.parquet",
    "kpis": "kpis.parquet",
    "alias_history": "alias_history.parquet",
    "kpi_history": "kpi_history.parquet",
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _location(store: EvidenceStore, rel: str) -> str:
    """A path DuckDB can open: plain for local roots, protocol-qualified for fsspec-registered ones."""
    path = f"{store.base.rstrip('/')}/{rel}"
    return path if store.local else store.fs.unstrip_protocol(path)


def _table_stems(folders: list[RunFolder]) -> list[str]:
    """Names of the top-level Parquet tables any run published, usable as view names."""
    stems = {
        f[: -len(".parquet")] for r in folders for f in r.files if f.endswith(".parquet") and "/" not in f
    }
    return sorted(s for s in stems if _IDENTIFIER.match(s))


def _run_table_view(
    con: duckdb.DuckDBPyConnection, store: EvidenceStore, folders: list[RunFolder], stem: str
) -> None:
    """A view of `<stem>.parquet` across runs, provenance columns first."""
    runs = [r for r in folders if r.has(stem)]
    files = pd.DataFrame(
        {
            "file": [_location(store, f"{r.path}/{stem}.parquet") for r in runs],
            "model": [r.model for r in runs],
            "version": [r.version for r in runs],
            "run_id": [r.run_id for r in runs],
            "run_at": pd.to_datetime([r.at for r in runs], utc=True),
        }
    )
    con.register(f"_files_{stem}", files)
    source = (
        f"read_parquet([{', '.join(_quote(f) for f in files['file'])}], union_by_name=true, filename=true)"
    )
    columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    drop = [c for c in columns if c in PROVENANCE or c == "filename"]
    exclude = f" EXCLUDE ({', '.join(drop)})" if drop else ""
    con.execute(
        f'CREATE VIEW "{stem}" AS SELECT m.model, m.version, m.run_id, m.run_at, t.*{exclude} '
        f"FROM {source} t JOIN _files_{stem} m ON t.filename = m.file"
    )


def connect(root: str, policy: Policy | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over the evidence at `root`."""
    import duckdb

    store = EvidenceStore(root)
    con = duckdb.connect()
    if not store.local:
        con.register_filesystem(store.fs)
    folders = run_folders(store)
    con.register("runs", runs_frame(folders))
    for stem in _table_stems(folders):
        _run_table_view(con, store, folders, stem)
    if "findings" in _table_stems(folders):
        con.execute(
            "CREATE VIEW latest_findings AS SELECT f.* FROM findings f JOIN "
            "(SELECT model, version, max(run_at) AS run_at FROM _files_findings GROUP BY ALL) l "
            "USING (model, version, run_at)"
        )
    con.register("ledger", build_ledger(store, policy))
    con.register("acceptances", read_acceptances(store))
    con.register(
        "decisions",
        read_decisions(store).assign(conditions=lambda f: f["conditions"].map(describe_conditions)),
    )
    for view, name in PORTFOLIO_VIEWS.items():
        rel = f"{PORTFOLIO}/{name}"
        if store.fs.exists(f"{store.base.rstrip('/')}/{rel}"):
            con.execute(
                f'CREATE VIEW "{view}" AS SELECT * FROM read_parquet({_quote(_location(store, rel))})'
            )
    return con


def views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The queryable names (internal helper tables excluded)."""
    names = [row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    return sorted(n for n in names if not n.startswith("_"))


def run_query(con: duckdb.DuckDBPyConnection, query: str, fmt: str = "table") -> str:
    """The result of one statement as text: an aligned table or CSV."""
    frame = con.execute(query).fetchdf()
    if fmt == "csv":
        return frame.to_csv(index=False)
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        return frame.to_string(index=False) + f"\n({len(frame)} rows)\n"


def shell(con: duckdb.DuckDBPyConnection, fmt: str) -> None:
    """Read statements ending in `;` until `.quit` or end of input."""
    import duckdb

    print(f"Views: {', '.join(views(con))}. End statements with ';'. .tables lists views, .quit leaves.")
    buffer: list[str] = []
    while True:
        try:
            line = input("sql> " if not buffer else "...> ")
        except EOFError:
            print()
            return
        if not buffer and line.strip() in (".quit", ".exit"):
            return
        if not buffer and line.strip() == ".tables":
            print("\n".join(views(con)))
            continue
        buffer.append(line)
        if line.rstrip().endswith(";"):
            try:
                print(run_query(con, "\n".join(buffer), fmt), end="")
            except duckdb.Error as exc:
                print(f"error: {exc}")
            buffer = []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m assurance.evidence.sql", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("query", nargs="?", help="one SQL statement; omit for an interactive shell")
    parser.add_argument(
        "--evidence", help=f"evidence root (default: ${EVIDENCE_ENV} or {DEFAULT_EVIDENCE_ROOT})"
    )
    parser.add_argument(
        "--policy",
        help=f"policy file, for the ledger's due dates (default: ${POLICY_ENV} or the packaged one)",
    )
    parser.add_argument("--format", choices=["table", "csv"], default="table")
    args = parser.parse_args(argv)
    import duckdb

    try:
        settings = Settings.from_env().override(evidence_root=args.evidence, policy_path=args.policy)
        con = connect(settings.evidence_root, Policy.load(settings.policy_path))
    except AssuranceError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    if args.query is None:
        shell(con, args.format)
        return 0
    try:
        sys.stdout.write(run_query(con, args.query, args.format))
    except duckdb.Error as exc:
        print(f"error: {exc}\nviews: {', '.join(views(con))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
