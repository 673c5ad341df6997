"""Policy as code: tiers, thresholds, severities, SLAs and the recommendation rule in one YAML file."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from assurance.domain.checks import CheckSpec

DEFAULT_POLICY = "default_policy.yaml"


class PolicyError(ValueError):
    """The policy file cannot be read or does not have the expected shape."""


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _default_data() -> dict:
    return yaml.safe_load(resources.files("assurance.policy").joinpath(DEFAULT_POLICY).read_text())


@dataclass(frozen=True)
class Policy:
    """The merged policy. Its hash goes into every manifest so evidence says which rules judged it."""

    data: dict = field(default_factory=_default_data)
    source: str = "default"

    @classmethod
    def load(cls, path: str | Path | None = None) -> Policy:
        """Defaults shipped with the package, with the file at `path` merged over them."""
        base = _default_data()
        if not path:
            return cls(base, "default")
        p = Path(path)
        try:
            override = yaml.safe_load(p.read_text()) or {}
        except FileNotFoundError as exc:
            raise PolicyError(f"policy file not found: {p}") from exc
        except yaml.YAMLError as exc:
            raise PolicyError(f"policy file {p} is not valid YAML: {exc}") from exc
        if not isinstance(override, dict):
            raise PolicyError(f"policy file {p} must hold a mapping at the top level")
        return cls(_merge(base, override), str(p))

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

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def threshold(self, dotted: str, default: Any = None) -> Any:
        """A value under `thresholds:`; a missing one without a default is a policy error."""
        value = self.get(f"thresholds.{dotted}", default)
        if value is None:
            raise PolicyError(f"policy has no threshold thresholds.{dotted}")
        return value

    def severity(self, check: CheckSpec, tier: str | None = None) -> str:
        """The check's severity: the tier's override (`tiers.levels.<tier>.severity`), else the policy-wide
        one (`severity:`), else the default the check declares."""
        if tier is not None:
            own = (self.tier_config(tier).get("severity") or {}).get(check.name)
            if own:
                return own
        return (self.data.get("severity") or {}).get(check.name) or check.severity

    def sla_days(self, severity: str) -> int | None:
        return self.data.get("sla_days", {}).get(severity)

    def tier_config(self, tier: str) -> dict:
        levels = self.get("tiers.levels", {})
        return levels.get(tier) or levels.get(self.get("tiers.default", "medium"), {})
