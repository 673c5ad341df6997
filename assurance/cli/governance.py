"""Governance subcommands of `assurance`: status, accept, export and verify.

`status` prints the portfolio posture; `accept` records a risk acceptance in the evidence store;
`export` writes a version's audit bundle and prints its path (with `--pdf`, also the report as a PDF
beside it); `verify` checks a bundle offline and exits 1 saying what is wrong. Kept apart from
`assurance.cli.main` so the run commands stay small. A problem the user can fix raises an
`AssuranceError`, which `main` prints as one `error:` line with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from assurance.cli.exit_codes import EXIT_FAILED, EXIT_OK
from assurance.registry.client import Registry
from assurance.settings import Settings

EVIDENCE_HELP = "evidence root folder or URI (default ASSURANCE_EVIDENCE_ROOT or ./evidence)"


def _store(settings: Settings):
    from assurance.evidence.store import EvidenceStore

    return EvidenceStore(settings.evidence_root)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from assurance.evidence.store import PORTFOLIO
    from assurance.governance.portfolio import (
        build_portfolio,
        posture_text,
        publish_portfolio,
        record_from_ref,
    )
    from assurance.policy.model import Policy

    policy, store = Policy.load(settings.policy_path), _store(settings)
    refs = Registry(settings.tracking_uri).snapshot()
    portfolio = build_portfolio([record_from_ref(r) for r in refs], store, policy)
    print(posture_text(portfolio), end="")
    if args.publish:
        publish_portfolio(store, portfolio)
        print(f"\nPortfolio published to {store.root.rstrip('/')}/{PORTFOLIO}/")
    return EXIT_OK


def cmd_accept(args: argparse.Namespace, settings: Settings) -> int:
    from assurance.governance.ledger import accept

    records = accept(
        _store(settings), args.finding_id, args.reason, args.expires, args.by, version=args.version
    )
    for r in records:
        print(
            f"Accepted {r['finding_id']} for {r['model']} version {r['version']} until {r['expires']} (by {r['by']})."
        )
    return EXIT_OK


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from assurance.evidence.bundle import latest_files, write_bundle, write_pdf

    rel, files = latest_files(_store(settings), args.model, args.version)
    bundle = write_bundle(args.model, args.version, rel, files, args.out)
    print(bundle)
    if args.pdf:
        print(write_pdf(args.model, args.version, rel, files, bundle.with_suffix(".pdf")))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from assurance.evidence.bundle import verify

    problems = verify(args.bundle)
    if not problems:
        print(f"OK: {args.bundle} is intact; every file matches its manifest.")
        return EXIT_OK
    print(f"FAILED: {args.bundle} has {len(problems)} problem(s):", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return EXIT_FAILED


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the governance subcommands on the `assurance` parser."""
    status = sub.add_parser("status", help="print the portfolio posture: KPIs, versions, overdue findings")
    status.add_argument("--tracking-uri", help="MLflow tracking URI (default MLFLOW_TRACKING_URI)")
    status.add_argument("--evidence", help=EVIDENCE_HELP)
    status.add_argument("--policy", help="policy YAML merged over the default (default ASSURANCE_POLICY)")
    status.add_argument("--publish", action="store_true", help="also write the _portfolio/ tables and report")
    status.set_defaults(func=cmd_status)

    acc = sub.add_parser("accept", help="record a risk acceptance for an open finding, until it expires")
    acc.add_argument("finding_id", metavar="FINDING_ID")
    acc.add_argument("--reason", required=True, help="why the risk is acceptable until the expiry")
    acc.add_argument("--expires", required=True, help="ISO date (through that day, UTC) or timestamp")
    acc.add_argument(
        "--by", default=getpass.getuser(), help="who accepts the risk (default: the current user)"
    )
    acc.add_argument("--version", help="only this version (default: every version the finding is open in)")
    acc.add_argument("--evidence", help=EVIDENCE_HELP)
    acc.set_defaults(func=cmd_accept)

    exp = sub.add_parser(
        "export", help="write one audit bundle of a version's latest evidence; prints its path"
    )
    exp.add_argument("model", metavar="MODEL")
    exp.add_argument("version", metavar="VERSION")
    exp.add_argument("--evidence", help=EVIDENCE_HELP)
    exp.add_argument("--out", help="archive file or folder (default: the current directory)")
    exp.add_argument(
        "--pdf", action="store_true", help="also write the version report as a PDF beside the archive"
    )
    exp.set_defaults(func=cmd_export)

    ver = sub.add_parser("verify", help="check an audit bundle offline; exits 1 and says what is wrong")
    ver.add_argument("bundle", metavar="BUNDLE")
    ver.set_defaults(func=cmd_verify)
