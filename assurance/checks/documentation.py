"""Documentation completeness: the tier's required documents and tags, and documents that are only templates.

The tier (from `assurance.tiers`) selects what is required. A required document must be on the
version's source run and, when its text could be read, must say something: an empty file, a few
words, placeholder markers (TODO, TBD, `<model name>`, `[fill in ...]`, `{{ }}`, lorem ipsum) or
headings with nothing under them mean the template was never filled in. A required tag must hold a
real value (not "TBD" or "n/a"); tags named `*_url` must be http(s) links. Gaps in monitoring tags
are `monitoring` findings, all others `documentation` findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pandas as pd

from assurance.domain.checks import CheckSpec
from assurance.domain.findings import Finding
from assurance.domain.values import Inputs, Section, VersionRecord
from assurance.policy.tiers import (
    TIER_TAG,
    TierDecision,
    decide_tier,
    explicit_tier,
    valid_tiers,
)
from assurance.reporting.markdown import table

if TYPE_CHECKING:
    from assurance.policy.model import Policy

EVIDENCE = "documentation.parquet"
TABLE_COLUMNS = ["kind", "name", "status", "detail", "tier"]
MONITORING_PREFIX = "monitoring"

MISSING_ARTIFACT = CheckSpec(
    "documentation.missing_artifact",
    "documentation",
    "A document the version's tier requires (model card, datasheet, ...) is not on its source run.",
    "medium",
)
INCOMPLETE_ARTIFACT = CheckSpec(
    "documentation.incomplete_artifact",
    "documentation",
    "A required document is empty, very short or still an unfilled template.",
    "medium",
)
MISSING_TAG = CheckSpec(
    "documentation.missing_tag",
    "documentation",
    "A tag the version's tier requires (owner, use_case, ...) is absent, a placeholder or malformed.",
    "medium",
)
INVALID_RISK_TIER = CheckSpec(
    "documentation.invalid_risk_tier",
    "documentation",
    "The risk_tier tag names a tier the policy does not define.",
    "medium",
)
MONITORING_TAG = CheckSpec(
    "monitoring.missing_tag",
    "monitoring",
    "A monitoring tag the tier requires (monitoring_url) is absent, a placeholder or not a link.",
    "medium",
)
CHECKS: tuple[CheckSpec, ...] = (
    MISSING_ARTIFACT,
    INCOMPLETE_ARTIFACT,
    MISSING_TAG,
    INVALID_RISK_TIER,
    MONITORING_TAG,
)

_CODE_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
_HTML_TAGS = frozenset(
    "a abbr b br blockquote caption center code details div em figure figcaption h1 h2 h3 h4 h5 h6 hr i img "
    "kbd li ol p pre small span strong sub summary sup table tbody td th thead tr u ul".split()
)
_MARKERS = [
    re.compile(r"\b(?:TODO|TBD|TBC|FIXME|XXX)\b"),
    re.compile(r"(?i)\blorem ipsum\b"),
    re.compile(r"\{\{[^{}\n]*\}\}"),
    re.compile(r"(?i)\[(?:fill|insert|add|describe|enter|your|placeholder|tbd|todo)\b[^\]\n]*\](?!\()"),
    re.compile(r"(?i)\bto be (?:determined|completed|confirmed|added|written|filled in)\b"),
    re.compile(r"(?i)\b(?:fill (?:in|me|this)|insert\b[^.\n]{0,40}\bhere|your\b[^.\n]{0,30}\bhere)\b"),
]
_ANGLE = re.compile(r"<([A-Za-z][^<>\n]{0,78})>")
_PLACEHOLDER_VALUES = frozenset(
    {"", "-", "?", "n/a", "na", "none", "null", "unknown", "tbd", "tba", "todo", "changeme"}
)


@dataclass(frozen=True)
class Gap:
    """One unmet requirement: what kind, which item, and the finding that reports it."""

    kind: str
    name: str
    status: str
    detail: str
    finding: Finding | None


def _prose(text: str) -> str:
    """The text an author wrote: code blocks and HTML comments (template instructions) removed."""
    return _COMMENT.sub("", _CODE_FENCE.sub("", text))


def placeholder_markers(text: str) -> list[str]:
    """Distinct template markers in `text`, in order of appearance (a marker inside another counts once)."""
    prose = re.sub(r"`[^`\n]*`", "", _prose(text))
    spans = [m.span() for pattern in _MARKERS for m in pattern.finditer(prose)]
    for m in _ANGLE.finditer(prose):
        inner = m.group(1).strip()
        first = inner.split()[0].lower().rstrip("/") if inner.split() else ""
        if first not in _HTML_TAGS and not re.search(r"[=:@/\\]", inner):
            spans.append(m.span())
    kept: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
        if not kept or start >= kept[-1][1]:
            kept.append((start, end))
    return list(dict.fromkeys(prose[a:b] for a, b in kept))


def empty_sections(text: str) -> list[str]:
    """Headings with no content before the next heading of the same or a higher level."""
    lines = _COMMENT.sub("", text).splitlines()
    headings = [
        (i, len(m.group(1)), m.group(2)) for i, line in enumerate(lines) if (m := _HEADING.match(line))
    ]
    empty = []
    for n, (start, level, title) in enumerate(headings):
        end = next((i for i, lv, _ in headings[n + 1 :] if lv <= level), len(lines))
        body = [ln for ln in lines[start + 1 : end] if ln.strip() and not _HEADING.match(ln)]
        if not body:
            empty.append(title or "(untitled)")
    return empty


def word_count(text: str) -> int:
    """Words outside headings, code blocks and comments."""
    prose = "\n".join(ln for ln in _prose(text).splitlines() if not _HEADING.match(ln))
    return len(_WORD.findall(prose))


def document_problems(text: str, min_words: int) -> list[str]:
    """Why a document does not count as written; empty when it does."""
    words = word_count(text)
    if not text.strip() or words == 0:
        return ["is empty"]
    problems = []
    if words < min_words:
        problems.append(f"has only {words} words (the policy asks for at least {min_words})")
    markers = placeholder_markers(text)
    if markers:
        shown = ", ".join(markers[:5]) + (f" and {len(markers) - 5} more" if len(markers) > 5 else "")
        problems.append(f"still holds template placeholders ({shown})")
    empty = empty_sections(text)
    if empty:
        shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        problems.append(f"has headings with nothing under them ({shown})")
    return problems


def find_artifact(record: VersionRecord, name: str) -> str | None:
    """The source-run path of a required artifact: same file name, case-insensitive, at any depth listed."""
    wanted = name.lower()
    for path in [*record.run_artifacts, *record.documents]:
        if path.lower() == wanted or path.lower().rsplit("/", 1)[-1] == wanted:
            return path
    return None


def tag_problem(key: str, value: str | None) -> str | None:
    """Why a required tag's value does not count; None when it does."""
    value = (value or "").strip()
    if not value:
        return "is not set"
    if value.lower() in _PLACEHOLDER_VALUES or placeholder_markers(value):
        return f"holds a placeholder ({value[:40]!r})"
    if key.endswith("_url"):
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            return f"is not an http(s) link ({value[:80]!r})"
    return None


def _tag_check(key: str) -> CheckSpec:
    return MONITORING_TAG if key.startswith(MONITORING_PREFIX) else MISSING_TAG


def _artifact_gaps(record: VersionRecord, policy: Policy, tier: str) -> list[Gap]:
    required = policy.tier_level(tier).required_artifacts
    min_words = policy.thresholds.documentation.min_words
    where = f"source run {record.run_id}" if record.run_id else "the version, which has no source run"
    gaps = []
    for name in required:
        path = find_artifact(record, name)
        if path is None:
            finding = MISSING_ARTIFACT.finding(
                name,
                policy.severity(MISSING_ARTIFACT, tier),
                f"Required {tier}-tier document {name} is not on {where}: log it as a run artifact.",
                observed="missing",
                threshold="required",
                evidence=EVIDENCE,
            )
            gaps.append(Gap("artifact", name, "missing", f"not on {where}", finding))
            continue
        text = record.documents.get(path)
        if text is None:
            gaps.append(Gap("artifact", name, "ok", f"{path} present; not read as text", None))
            continue
        problems = document_problems(text, min_words)
        if not problems:
            gaps.append(Gap("artifact", name, "ok", f"{path}: {word_count(text)} words", None))
            continue
        detail = "; ".join(problems)
        finding = INCOMPLETE_ARTIFACT.finding(
            name,
            policy.severity(INCOMPLETE_ARTIFACT, tier),
            f"Document {path} {detail}: complete it so it documents this model.",
            observed=detail,
            threshold=f"filled in, at least {min_words} words",
            evidence=EVIDENCE,
        )
        gaps.append(Gap("artifact", name, "incomplete", detail, finding))
    return gaps


def _tag_gaps(record: VersionRecord, policy: Policy, tier: str) -> list[Gap]:
    gaps = []
    for key in policy.tier_level(tier).required_tags:
        problem = tag_problem(key, record.tags.get(key))
        if problem is None:
            gaps.append(Gap("tag", key, "ok", "set", None))
            continue
        check = _tag_check(key)
        finding = check.finding(
            key,
            policy.severity(check, tier),
            f"Tag {key}, required for {tier}-tier models, {problem}: set it on the registered model or version.",
            observed=record.tags.get(key) or "missing",
            threshold="required",
            evidence=EVIDENCE,
        )
        gaps.append(Gap("tag", key, "missing", problem, finding))
    return gaps


def _tier_gap(record: VersionRecord, policy: Policy, decision: TierDecision) -> Gap:
    tagged = explicit_tier(record)
    tiers = valid_tiers(policy)
    if not tagged or tagged in tiers:
        return Gap("tier", TIER_TAG, "ok", f"{decision.tier} ({decision.source}): {decision.rationale}", None)
    finding = INVALID_RISK_TIER.finding(
        TIER_TAG,
        policy.severity(INVALID_RISK_TIER, decision.tier),
        f"Tag {TIER_TAG} is {record.tags.get(TIER_TAG)!r}, not one of {', '.join(tiers)}; "
        f"the policy derived {decision.tier} instead: correct the tag.",
        observed=record.tags.get(TIER_TAG),
        threshold=", ".join(tiers),
        evidence=EVIDENCE,
    )
    return Gap("tier", TIER_TAG, "invalid", decision.rationale, finding)


def assess(record: VersionRecord, policy: Policy) -> tuple[TierDecision, list[Gap]]:
    """The tier and every documentation requirement it brings, met or not."""
    decision = decide_tier(record, policy)
    gaps = [
        _tier_gap(record, policy, decision),
        *_artifact_gaps(record, policy, decision.tier),
        *_tag_gaps(record, policy, decision.tier),
    ]
    return decision, gaps


def completeness(gaps: list[Gap]) -> float:
    """Share of requirements met (1.0 when nothing is required)."""
    return sum(g.finding is None for g in gaps) / len(gaps) if gaps else 1.0


def run(inputs: Inputs) -> Section:
    """Tier the version, then report every documentation and monitoring-tag gap the tier's rules find."""
    section = Section("documentation", "Documentation and tiering")
    decision, gaps = assess(inputs.record, inputs.policy)
    frame = pd.DataFrame(
        [(g.kind, g.name, g.status, g.detail, decision.tier) for g in gaps], columns=TABLE_COLUMNS
    )
    section.tables["documentation"] = frame
    section.findings = [g.finding for g in gaps if g.finding is not None]
    section.metrics = {
        "requirements": float(len(gaps)),
        "gaps": float(len(section.findings)),
        "completeness": completeness(gaps),
    }
    section.summary = "\n".join(
        [
            f"Risk tier: **{decision.tier}** (from {decision.source}): {decision.rationale}.",
            "",
            f"{len(gaps) - len(section.findings)} of {len(gaps)} documentation requirements met.",
            "",
            table(frame[["kind", "name", "status", "detail"]]),
        ]
    )
    return section
