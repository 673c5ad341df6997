"""The `assurance` command line. Defaults come from the environment so one command serves the embedded
demo and a real deployment: `Settings.from_env()` reads MLFLOW_TRACKING_URI, ASSURANCE_EVIDENCE_ROOT,
ASSURANCE_POLICY and the rest once; the options (`--tracking-uri`, `--evidence`, `--policy`) override them,
and every command gets the result explicitly."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from assurance.cli.exit_codes import EXIT_ERROR, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from assurance.domain.errors import AssuranceError, RunFailedError, one_line
from assurance.domain.values import partition_key
from assurance.settings import Settings

FAIL_ON = {"hold": {"hold"}, "approve_with_conditions": {"hold", "approve_with_conditions"}}


def settings_for(args: argparse.Namespace) -> Settings:
    """The environment's settings with the command's options on top (an option not given keeps the environment's)."""
    return Settings.from_env().override(
        tracking_uri=getattr(args, "tracking_uri", None),
        evidence_root=getattr(args, "evidence", None),
        policy_path=getattr(args, "policy", None),
    )


def _configure_logging(args: argparse.Namespace) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    progress = logging.getLogger("assurance.progress")
    progress.handlers[:] = [handler]
    progress.setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    progress.propagate = False


def _preflight(settings: Settings) -> None:
    """Fail before any work when the product itself cannot work: bad policy, a registry that does not exist,
    an unwritable evidence root (checked last: checking creates the root)."""
    from assurance.evidence.store import EvidenceStore
    from assurance.policy.model import Policy
    from assurance.registry.client import require_existing_sqlite

    Policy.load(settings.policy_path)
    require_existing_sqlite(settings.tracking_uri)
    EvidenceStore(settings.evidence_root).check_writable()


def _resolve(settings: Settings, name: str, version: str | None, alias: str | None) -> str:
    from assurance.registry.client import Registry

    return Registry(settings.tracking_uri).resolve_version(name, version, alias)


def _findings_json(frame) -> list[dict]:
    if frame is None or len(frame) == 0:
        return []
    out = frame.copy()
    for col in ("first_seen", "last_seen", "due"):
        out[col] = out[col].map(lambda t: None if t is None or t != t else t.isoformat())
    return json.loads(out.to_json(orient="records", date_format="iso"))


def _assure(settings: Settings, name: str, version: str):
    from assurance.cli.launcher import run_version

    outcome = run_version(name, version, settings)
    if not outcome.success:
        raise RunFailedError(f"assurance of {name}/{version} could not complete: {outcome.error}")
    return outcome


def _assure_all(settings: Settings, keys: list[str]) -> None:
    from assurance.cli.launcher import run_versions

    failed = {k: o.error for k, o in run_versions(keys, settings).items() if not o.success}
    if failed:
        key, error = next(iter(failed.items()))
        others = f" (and {len(failed) - 1} more versions of its run)" if len(failed) > 1 else ""
        raise RunFailedError(f"assurance of {key}{others} could not complete: {error}")


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    _preflight(settings)
    version = _resolve(settings, args.model, args.version, args.alias)
    print(f"Assuring {args.model} version {version} ...", file=sys.stderr)
    outcome = _assure(settings, args.model, version)
    summary = outcome.summary
    if args.json:
        doc = {
            "model": summary["model"],
            "version": summary["version"],
            "recommendation": summary["recommendation"],
            "reasons": summary["reasons"],
            "evidence_dir": summary["evidence_dir"],
            "findings": _findings_json(outcome.findings),
        }
        print(json.dumps(doc, indent=2))
    else:
        _print_outcome(summary, outcome.findings)
    return EXIT_FAILED if args.fail_on and summary["recommendation"] in FAIL_ON[args.fail_on] else EXIT_OK


def _print_outcome(summary: dict, findings) -> None:
    print(f"\n{summary['model']} version {summary['version']}: {summary['recommendation'].upper()}")
    for reason in summary["reasons"][:10]:
        print(f"  - {reason}")
    if len(summary["reasons"]) > 10:
        print(f"  ... and {len(summary['reasons']) - 10} more")
    print(
        f"  findings: {0 if findings is None else len(findings)}; report: {summary['evidence_dir']}/report.html"
    )


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from assurance.demo.generator import build_demo
    from assurance.demo.story import record_governance
    from assurance.evidence.store import EvidenceStore
    from assurance.registry.client import Registry

    root = Path(args.root).resolve()
    home = Path(settings.dagster_home or root / "dagster_home").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    shipped = Path(__file__).resolve().parents[2] / "dagster.yaml"
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(
            shipped.read_text() if shipped.exists() else "telemetry:\n  enabled: false\n"
        )
    print(f"Building the demo registry under {root} ...", file=sys.stderr)
    demo = build_demo(root, progress=lambda m: print(f"  {m}", file=sys.stderr))
    settings = settings.override(tracking_uri=demo.tracking_uri, dagster_home=str(home))
    _preflight(settings)
    print(f"Assuring {len(demo.versions)} versions, as a backfill does ...", file=sys.stderr)
    _assure_all(settings, [partition_key(name, version) for name, version in demo.versions])
    print("Refreshing the portfolio (inventory, findings ledger, KPIs) ...", file=sys.stderr)
    _refresh_portfolio(settings)
    print("Recording the review committee's decision and an owner's manual closure ...", file=sys.stderr)
    for line in record_governance(EvidenceStore(settings.evidence_root), Registry(settings.tracking_uri)):
        print(f"  {line}", file=sys.stderr)
    _print_posture(settings)
    print(
        "\nBrowse it in the Dagster UI:\n"
        f"  DAGSTER_HOME={home} MLFLOW_TRACKING_URI={demo.tracking_uri} "
        "dagster dev -w workspace.yaml"
    )
    return EXIT_OK


def _refresh_portfolio(settings: Settings):
    from assurance.cli.launcher import run_portfolio

    outcome = run_portfolio(settings)
    if not outcome.success:
        raise RunFailedError(f"the portfolio could not be refreshed: {outcome.error}")
    return outcome


def _print_posture(settings: Settings) -> None:
    """The posture printed from the tables the portfolio job just materialized, not computed twice."""
    from datetime import UTC, datetime

    import pandas as pd

    from assurance.evidence.history import run_folders
    from assurance.evidence.store import PORTFOLIO, EvidenceStore
    from assurance.governance.portfolio import Portfolio, posture_text, read_kpi_history

    outcome = _refresh_portfolio(settings)
    store = EvidenceStore(settings.evidence_root)
    portfolio = Portfolio(
        **outcome.summary,
        alias_history=pd.DataFrame(),
        generated_at=datetime.now(UTC),
        history=read_kpi_history(store),
    )
    print()
    print(posture_text(portfolio), end="")
    print("\nReports:")
    latest = {(r.model, r.version): r for r in sorted(run_folders(store), key=lambda r: r.run_id)}
    for (model, version), run in sorted(latest.items()):
        print(f"  {model} v{version}: {store.root.rstrip('/')}/{run.path}/report.html")
    print(f"  portfolio: {store.root.rstrip('/')}/{PORTFOLIO}/report.html")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assurance", description="Continuous model assurance for MLflow model versions."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="build the embedded demo registry and assure every version in it")
    demo.add_argument(
        "--root", default=".demo", help="folder for the demo registry, data and Dagster home (default .demo)"
    )
    demo.add_argument("--evidence", help="evidence root (default ASSURANCE_EVIDENCE_ROOT or ./evidence)")
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="assure one version of a model in any MLflow registry")
    run.add_argument("--model", required=True, help="registered model name")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--version", help="model version (default: the newest)")
    which.add_argument("--alias", help="assure the version behind this alias, e.g. production")
    run.add_argument("--tracking-uri", help="MLflow tracking URI (default MLFLOW_TRACKING_URI)")
    run.add_argument(
        "--evidence", help="evidence root folder or URI (default ASSURANCE_EVIDENCE_ROOT or ./evidence)"
    )
    run.add_argument("--policy", help="policy YAML merged over the default (default ASSURANCE_POLICY)")
    run.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    run.add_argument(
        "--fail-on", choices=sorted(FAIL_ON), help="exit 1 when the recommendation is this or worse"
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(func=cmd_run)

    from assurance.cli.governance import add_commands

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from assurance.registry.client import CLI_HTTP, mlflow_process_defaults

    args = build_parser().parse_args(argv)
    _configure_logging(args)
    mlflow_process_defaults(CLI_HTTP)
    try:
        return args.func(args, settings_for(args))
    except AssuranceError as exc:  # a problem the user can fix: one line, no traceback
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
