"""Policy as code: tiers, thresholds, severities, SLAs and the recommendation rule in one YAML file.

`Policy.load(path)` merges the file over the defaults shipped with the package (key by key), then
validates the result against the typed models below: an unknown key, an unknown check name or a
value of the wrong type is a `PolicyError` naming the file and the dotted key, at load, never mid-run.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    ValidationError,
    model_validator,
)

from assurance.domain.errors import PolicyError
from assurance.policy.thresholds import PolicyPart, Thresholds

if TYPE_CHECKING:
    from assurance.domain.checks import CheckSpec

DEFAULT_POLICY = "default_policy.yaml"


Severity = Literal["critical", "high", "medium", "low", "info"]


@cache
def _check_names() -> list[str]:
    from assurance.checks.catalog import all_checks

    return sorted(spec.name for spec in all_checks())


def _known(kind: str, name: str, names: list[str], listed: bool = False) -> str:
    """`name` when it is one of `names`, else a ValueError with the closest name (and all of them, `listed`)."""
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        every = f"; known: {', '.join(names)}" if listed else ""
        raise ValueError(f"unknown {kind} {name!r}{hint}{every}")
    return name


def _known_check(name: str) -> str:
    return _known("check", name, _check_names())


def _check_name_schema(schema: dict[str, Any]) -> None:
    """Editors complete and flag severity keys from the declared checks."""
    schema["propertyNames"] = {"enum": _check_names()}


@cache
def _analysis_keys() -> list[str]:
    from assurance.checks.catalog import all_analyses

    return [analysis.key for analysis in all_analyses()]


def _known_analysis(key: str) -> str:
    return _known("analysis", key, _analysis_keys(), listed=True)


CheckName = Annotated[str, AfterValidator(_known_check)]
AnalysisKey = Annotated[
    str, AfterValidator(_known_analysis), Field(json_schema_extra=lambda s: s.update(enum=_analysis_keys()))
]
SeverityOverrides = Annotated[dict[CheckName, Severity], Field(json_schema_extra=_check_name_schema)]


class TierRule(PolicyPart):
    tier: str = Field(description="The tier this rule assigns; one of tiers.levels.")
    when: dict[str, Any] = Field(
        description="Conditions that must all hold: tags_present / tags_absent: [tags], tag_equals: "
        "{tag: value or [values]}, tag_matches: {tag: regex}, aliases_include: [aliases], "
        "any / all: [whens], not: when."
    )
    why: str | None = Field(None, description="The rationale recorded with the tier when this rule matches.")

    @model_validator(mode="after")
    def _conditions(self) -> TierRule:
        from assurance.policy.tiers import unknown_conditions

        unknown = unknown_conditions(self.when)
        if unknown:
            raise ValueError(f"unknown tier rule condition {unknown[0]!r}")
        return self


class TierLevel(PolicyPart):
    required_artifacts: list[str] = Field(
        default_factory=list, description="Documents the version's source run must hold (model_card.md, ...)."
    )
    required_tags: list[str] = Field(
        default_factory=list, description="Tags that must hold a real value (owner, use_case, ...)."
    )
    required_analyses: list[AnalysisKey] = Field(
        default_factory=list,
        description="Analyses that must run for a version of this tier; one that could not (a tag or labels "
        "missing, a model type it does not support) is a monitoring.required_analysis finding with the reason.",
    )
    revalidate_days: NonNegativeInt | None = Field(
        None, description="Days after which a version of this tier is due for revalidation (null: never)."
    )
    severity: SeverityOverrides = Field(
        default_factory=dict,
        description="Severities that differ, for this tier, from the policy-wide severity: and the checks' defaults.",
    )


class Tiers(PolicyPart):
    default: str = Field(description="The tier when no risk_tier tag is set and no rule matches.")
    rules: list[TierRule] = Field(description="Tier rules, in order: the first matching one wins.")
    levels: dict[str, TierLevel] = Field(description="What each tier requires.")

    @model_validator(mode="after")
    def _tiers_exist(self) -> Tiers:
        if self.default not in self.levels:
            raise ValueError(
                f"default tier {self.default!r} is not one of the levels {', '.join(self.levels)}"
            )
        for i, rule in enumerate(self.rules):
            if rule.tier not in self.levels:
                raise ValueError(
                    f"rules.{i}.tier {rule.tier!r} is not one of the levels {', '.join(self.levels)}"
                )
        return self


class ChangeControl(PolicyPart):
    production_aliases: list[str] = Field(
        description="Aliases (case-insensitive) that put a version in production: it then needs an approval record."
    )


class SlaDays(PolicyPart):
    critical: NonNegativeInt | None = Field(
        description="Days to remediate a critical finding (null: no deadline)."
    )
    high: NonNegativeInt | None = Field(description="Days to remediate a high finding.")
    medium: NonNegativeInt | None = Field(description="Days to remediate a medium finding.")
    low: NonNegativeInt | None = Field(description="Days to remediate a low finding.")
    info: NonNegativeInt | None = Field(description="Days to remediate an info finding.")


class RecommendationRule(PolicyPart):
    hold_if_any: list[Severity] = Field(description="Hold when any open finding has one of these severities.")
    conditions_if_any: list[Severity] = Field(
        description="Approve with conditions when any open finding has one of these severities."
    )


class MlflowRuns(PolicyPart):
    experiment: str = Field(
        min_length=1,
        description="The experiment every assurance is logged to as an MLflow run, in the tracking server the "
        "version came from (created when missing).",
    )


class PolicyDocument(PolicyPart):
    """The whole policy file, after the defaults are merged in."""

    model_config = ConfigDict(title="Assurance policy")

    version: Literal[1] = Field(description="Policy format version.")
    tiers: Tiers = Field(description="How a version's risk tier is derived, and what each tier requires.")
    thresholds: Thresholds = Field(description="The analyses' thresholds, one group per analysis.")
    severity: SeverityOverrides = Field(
        description="Severity overrides by check name; every check declares its own default severity."
    )
    change_control: ChangeControl
    sla_days: SlaDays = Field(description="Days to remediate an open finding, by severity.")
    recommendation: RecommendationRule = Field(
        description="From open findings to hold, conditions or approve."
    )
    mlflow: MlflowRuns = Field(description="Where each assurance is logged as an MLflow run.")


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@lru_cache(maxsize=8)
def _parsed(text: str) -> Any:
    return yaml.safe_load(text)


def _yaml_data(text: str) -> Any:
    """Parsed YAML, parsed once per distinct text: every asset loads the policy, and parsing cost more than
    the rest of loading it. Keyed by the text, not a file's modification time, so an edit is always seen.
    A copy, so no caller can change what another one gets."""
    return copy.deepcopy(_parsed(text))


def _default_data() -> dict:
    return _yaml_data(resources.files("assurance.policy").joinpath(DEFAULT_POLICY).read_text())


_EXPECTED = {
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
}


def _describe(error: dict) -> str:
    """One pydantic error as `dotted.key: what is wrong`."""
    path = ".".join(str(part) for part in error["loc"] if part != "[key]") or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key"
    if kind == "missing":
        return f"{path}: missing"
    if kind in _EXPECTED:
        return f"{path}: {_EXPECTED[kind]}, got {error['input']!r}"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        return f"{path}: expected {error['ctx']['expected']}, got {error['input']!r}"
    return f"{path}: {message}"


def validate(data: Any, source: str) -> PolicyDocument:
    """The typed policy, or a one-line PolicyError naming the source and the first key at fault."""
    try:
        return PolicyDocument.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        more = (
            f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
            if len(errors) > 1
            else ""
        )
        raise PolicyError(f"policy {source}: {_describe(errors[0])}{more}") from None


@dataclass(frozen=True)
class Policy:
    """The merged policy. Its hash goes into every manifest so evidence says which rules judged it.

    `data` is the merged plain mapping (what is hashed); the typed sections (`thresholds`, `tiers`,
    ...) are validated from it when the policy is made, so a bad policy never starts a run.
    """

    data: dict = field(default_factory=_default_data)
    source: str = "default"
    document: PolicyDocument = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "document", validate(self.data, self.source))

    @classmethod
    def load(cls, path: str | Path | None = None) -> Policy:
        """Defaults shipped with the package, with the file at `path` merged over them."""
        base = _default_data()
        if not path:
            return cls(base, "default")
        p = Path(path)
        try:
            override = _yaml_data(p.read_text()) or {}
        except FileNotFoundError as exc:
            raise PolicyError(f"policy file not found: {p}") from exc
        except yaml.YAMLError as exc:
            problem = str(exc).replace("\n", " ")
            raise PolicyError(f"policy file {p} is not valid YAML: {problem}") from exc
        if not isinstance(override, dict):
            raise PolicyError(f"policy file {p} must hold a mapping at the top level")
        return cls(_merge(base, override), str(p))

    def with_overrides(self, override: dict, source: str | None = None) -> Policy:
        """This policy with `override` merged over it key by key, as a policy file is over the defaults."""
        return Policy(_merge(self.data, override), source or self.source)

    @property
    def hash(self) -> str:
        """sha256 of the merged policy with every declared check's policy-wide severity spelled out, so a
        default that moved from the YAML into its `CheckSpec` hashes as it did when the YAML held it."""
        canonical = json.dumps(self.effective_data(), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def effective_data(self) -> dict:
        """The merged policy with `severity:` holding every declared check's default, overridden by the file."""
        from assurance.checks.catalog import all_checks

        severity = {spec.name: spec.severity for spec in all_checks()}
        severity.update(self.data.get("severity") or {})
        return {**self.data, "severity": severity}

    @property
    def thresholds(self) -> Thresholds:
        return self.document.thresholds

    @property
    def tiers(self) -> Tiers:
        return self.document.tiers

    @property
    def change_control(self) -> ChangeControl:
        return self.document.change_control

    @property
    def recommendation(self) -> RecommendationRule:
        return self.document.recommendation

    @property
    def mlflow(self) -> MlflowRuns:
        return self.document.mlflow

    def severity(self, check: CheckSpec, tier: str | None = None) -> str:
        """The check's severity: the tier's override (`tiers.levels.<tier>.severity`), else the policy-wide
        one (`severity:`), else the default the check declares."""
        if tier is not None:
            own = self.tier_level(tier).severity.get(check.name)
            if own:
                return own
        return self.document.severity.get(check.name) or check.severity

    def sla_days(self, severity: str) -> int | None:
        """Days to remediate an open finding of this severity; None: no deadline."""
        return getattr(self.document.sla_days, severity, None)

    def tier_level(self, tier: str) -> TierLevel:
        """What the tier requires; an unknown tier gets the default tier's requirements."""
        levels = self.document.tiers.levels
        return levels.get(tier) or levels[self.document.tiers.default]
