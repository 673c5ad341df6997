"""Governance subcommands of `assurance`: status, accept, decide, assign, close, export and verify.

`status` prints the portfolio posture; `accept` records a risk acceptance in the evidence store; `decide`
records a decision on a version, bound to its latest evidence, and copies it to the version's tags;
`assign` and `close` record a finding's remediation plan and its manual closure; `export` writes a
version's audit bundle and prints its path (with `--pdf`, also the report as a PDF beside it); `verify`
checks a bundle offline and exits 1 saying what is wrong. Kept apart from `assurance.cli.main` so the run
commands stay small. A problem the user can fix raises an `AssuranceError`, which `main` prints as one
`error:` line with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import replace

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
        read_kpi_history,
        record_from_ref,
    )
    from assurance.policy.model import Policy

    policy, store = Policy.load(settings.policy_path), _store(settings)
    refs = Registry(settings.tracking_uri).snapshot()
    portfolio = build_portfolio([record_from_ref(r) for r in refs], store, policy)
    if args.publish:  # first, so the trend printed includes this run
        publish_portfolio(store, portfolio)
        portfolio = replace(portfolio, history=read_kpi_history(store))
    print(posture_text(portfolio), end="")
    if args.publish:
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


def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    from assurance.domain.errors import RegistryError
    from assurance.governance.decisions import decision_tags, describe_conditions, record_decision

    registry = Registry(settings.tracking_uri)
    # a version the registry does not hold fails here, before anything is recorded
    version = registry.resolve_version(args.model, args.version)
    record = record_decision(
        _store(settings), args.model, version, args.decision, args.by, args.reason, args.conditions
    )
    print(
        f"Recorded {record['decision']} of {args.model} version {version} by {record['by']} "
        f"(decision {record['decision_id']}), bound to run {record['run_id']} "
        f"(manifest sha256 {record['manifest_sha256'][:16]}..., which recommended {record['recommendation']})."
    )
    if record["conditions"]:
        print(f"  conditions: {describe_conditions(record['conditions'])}")
    try:
        registry.set_decision_tags(args.model, version, decision_tags(record))
    except RegistryError as exc:
        raise RegistryError(
            f"the decision is recorded in the evidence store, but its assurance.decision tags were not written: {exc}"
        ) from exc
    return EXIT_OK


def cmd_assign(args: argparse.Namespace, settings: Settings) -> int:
    from assurance.governance.remediation import assign

    records = assign(
        _store(settings), args.finding_id, args.to, args.plan, args.by, due=args.due, version=args.version
    )
    for r in records:
        due = f", due {r['due']}" if r["due"] else ""
        print(
            f"Assigned {r['finding_id']} of {r['model']} version {r['version']} to {r['to']}{due}: {r['plan']}"
        )
    return EXIT_OK


def cmd_close(args: argparse.Namespace, settings: Settings) -> int:
    from assurance.governance.remediation import close

    records = close(
        _store(settings),
        args.finding_id,
        args.closure_evidence,
        args.by,
        note=args.note,
        version=args.version,
    )
    for r in records:
        print(
            f"Closed {r['finding_id']} of {r['model']} version {r['version']} (by {r['by']}, evidence "
            f"{r['evidence']}); the next run of the version confirms the closure or reopens the finding."
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

    _add_decide(sub)
    _add_remediation(sub)

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


class _Conditions(argparse.Action):
    """`--condition TEXT [--due DATE]`, repeatable: each `--due` dates the `--condition` just before it."""

    def __call__(self, parser, namespace, values, option_string=None):
        conditions = list(getattr(namespace, self.dest) or [])
        if option_string == "--condition":
            conditions.append({"condition": values, "due": None})
        elif not conditions or conditions[-1]["due"] is not None:
            parser.error("--due dates the --condition just before it: give --condition TEXT first")
        else:
            conditions[-1] = {**conditions[-1], "due": values}
        setattr(namespace, self.dest, conditions)


def _add_decide(sub: argparse._SubParsersAction) -> None:
    from assurance.policy.recommendation import DECISIONS

    dec = sub.add_parser(
        "decide",
        help="record a decision on a version, bound to its latest evidence (also written to its MLflow tags)",
    )
    dec.add_argument("model", metavar="MODEL")
    dec.add_argument("version", metavar="VERSION")
    dec.add_argument("--decision", required=True, choices=DECISIONS)
    dec.add_argument("--by", required=True, help="who decides")
    dec.add_argument("--reason", required=True, help="what the decision rests on")
    dec.add_argument(
        "--condition",
        dest="conditions",
        action=_Conditions,
        default=[],
        metavar="TEXT",
        help="a condition (repeatable)",
    )
    dec.add_argument(
        "--due",
        dest="conditions",
        action=_Conditions,
        help="due date of the --condition before it (ISO date)",
    )
    dec.add_argument("--tracking-uri", help="MLflow tracking URI (default MLFLOW_TRACKING_URI)")
    dec.add_argument("--evidence", help=EVIDENCE_HELP)
    dec.set_defaults(func=cmd_decide)


def _add_remediation(sub: argparse._SubParsersAction) -> None:
    asg = sub.add_parser("assign", help="assign an open finding to someone, with a plan and a due date")
    asg.add_argument("finding_id", metavar="FINDING_ID")
    asg.add_argument("--to", required=True, help="who remediates the finding")
    asg.add_argument("--plan", required=True, help="how it will be remediated")
    asg.add_argument("--due", help="ISO date (through that day, UTC) or timestamp; default: the policy's SLA")
    asg.add_argument("--by", default=getpass.getuser(), help="who assigns it (default: the current user)")
    asg.add_argument("--version", help="only this version (default: every version the finding is open in)")
    asg.add_argument("--evidence", help=EVIDENCE_HELP)
    asg.set_defaults(func=cmd_assign)

    clo = sub.add_parser(
        "close",
        help="close a finding by hand with the evidence of its fix; the next run confirms or reopens it",
    )
    clo.add_argument("finding_id", metavar="FINDING_ID")
    clo.add_argument(
        "--evidence",
        dest="closure_evidence",
        required=True,
        help="URI of the fix's evidence (ticket, change, report)",
    )
    clo.add_argument("--by", required=True, help="who closes it")
    clo.add_argument("--note", help="what was done")
    clo.add_argument("--version", help="only this version (default: every version the finding is open in)")
    clo.add_argument("--evidence-root", dest="evidence", help=EVIDENCE_HELP)
    clo.set_defaults(func=cmd_close)
