"""Typed views of one group of policy thresholds, so an analysis reads its limits once, by name."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from assurance.policy.model import Policy

T = TypeVar("T")


def load_rules(cls: type[T], policy: Policy, group: str) -> T:
    """Build dataclass `cls` from `thresholds.<group>.<field>`; a missing key is a PolicyError naming it."""
    return cls(**{f.name: policy.threshold(f"{group}.{f.name}") for f in fields(cls)})
