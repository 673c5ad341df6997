"""The findings ledger: every finding's history across runs, computed from published evidence alone.

Nothing is updated in place. The ledger is a pure function of every run folder's `findings.parquet`
(with its manifest's timestamp) and two journals of people's records, each record one create-only
object: acceptances (`_portfolio/acceptances/`) and remediation (`_portfolio/remediation/`: assignments
and manual closures, see `assurance.governance.remediation`). Concurrent runs and people never race on
a shared object, and the ledger can always be rebuilt. To keep a version's history cost bounded, what the
ledger needs from its runs (the finding spans) is cached per version in a snapshot (`ledger_snapshot`): a
run reads the snapshot and the runs published after it, and gets the same ledger.

Per (finding_id, version): first and last run that reported it, and its status now:
- `open` while the latest run of that version reports it;
- `closed` once a later run of the same version no longer does (`closed_by` names that run, `verified`);
- `closed` too once someone closed it by hand (who, with what evidence) after the last run that reported
  it; `verified` stays false until a later run confirms it by not reporting it. A run that reports it
  after the manual closure reopens it, and `note` says so;
- `accepted` while open under an unexpired acceptance (who, why, until when); expired means open again.
`sla_due` is first_seen plus the policy's SLA for the finding's latest severity; `due` is the assigned
plan's due date when the assignment set one, else `sla_due`; `overdue` is an open finding past `due`.
`within_sla` says whether a resolved finding was resolved by `sla_due` (false too for one still open past
it; empty while it can still make it, or under an acceptance).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from assurance.domain.errors import InputError
from assurance.evidence import journal
from assurance.evidence.history import published_runs, read_table, version_folders
from assurance.evidence.store import PORTFOLIO
from assurance.governance import ledger_snapshot
from assurance.governance.ledger_snapshot import LedgerSnapshot
from assurance.policy.model import Policy

if TYPE_CHECKING:
    from assurance.evidence.history import RunFolder, VersionFolder
    from assurance.evidence.store import EvidenceStore

ACCEPTANCES = f"{PORTFOLIO}/acceptances"
# where acceptances were appended before the journal; still read so existing evidence roots keep them
LEGACY_ACCEPTANCES = f"{PORTFOLIO}/acceptances.jsonl"
FINDINGS = "findings"
KEY = ["finding_id", "version"]
ATTRIBUTES = ["model", "category", "check", "subject", "severity", "message", "owner", "evidence"]
ACCEPTANCE_COLUMNS = ["finding_id", "model", "version", "reason", "by", "accepted_at", "expires"]
REMEDIATION = f"{PORTFOLIO}/remediation"
ASSIGN, CLOSE = "assign", "close"
# the fields of each kind of remediation record, and the ledger columns they become
REMEDIATION_FIELDS = {
    ASSIGN: {"to": "assignee", "plan": "plan", "due": "plan_due", "by": "assigned_by", "at": "assigned_at"},
    CLOSE: {
        "by": "closed_manually_by",
        "evidence": "closure_evidence",
        "note": "closure_note",
        "at": "closed_manually_at",
    },
}
SPAN_COLUMNS = [
    *KEY,
    *ATTRIBUTES,
    "first_seen",
    "first_run_at",
    "first_run",
    "last_seen",
    "last_run",
    "runs_seen",
]
RUN_COLUMNS = ["model", "version", "run_id", "at"]
LEDGER_COLUMNS = [
    "finding_id",
    "model",
    "version",
    "category",
    "check",
    "subject",
    "severity",
    "status",
    "message",
    "owner",
    "evidence",
    "first_seen",
    "last_seen",
    "first_run",
    "last_run",
    "runs_seen",
    "closed_by",
    "closed_at",
    "due",
    "overdue",
    "sla_due",
    "within_sla",
    "resolved_at",
    "verified",
    "accepted_by",
    "accepted_reason",
    "accepted_at",
    "accepted_until",
    "assignee",
    "plan",
    "plan_due",
    "assigned_by",
    "assigned_at",
    "closed_manually_by",
    "closed_manually_at",
    "closure_evidence",
    "closure_note",
    "note",
]
_TIMES = [
    "first_seen",
    "last_seen",
    "closed_at",
    "due",
    "sla_due",
    "resolved_at",
    "accepted_at",
    "accepted_until",
    "plan_due",
    "assigned_at",
    "closed_manually_at",
]


def _utc(value: object) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def _times(values: object) -> pd.Series:
    """UTC timestamps at one resolution, so columns from different sources compare and merge."""
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


def findings_history(store: EvidenceStore, folders: list[RunFolder]) -> pd.DataFrame:
    """Every finding row of every run that wrote findings, with the run's id and time; `evidence`
    becomes a path relative to the evidence root, so the ledger points at the file behind each finding."""
    frames = []
    for run in folders:
        frame = read_table(store, run.path, FINDINGS) if run.has(FINDINGS) else None
        if frame is not None and len(frame):
            evidence = frame["evidence"].fillna("").astype(str)
            located = evidence.where(
                evidence.eq("") | evidence.str.startswith(run.path), run.path + "/" + evidence
            )
            frames.append(
                frame.assign(
                    version=frame["version"].astype(str), evidence=located, run_id=run.run_id, run_at=run.at
                )
            )
    if not frames:
        return pd.DataFrame(columns=[*KEY, *ATTRIBUTES, "run_id", "run_at"])
    return pd.concat(frames, ignore_index=True)


def finding_spans(history: pd.DataFrame) -> pd.DataFrame:
    """One row per finding and version over the runs in `history`: its latest attributes, the first and
    last run that reported it (id and time), when it was first seen, and in how many runs.

    Spans of disjoint sets of runs merge (`merge_spans`) into exactly the spans of their union, in any
    order: that is what lets a snapshot stand for the runs it covers."""
    if history.empty:
        return pd.DataFrame(columns=SPAN_COLUMNS)
    run_at = _times(history["run_at"])
    # a run stamps first_seen just before it publishes: the earlier of the two is when it was first seen
    recorded = _times(history["first_seen"]) if "first_seen" in history else run_at
    rows = history.assign(
        first_seen=recorded.where(recorded.notna() & (recorded < run_at), run_at),
        first_run_at=run_at,
        first_run=history["run_id"],
        last_seen=run_at,
        last_run=history["run_id"],
        runs_seen=1,
    )
    # a run that lists a finding twice still saw it in one run
    return merge_spans(merge_spans(rows, by=[*KEY, "last_run"]).assign(runs_seen=1))


def merge_spans(spans: pd.DataFrame, by: list[str] = KEY) -> pd.DataFrame:
    """Spans of the same finding (rows sharing `by`) made one: attributes of the latest, earliest first run."""
    latest = spans.sort_values(["last_seen", "last_run"], kind="stable").groupby(by, sort=False).tail(1)
    first = spans.sort_values(["first_run_at", "first_run"], kind="stable").groupby(by, sort=False).head(1)
    totals = spans.groupby(by, sort=False).agg(
        first_seen=("first_seen", "min"), runs_seen=("runs_seen", "sum")
    )
    merged = (
        latest.drop(columns=["first_seen", "runs_seen", "first_run_at", "first_run"])
        .set_index(by)
        .join(first.set_index(by)[["first_run_at", "first_run"]])
        .join(totals)
    )
    return merged.reset_index()[SPAN_COLUMNS]


def version_snapshot(store: EvidenceStore, folder: VersionFolder) -> LedgerSnapshot | None:
    """The spans and runs of one version: its newest snapshot plus the runs published since (all of them when
    there is no usable snapshot), stored back as the new snapshot; None for a version without runs."""
    # the snapshot first: every run it covers was published before it, so the listing below shows them all
    cached = ledger_snapshot.read_latest(store, folder.path, SPAN_COLUMNS)
    names = store.subfolders(folder.path)
    covered = set(cached.runs["run_id"]) if cached is not None else set()
    if cached is not None and not covered <= set(names):  # a run it covers is gone: read every run
        ledger_snapshot.discard(store, folder.path, cached.name)
        cached, covered = None, set()
    tail = published_runs(store, folder, [n for n in names if n not in covered])
    if not tail:
        return cached
    fresh = LedgerSnapshot(
        finding_spans(findings_history(store, tail)),
        ledger_snapshot.runs_table(
            [r.run_id for r in tail], [r.at for r in tail], [r.has(FINDINGS) for r in tail]
        ),
    )
    if cached is not None:
        spans = [s for s in (cached.spans, fresh.spans) if len(s)]
        fresh = LedgerSnapshot(
            merge_spans(pd.concat(spans, ignore_index=True)) if spans else fresh.spans,
            pd.concat([cached.runs, fresh.runs], ignore_index=True),
        )
    ledger_snapshot.write(store, folder.path, fresh)
    return fresh


def read_acceptances(store: EvidenceStore) -> pd.DataFrame:
    """Every acceptance ever recorded, oldest first; records missing a field are ignored."""
    records = journal.read(store, ACCEPTANCES, legacy=LEGACY_ACCEPTANCES)
    rows = [{c: r[c] for c in ACCEPTANCE_COLUMNS} for r in records if set(ACCEPTANCE_COLUMNS) <= r.keys()]
    frame = pd.DataFrame(rows, columns=ACCEPTANCE_COLUMNS)
    frame["version"] = frame["version"].astype(str)
    for col in ("accepted_at", "expires"):
        frame[col] = _times(frame[col])
    return frame.sort_values("accepted_at", kind="stable").reset_index(drop=True)


def read_remediation(store: EvidenceStore) -> dict[str, pd.DataFrame]:
    """The assignments and the manual closures ever recorded (see `remediation_frames`)."""
    return remediation_frames(journal.read(store, REMEDIATION))


def remediation_frames(records: list[dict]) -> dict[str, pd.DataFrame]:
    """Remediation records as one frame per kind ("assign", "close"), oldest first, with ledger column
    names; records missing a field are ignored."""
    out = {}
    for action, fields in REMEDIATION_FIELDS.items():
        wanted = [*KEY, *fields]
        rows = [
            {c: r[c] for c in wanted}
            for r in records
            if r.get("action") == action and set(wanted) <= r.keys()
        ]
        frame = pd.DataFrame(rows, columns=wanted).rename(columns=fields)
        frame["version"] = frame["version"].astype(str)
        for col in fields.values():
            if col in _TIMES:
                frame[col] = _times(frame[col])
        out[action] = frame.sort_values(fields["at"], kind="stable").reset_index(drop=True)
    return out


def _empty_ledger() -> pd.DataFrame:
    frame = pd.DataFrame(columns=LEDGER_COLUMNS)
    for col in _TIMES:
        frame[col] = _times(frame[col])
    return frame.astype({"overdue": bool, "runs_seen": int, "verified": bool, "within_sla": "boolean"})


def compute_ledger(
    spans: pd.DataFrame,
    runs: pd.DataFrame,
    acceptances: pd.DataFrame,
    policy: Policy,
    now: datetime,
    remediation: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The ledger from finding spans, the runs that observed findings (model, version, run_id, at), the
    acceptances and the remediation records (`read_remediation`; none when not given)."""
    if spans.empty:
        return _empty_ledger()
    ledger = _closing_runs(spans.drop(columns="first_run_at"), runs)
    ledger = _with_acceptances(ledger, acceptances)
    ledger = _with_remediation(ledger, remediation if remediation is not None else remediation_frames([]))
    now_ts = _utc(now)
    sla = ledger["severity"].map(lambda s: policy.sla_days(s))
    ledger["sla_due"] = ledger["first_seen"] + pd.to_timedelta(sla.astype(float), unit="D")
    ledger["due"] = ledger["plan_due"].where(ledger["plan_due"].notna(), ledger["sla_due"])
    ledger = _statuses(ledger, now_ts)
    return (
        ledger[LEDGER_COLUMNS]
        .sort_values(["model", "version", "first_seen", "finding_id"])
        .reset_index(drop=True)
    )


def _statuses(ledger: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """Status, verification, resolution time, SLA adherence and the reopening note of every finding."""
    by_run = ledger["closed_by"].notna()
    manual = ledger["closed_manually_at"].notna()
    by_hand = manual & (ledger["closed_manually_at"] > ledger["last_seen"])
    closed = by_run | by_hand
    accepted = ~closed & (ledger["accepted_until"] > now)
    ledger["status"] = "open"
    ledger.loc[closed, "status"] = "closed"
    ledger.loc[accepted, "status"] = "accepted"
    ledger["verified"] = by_run
    ledger["overdue"] = (ledger["status"] == "open") & (ledger["due"] < now)
    hand_time = ledger["closed_manually_at"].where(by_hand)
    ledger["resolved_at"] = _times(pd.concat([hand_time, ledger["closed_at"]], axis=1).min(axis=1))
    within = pd.Series(pd.NA, index=ledger.index, dtype="boolean")
    within[closed] = ledger.loc[closed, "resolved_at"] <= ledger.loc[closed, "sla_due"]
    within[(ledger["status"] == "open") & (ledger["sla_due"] < now)] = False
    ledger["within_sla"] = within
    reopened = manual & ~by_hand
    ledger["note"] = None
    ledger.loc[reopened, "note"] = [
        f"Closed by {r.closed_manually_by} on {r.closed_manually_at:%Y-%m-%d %H:%M} UTC ({r.closure_evidence}), "
        f"but run {r.last_run} reproduced it on {r.last_seen:%Y-%m-%d %H:%M} UTC: open again."
        for r in ledger[reopened].itertuples()
    ]
    return ledger


def _closing_runs(ledger: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The first observing run of the same version after the finding was last seen, if any."""
    runs = runs.assign(version=runs["version"].astype(str), at=_times(runs["at"]))
    runs = runs.rename(columns={"run_id": "closed_by", "at": "closed_at"})
    runs = runs.sort_values(["closed_at", "closed_by"]).reset_index(drop=True)
    left = ledger.sort_values("last_seen")
    merged = pd.merge_asof(
        left,
        runs[["model", "version", "closed_by", "closed_at"]],
        left_on="last_seen",
        right_on="closed_at",
        by=["model", "version"],
        direction="forward",
        allow_exact_matches=False,
    )
    return merged


def _with_acceptances(ledger: pd.DataFrame, acceptances: pd.DataFrame) -> pd.DataFrame:
    """The latest acceptance recorded for each (finding_id, version)."""
    latest = acceptances.groupby(KEY, sort=False).tail(1)[[*KEY, "by", "reason", "accepted_at", "expires"]]
    latest = latest.rename(
        columns={"by": "accepted_by", "reason": "accepted_reason", "expires": "accepted_until"}
    )
    return ledger.merge(latest, on=KEY, how="left")


def _with_remediation(ledger: pd.DataFrame, remediation: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The latest assignment and the latest manual closure recorded for each (finding_id, version)."""
    for action in (ASSIGN, CLOSE):
        latest = remediation[action].groupby(KEY, sort=False).tail(1)
        ledger = ledger.merge(latest, on=KEY, how="left")
    return ledger


def build_ledger(
    store: EvidenceStore,
    policy: Policy | None = None,
    now: datetime | None = None,
    model: str | None = None,
    version: str | None = None,
) -> pd.DataFrame:
    """The findings ledger as of `now` (default: the current time) of the whole store, or of one model
    (and version) only: a version's run needs only its own history, read from its snapshot and the runs
    published after it."""
    store.refresh()
    spans, runs = [], []
    for folder in version_folders(store, model, version):
        snapshot = version_snapshot(store, folder)
        if snapshot is None:
            continue
        spans += [snapshot.spans] if len(snapshot.spans) else []
        observed = snapshot.runs[snapshot.runs["observing"]]
        runs.append(observed.assign(model=folder.model, version=folder.version)[RUN_COLUMNS])
    return compute_ledger(
        merge_spans(pd.concat(spans, ignore_index=True)) if spans else pd.DataFrame(columns=SPAN_COLUMNS),
        pd.concat(runs, ignore_index=True) if runs else pd.DataFrame(columns=RUN_COLUMNS),
        read_acceptances(store),
        policy or Policy(),
        now or datetime.now(UTC),
        read_remediation(store),
    )


def parse_expiry(expires: str | date | datetime) -> pd.Timestamp:
    """A date means "through that day" (UTC); a timestamp is taken as given (naive means UTC)."""
    if isinstance(expires, datetime):
        return _utc(expires)
    if isinstance(expires, date):
        return pd.Timestamp(datetime.combine(expires + timedelta(days=1), datetime.min.time()), tz=UTC)
    text = str(expires).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"expiry {text!r} is not an ISO 8601 date or timestamp (e.g. 2026-06-30)") from exc
    return parse_expiry(parsed.date()) if len(text) <= len("YYYY-MM-DD") else _utc(parsed)


def accept(
    store: EvidenceStore,
    finding_id: str,
    reason: str,
    expires: str | date | datetime,
    by: str,
    version: str | None = None,
    now: datetime | None = None,
) -> list[dict]:
    """Record a risk acceptance for a finding open in `version` (default: every version it is open in).

    Writes one record per version, together as one new object of the acceptances journal, and returns
    them.
    Raises InputError, saying what to fix, on an empty reason or name, a past expiry, an unknown
    finding id, or a finding that is not open in the versions asked for.
    """
    now = now or datetime.now(UTC)
    reason, by, finding_id = (reason or "").strip(), (by or "").strip(), (finding_id or "").strip()
    if not reason:
        raise InputError("a risk acceptance needs a reason: say why the risk is acceptable until it expires")
    if not by:
        raise InputError("a risk acceptance needs the name of who accepts it (--by)")
    until = parse_expiry(expires)
    if until <= _utc(now):
        raise InputError(
            f"expiry {until:%Y-%m-%d %H:%M} UTC is not in the future: an acceptance must expire later"
        )
    rows = unresolved_rows(store, finding_id, version, now, "accept")
    records = [
        {
            "finding_id": finding_id,
            "model": row.model,
            "version": str(row.version),
            "reason": reason,
            "by": by,
            "accepted_at": _utc(now).isoformat(),
            "expires": until.isoformat(),
        }
        for row in rows.itertuples()
    ]
    journal.append(store, ACCEPTANCES, records)
    return records


def unresolved_rows(
    store: EvidenceStore, finding_id: str, version: str | None, now: datetime, verb: str
) -> pd.DataFrame:
    """The ledger rows of `finding_id` not closed, in `version` or every version: what a person may `verb`.

    Raises InputError on an unknown finding id, a version that never reported it, or nothing left open.
    """
    rows = build_ledger(store, now=now)
    rows = rows[rows["finding_id"] == finding_id]
    if rows.empty:
        raise InputError(
            f"unknown finding id {finding_id!r}: no published run reported it (see `assurance status` for open findings)"
        )
    if version is not None:
        seen = ", ".join(sorted(rows["version"]))
        rows = rows[rows["version"] == str(version)]
        if rows.empty:
            raise InputError(
                f"finding {finding_id} was never reported for version {version} (only for {seen})"
            )
    rows = rows[rows["status"] != "closed"]
    if rows.empty:
        raise InputError(
            f"finding {finding_id} is closed in the version(s) asked for: there is nothing to {verb}"
        )
    return rows


def apply_ledger(findings: pd.DataFrame, ledger: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """The current run's findings with history applied: first_seen from the ledger, due moved with it,
    and status `accepted` under an unexpired acceptance, so accepted findings do not hold the version."""
    if findings.empty or ledger.empty:
        return findings
    now_ts = _utc(now or datetime.now(UTC))
    known = ledger.set_index(KEY)[["first_seen", "accepted_until"]]
    out = findings.copy()
    past = known.reindex(pd.MultiIndex.from_arrays([out["finding_id"], out["version"].astype(str)]))
    past.index = out.index
    past_first = _times(past["first_seen"])
    current = _times(out["first_seen"])
    earlier = past_first.where(past_first.notna() & (past_first < current), current)
    out["due"] = _times(out["due"]) + (earlier - current)
    out["first_seen"] = earlier
    accepted = _times(past["accepted_until"]) > now_ts
    out.loc[accepted & (out["status"] == "open"), "status"] = "accepted"
    return out
