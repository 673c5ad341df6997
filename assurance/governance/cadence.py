"""Which versions the schedules should look at: those serving in production, and those whose review is due.

Monitoring covers every READY version behind a production alias (the policy's
`change_control.production_aliases`). Revalidation covers every READY version that was assured before
and whose last published evidence is older than its tier's `revalidate_days`; versions never assured
are the registry sensor's to validate, so the schedule does not compete with it. Plain Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from assurance.checks.change_control import production_aliases
from assurance.domain.values import partition_key
from assurance.evidence.history import run_time
from assurance.evidence.store import EvidenceStore
from assurance.governance.portfolio import record_from_ref
from assurance.policy.model import Policy
from assurance.policy.tiers import decide_tier
from assurance.registry.client import VersionRef
from assurance.registry.watch import READY


@dataclass(frozen=True)
class Due:
    """A version a schedule should run now, and why (shown on the run as a tag)."""

    ref: VersionRef
    reason: str

    @property
    def partition(self) -> str:
        return partition_key(self.ref.name, self.ref.version)


def production_versions(snapshot: Iterable[VersionRef], policy: Policy) -> list[Due]:
    """READY versions behind at least one production alias, with the aliases that put them there."""
    live = production_aliases(policy)
    out = []
    for ref in snapshot:
        aliases = sorted(a for a in ref.aliases if a.lower() in live)
        if ref.status == READY and aliases:
            out.append(Due(ref, f"in production behind {', '.join(aliases)}"))
    return out


def last_assured(store: EvidenceStore, model: str, version: str) -> datetime | None:
    """When the version's newest published evidence was produced, or None when it has none."""
    folder = store.latest_run_path(model, version)
    if folder is None:
        return None
    return run_time(store.read_manifest(folder), folder.rsplit("/", 1)[-1]).to_pydatetime()


def revalidation_due(
    snapshot: Iterable[VersionRef], store: EvidenceStore, policy: Policy, now: datetime
) -> list[Due]:
    """READY versions assured before whose tier cadence (`tiers.levels.<tier>.revalidate_days`) has run out."""
    out = []
    for ref in snapshot:
        if ref.status != READY:
            continue
        last = last_assured(store, ref.name, ref.version)
        if last is None:
            continue
        tier = decide_tier(record_from_ref(ref), policy).tier
        days = policy.tier_level(tier).revalidate_days
        if days is not None and last + timedelta(days=float(days)) <= now:
            out.append(Due(ref, f"{tier} tier reviews every {days} days; last assured {last:%Y-%m-%d}"))
    return out
