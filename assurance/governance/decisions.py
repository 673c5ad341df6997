"""Decision records: what people decided on a version, bound to the evidence they decided on.

The product recommends; people decide. A decision (approve, approve_with_conditions or hold; who, why,
and any conditions with their due dates) is one create-only object of the journal `_portfolio/decisions/`
(`assurance.evidence.journal`), so people deciding at the same moment never lose each other's record and
no record is ever changed: a later decision supersedes an earlier one without erasing it.

Every record is bound to the version's latest published run when it was made: its run id and the sha256
of its `manifest.json` (which holds the sha256 of every evidence file), so anyone can check which evidence
the decision saw, and change control can tell when an approval no longer covers the evidence (see
`assurance.checks.change_control`). A version without published evidence cannot be decided on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from assurance.domain.errors import InputError
from assurance.evidence import journal
from assurance.evidence.store import MANIFEST, PORTFOLIO, sha256_bytes
from assurance.governance.ledger import parse_expiry
from assurance.policy.recommendation import DECISIONS as CHOICES
from assurance.registry.client import DECISION_TAG

if TYPE_CHECKING:
    from assurance.evidence.store import EvidenceStore

DECISIONS = f"{PORTFOLIO}/decisions"
APPROVALS = ("approve", "approve_with_conditions")
COLUMNS = [
    "decision_id",
    "model",
    "version",
    "decision",
    "by",
    "reason",
    "conditions",
    "decided_at",
    "run_id",
    "run_path",
    "manifest_sha256",
    "recommendation",
]


def evidence_binding(store: EvidenceStore, model: str, version: str) -> dict[str, Any]:
    """The version's latest published run: its id, folder, manifest sha256 and recommendation.

    Raises InputError when the version has no published evidence: a decision needs evidence to stand on.
    """
    path = store.latest_run_path(model, version)
    if path is None:
        raise InputError(
            f"{model} version {version} has no published evidence in {store.root}: assure it first "
            f"(assurance run --model {model} --version {version}), then decide on that evidence"
        )
    body = store.read_bytes(f"{path}/{MANIFEST}")
    return {
        "run_id": path.rsplit("/", 1)[-1],
        "run_path": path,
        "manifest_sha256": sha256_bytes(body),
        "recommendation": json.loads(body).get("recommendation"),
    }


def _conditions(conditions: Iterable[Mapping[str, Any]], now: datetime) -> list[dict[str, str | None]]:
    """Conditions as records: text, and the due date as an ISO timestamp (a date means through that day)."""
    out = []
    for item in conditions:
        text = str(item.get("condition") or "").strip()
        if not text:
            raise InputError("a condition needs its text (--condition TEXT)")
        due = item.get("due")
        until = parse_expiry(due) if due else None
        if until is not None and until <= pd.Timestamp(now):
            raise InputError(
                f"condition {text[:60]!r} is due {until:%Y-%m-%d %H:%M} UTC, which is not in the future"
            )
        out.append({"condition": text, "due": until.isoformat() if until is not None else None})
    return out


def _validate(decision: str, by: str, reason: str, conditions: list) -> None:
    if decision not in CHOICES:
        raise InputError(f"decision {decision!r} is not one of {', '.join(CHOICES)}")
    if not by:
        raise InputError("a decision needs the name of who decides (--by)")
    if not reason:
        raise InputError("a decision needs a reason (--reason): say what it rests on")
    if decision == "approve_with_conditions" and not conditions:
        raise InputError("approve_with_conditions needs at least one --condition (with an optional --due)")
    if decision == "approve" and conditions:
        raise InputError("an approval with conditions is approve_with_conditions, not approve")


def record_decision(
    store: EvidenceStore,
    model: str,
    version: str,
    decision: str,
    by: str,
    reason: str,
    conditions: Iterable[Mapping[str, Any]] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Append one decision record bound to the version's latest evidence, and return it.

    Raises InputError, saying what to fix, on a bad decision, a missing name or reason, conditions that do
    not fit the decision, a condition due in the past, or a version without published evidence.
    """
    now = now or datetime.now(UTC)
    by, reason, version = (by or "").strip(), (reason or "").strip(), str(version)
    listed = _conditions(conditions, now)
    _validate(decision, by, reason, listed)
    record = {
        "decision_id": uuid.uuid4().hex[:16],
        "model": model,
        "version": version,
        "decision": decision,
        "by": by,
        "reason": reason,
        "conditions": listed,
        "decided_at": pd.Timestamp(now).tz_convert(UTC).isoformat(),
        **evidence_binding(store, model, version),
    }
    journal.append(store, DECISIONS, [record])
    return record


def read_decisions(
    store: EvidenceStore, model: str | None = None, version: str | None = None
) -> pd.DataFrame:
    """Every decision recorded (of `model`, and `version`, when given), oldest first; incomplete records are ignored."""
    rows = [
        {c: r[c] for c in COLUMNS}
        for r in journal.read(store, DECISIONS)
        if set(COLUMNS) <= r.keys()
        and (model is None or r["model"] == model)
        and (version is None or str(r["version"]) == str(version))
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["version"] = frame["version"].astype(str)
    frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True).astype("datetime64[ns, UTC]")
    return frame.sort_values(["decided_at", "decision_id"], kind="stable").reset_index(drop=True)


def latest_decisions(decisions: pd.DataFrame) -> pd.DataFrame:
    """The decision in force per (model, version): the latest one recorded."""
    return decisions.groupby(["model", "version"], sort=False).tail(1).reset_index(drop=True)


def describe_conditions(conditions: Iterable[Mapping[str, Any]]) -> str:
    """Conditions on one line: `text (due YYYY-MM-DD); ...`."""
    parts = []
    for c in conditions or []:
        due = f" (due {pd.Timestamp(c['due']):%Y-%m-%d})" if c.get("due") else ""
        parts.append(f"{c['condition']}{due}")
    return "; ".join(parts)


def decision_tags(record: Mapping[str, Any]) -> dict[str, str]:
    """The decision as version tags (`assurance.decision*`), for people and tools that read MLflow.

    The sensor ignores these tags (`assurance.registry.watch.tracked_tags`): recording a decision starts no run.
    """
    tags = {
        DECISION_TAG: record["decision"],
        f"{DECISION_TAG}.by": record["by"],
        f"{DECISION_TAG}.at": record["decided_at"],
        f"{DECISION_TAG}.run_id": record["run_id"],
        f"{DECISION_TAG}.manifest_sha256": record["manifest_sha256"],
        f"{DECISION_TAG}.id": record["decision_id"],
        f"{DECISION_TAG}.reason": record["reason"],
    }
    if record.get("conditions"):
        tags[f"{DECISION_TAG}.conditions"] = describe_conditions(record["conditions"])
    return tags
