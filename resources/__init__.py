"""Dagster resources: thin, configurable handles on the registry, the evidence store and the policy.

Each setting falls back to an environment variable, so the same code location serves the embedded demo,
the command line and a real deployment.
"""

from __future__ import annotations

import os

import dagster as dg

from assurance.evidence.store import EvidenceStore
from assurance.policy.model import Policy
from assurance.registry.client import Registry

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


DATA_IO_MANAGER = "data_io_manager"


def default_resources() -> dict:
    return {
        "registry": RegistryResource(),
        "evidence": EvidenceResource(),
        "policy": PolicyResource(),
        DATA_IO_MANAGER: DataIOManager(),
    }


_LOADED: dict[str, tuple[str, object]] = {}


class _DataByReference(dg.UPathIOManager):
    """Stores a dataset's URI and fingerprint, not its rows; the rows stay in memory for the rest of the run.

    Pickling reference and current frames for every version would copy all model data into Dagster's
    storage. Steps of one run share the process (in-process executor), so they get the frame from
    memory; a later run that needs the asset alone reads the data again and refuses it if it changed.
    """

    extension = ".json"

    def dump_to_path(self, context: dg.OutputContext, obj, path) -> None:
        import json

        from assurance.data.sources import reference_of

        partition = context.asset_partition_key
        for key in [k for k, (p, _) in _LOADED.items() if p != partition]:
            del _LOADED[key]  # one version's data at a time: a loop over versions must not pile up frames
        _LOADED[str(path)] = (partition, obj)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(reference_of(obj)))

    def load_from_path(self, context: dg.InputContext, path):
        import json

        from assurance.data.sources import reload

        if str(path) in _LOADED:
            return _LOADED[str(path)][1]
        return reload(json.loads(path.read_text()))


class DataIOManager(dg.ConfigurableIOManagerFactory):
    """IO manager for reference and current data: by reference, in the instance's storage folder."""

    base_dir: str | None = None

    def create_io_manager(self, context: dg.InitResourceContext) -> _DataByReference:
        from upath import UPath

        return _DataByReference(base_path=UPath(self.base_dir or context.instance.storage_directory()))
