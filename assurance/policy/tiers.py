"""Risk tiers as policy code: an explicit `risk_tier` tag wins, else the first matching rule, else the default.

A rule's `when:` is a mapping of conditions that must all hold. Conditions:

- `tags_present: [k, ...]`: every tag is set to a non-blank value
- `tags_absent: [k, ...]`: no tag is set (or all are blank)
- `tag_equals: {k: value | [values]}`: the tag equals one of the values (case-insensitive, trimmed)
- `tag_matches: {k: regex}`: the regex is found in the tag (Python `re.search`)
- `aliases_include: [a, ...]`: the version carries one of these aliases (case-insensitive)
- `any: [when, ...]`, `all: [when, ...]`, `not: when`: combinations of the above

A condition the evaluator does not know is a policy error, so a typo never silently tiers a model:
`Policy` refuses it at load (`unknown_conditions`), and `matches` refuses it again for rules built by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assurance.policy.model import PolicyError

if TYPE_CHECKING:
    from assurance.domain.values import VersionRecord
    from assurance.policy.model import Policy

TIER_TAG = "risk_tier"
NO_RULE = "no rule matched"


@dataclass(frozen=True)
class TierDecision:
    """The tier, why, and where it came from: `tag`, `rule` or `default`."""

    tier: str
    rationale: str
    source: str


def valid_tiers(policy: Policy) -> list[str]:
    """The tier names the policy defines levels for."""
    return list(policy.tiers.levels)


def explicit_tier(record: VersionRecord) -> str:
    """The `risk_tier` tag as written (trimmed, lower case), or "" when absent."""
    return (record.tags.get(TIER_TAG) or "").strip().lower()


def _tag(record: VersionRecord, key: str) -> str:
    return (record.tags.get(key) or "").strip()


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _regex(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PolicyError(f"tier rule regex {pattern!r} is invalid: {exc}") from exc


def _tags_present(record: VersionRecord, keys: Any) -> bool:
    return all(_tag(record, k) for k in _as_list(keys))


def _tags_absent(record: VersionRecord, keys: Any) -> bool:
    return not any(_tag(record, k) for k in _as_list(keys))


def _tag_equals(record: VersionRecord, spec: Any) -> bool:
    return all(
        _tag(record, k).lower() in {str(v).strip().lower() for v in _as_list(values)}
        for k, values in _mapping(spec, "tag_equals").items()
    )


def _tag_matches(record: VersionRecord, spec: Any) -> bool:
    return all(
        bool(_regex(str(pattern)).search(_tag(record, k)))
        for k, pattern in _mapping(spec, "tag_matches").items()
    )


def _aliases_include(record: VersionRecord, aliases: Any) -> bool:
    wanted = {str(a).lower() for a in _as_list(aliases)}
    return any(a.lower() in wanted for a in record.aliases)


def _any(record: VersionRecord, whens: Any) -> bool:
    return any(matches(record, w) for w in _as_list(whens))


def _all(record: VersionRecord, whens: Any) -> bool:
    return all(matches(record, w) for w in _as_list(whens))


def _not(record: VersionRecord, when: Any) -> bool:
    return not matches(record, when)


CONDITIONS: dict[str, Callable[[VersionRecord, Any], bool]] = {
    "tags_present": _tags_present,
    "tags_absent": _tags_absent,
    "tag_equals": _tag_equals,
    "tag_matches": _tag_matches,
    "aliases_include": _aliases_include,
    "any": _any,
    "all": _all,
    "not": _not,
}


def _mapping(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise PolicyError(f"tier rule condition {what} needs a mapping, got {value!r}")
    return value


def unknown_conditions(when: Any) -> list[str]:
    """Condition names in `when` (and the `any`, `all` and `not` inside it) the evaluator does not know."""
    if not isinstance(when, dict):
        return []
    unknown = [name for name in when if name not in CONDITIONS]
    for name in ("any", "all"):
        for inner in _as_list(when.get(name, [])):
            unknown += unknown_conditions(inner)
    return unknown + unknown_conditions(when.get("not"))


def matches(record: VersionRecord, when: Any) -> bool:
    """True when every condition of `when` holds for the version's merged tags and aliases."""
    conditions = _mapping(when, "when")
    unknown = sorted(set(conditions) - set(CONDITIONS))
    if unknown:
        raise PolicyError(
            f"unknown tier rule condition(s) {', '.join(unknown)}; known: {', '.join(CONDITIONS)}"
        )
    return all(CONDITIONS[name](record, arg) for name, arg in conditions.items())


def decide_tier(record: VersionRecord, policy: Policy) -> TierDecision:
    """The tier the policy assigns to this version, with the rationale an analyst can check."""
    tiers = valid_tiers(policy)
    tagged = explicit_tier(record)
    if tagged in tiers:
        where = (
            " on the version"
            if TIER_TAG in record.version_tags
            else " on the model"
            if TIER_TAG in record.model_tags
            else ""
        )
        return TierDecision(tagged, f"{TIER_TAG} tag{where} says {tagged}", "tag")
    invalid = f"{TIER_TAG} tag {tagged!r} is not one of {', '.join(tiers)}; " if tagged else ""
    for i, rule in enumerate(policy.tiers.rules, 1):
        if matches(record, rule.when):
            why = rule.why or f"rule {i} matched"
            return TierDecision(rule.tier, f"{invalid}{why}", "rule")
    default = policy.tiers.default
    return TierDecision(default, f"{invalid}{NO_RULE}; policy default {default}", "default")


def derive_tier(record: VersionRecord, policy: Policy) -> tuple[str, str]:
    """(tier, rationale) for this version; see `decide_tier` for where the tier came from."""
    decision = decide_tier(record, policy)
    return decision.tier, decision.rationale
