"""Dagster resources: thin, configurable handles on the registry, the evidence store and the policy.

Each setting falls back to an environment variable, so the same code location serves the embedded demo,
the command line and a real deployment.
"""

from __future__ import annotations

import os

import dagster as dg

from assurance.evidence import EvidenceStore
from assurance.policy import Policy
from assurance.registry import Registry

EVIDENCE_ENV = "ASSURANCE_EVIDENCE_ROOT"
POLICY_ENV = "ASSURANCE_POLICY"
DEFAULT_EVIDENCE = "./evidence"


class RegistryResource(dg.ConfigurableResource):
    """The MLflow registry to assure (default: MLFLOW_TRACKING_URI)."""

    tracking_uri: str | None = None
    registry_uri: str | None = None

    def get(self) -> Registry:
        return Registry(self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"), self.registry_uri)


class EvidenceResource(dg.ConfigurableResource):
    """Where evidence is published: a folder or fsspec URI (default: ASSURANCE_EVIDENCE_ROOT or ./evidence)."""

    root: str | None = None

    def get(self) -> EvidenceStore:
        return EvidenceStore(self.root or os.environ.get(EVIDENCE_ENV) or DEFAULT_EVIDENCE)


class PolicyResource(dg.ConfigurableResource):
    """The assurance policy: the packaged default merged with an optional file (ASSURANCE_POLICY)."""

    path: str | None = None

    def get(self) -> Policy:
        return Policy.load(self.path or os.environ.get(POLICY_ENV) or None)


def default_resources() -> dict[str, dg.ConfigurableResource]:
    return {"registry": RegistryResource(), "evidence": EvidenceResource(), "policy": PolicyResource()}
