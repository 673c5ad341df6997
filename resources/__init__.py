"""Dagster resources: thin, configurable handles on the registry, the evidence store and the policy.

Their values come from the `Settings` the composition root passes to `build_resources` (the code
location reads them from the environment once; the command line adds its options), never from the
environment directly, so the same code location serves the embedded demo, the command line and a real
deployment.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping

import dagster as dg

from assurance.domain.values import Dataset, VersionRecord
from assurance.evidence.store import EvidenceStore
from assurance.policy.model import Policy
from assurance.registry.client import Registry
from assurance.settings import DEFAULT_EVIDENCE_ROOT, DEFAULT_MEMORY_BUDGET_MB, Settings


class RegistryResource(dg.ConfigurableResource):
    """The MLflow registry to assure (settings: MLFLOW_TRACKING_URI; unset means sqlite:///mlflow.db)."""

    tracking_uri: str | None = None
    registry_uri: str | None = None

    def get(self) -> Registry:
        return Registry(self.tracking_uri, self.registry_uri)


class EvidenceResource(dg.ConfigurableResource):
    """Where evidence is published: a folder or fsspec URI (settings: ASSURANCE_EVIDENCE_ROOT, ./evidence), and
    the web address that serves it, if any (ASSURANCE_EVIDENCE_URL), for report links a browser can open."""

    root: str = DEFAULT_EVIDENCE_ROOT
    web_url: str | None = None

    def get(self) -> EvidenceStore:
        return EvidenceStore(self.root, self.web_url)


class PolicyResource(dg.ConfigurableResource):
    """The assurance policy: the packaged default merged with an optional file (settings: ASSURANCE_POLICY)."""

    path: str | None = None

    def get(self) -> Policy:
        return Policy.load(self.path)


class DataResource(dg.ConfigurableResource):
    """Reads reference and current data; data larger than the memory budget is read as a seeded sample
    (settings: ASSURANCE_DATA_MEMORY_BUDGET_MB, per dataset)."""

    memory_budget_mb: int = DEFAULT_MEMORY_BUDGET_MB

    def load(self, record: VersionRecord, role: str) -> Dataset:
        from assurance.data.sources import load_dataset

        return load_dataset(record, role, self.memory_budget_mb)

    def reload(self, ref: dict) -> Dataset:
        from assurance.data.sources import reload

        return reload(ref, self.memory_budget_mb)


DATA_IO_MANAGER = "data_io_manager"


def build_resources(settings: Settings) -> dict:
    """The resources every asset, sensor and schedule uses, configured from `settings`."""
    data = DataResource(memory_budget_mb=settings.data_memory_budget_mb)
    return {
        "registry": RegistryResource(tracking_uri=settings.tracking_uri),
        "evidence": EvidenceResource(root=settings.evidence_root, web_url=settings.evidence_url),
        "policy": PolicyResource(path=settings.policy_path),
        "data": data,
        DATA_IO_MANAGER: DataIOManager(data=data),
        "io_manager": PickleIOManager(),
    }


class _RunMemo(dg.UPathIOManager):
    """Keeps the run's outputs in this process, so the run's later steps take them from memory; stores and
    reads a batch of versions (assets.partitions) one version at a time.

    Steps of one run share the process (in-process executor). An input served from memory skips the file
    read and the two log lines Dagster's loader writes per input: about 160 event-log writes per run, which
    cost more than the analyses of a small version. Dagster makes the IO manager once per run, so the
    memory is the run's and goes with it; what is written to storage is unchanged.
    """

    def __init__(self, base_path):
        super().__init__(base_path=base_path)
        self._memo: dict[str, object] = {}

    def remember(self, path, value: object) -> None:
        self._memo[str(path)] = value

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        """A batch's output is a value per version, each written to its version's own path."""
        if not (context.has_asset_partitions and len(context.asset_partition_keys) > 1):
            return super().handle_output(context, obj)
        for key, path in self._get_paths_for_partitions(context).items():
            self.make_directory(path.parent)
            self.dump_to_path(context, obj[key], path)
            # the path each version's materialization shows, as Dagster's own handle_output records it
            context.step_context.add_asset_metadata(
                {"path": dg.MetadataValue.path(str(path))}, partition_key=key
            )

    def load_input(self, context: dg.InputContext):
        if not (context.has_asset_key and context.has_asset_partitions):
            return super().load_input(context)
        paths = self._get_paths_for_partitions(context)
        if len(paths) == 1:
            ((key, path),) = paths.items()
            return self._load_one(context, key, path)
        return _ByVersion(
            {
                key: lambda key=key, path=path: self._load_one(context, key, path)
                for key, path in paths.items()
            }
        )

    def _load_one(self, context: dg.InputContext, key: str, path):
        """One version's value: from this run's memory, else from storage as Dagster's loader reads it."""
        if str(path) in self._memo:
            return self.from_memory(self._memo[str(path)])
        return self._load_partition_from_path(context, key, path)

    def from_memory(self, value: object):
        return value


class _ByVersion(Mapping):
    """A batch's input: each version's value, read when the step comes to that version."""

    def __init__(self, loaders: dict):
        self._loaders = loaders

    def __getitem__(self, key: str):
        return self._loaders[key]()

    def __iter__(self):
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)


class _Pickled(_RunMemo):
    """Dagster's default storage (a pickle per output and partition, in the instance's storage folder), with
    the bytes kept in memory for the run: each input is still its own unpickled copy, as from disk."""

    def dump_to_path(self, context: dg.OutputContext, obj, path) -> None:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.remember(path, data)

    def load_from_path(self, context: dg.InputContext, path):
        return pickle.loads(path.read_bytes())

    def from_memory(self, value: object):
        return pickle.loads(value)


class PickleIOManager(dg.ConfigurableIOManagerFactory):
    """The default IO manager: pickles in the instance's storage folder, served from memory within a run."""

    base_dir: str | None = None

    def create_io_manager(self, context: dg.InitResourceContext) -> _Pickled:
        from upath import UPath

        return _Pickled(UPath(self.base_dir or context.instance.storage_directory()))


class _DataByReference(_RunMemo):
    """Stores a dataset's URI and fingerprint, not its rows; the rows stay in memory for the rest of the run,
    in a batch while they fit in two datasets' memory budget (one version's reference and current data).

    Pickling reference and current frames for every version would copy all model data into Dagster's
    storage. A later run that needs the asset alone, or a later step of a batch whose data did not all
    fit, reads the data again and refuses it if it changed.
    """

    extension = ".json"

    def __init__(self, base_path, data: DataResource):
        super().__init__(base_path=base_path)
        self.data = data
        self._held_mb = 0.0

    def dump_to_path(self, context: dg.OutputContext, obj, path) -> None:
        import json

        from assurance.data.sources import reference_of

        size_mb = 0 if obj.frame is None else obj.frame.memory_usage().sum() / 2**20
        batch = context.has_asset_partitions and len(context.asset_partition_keys) > 1
        if not batch or self._held_mb + size_mb <= 2 * self.data.memory_budget_mb:
            self.remember(path, obj)
            self._held_mb += size_mb
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(reference_of(obj)))

    def load_from_path(self, context: dg.InputContext, path):
        import json

        return self.data.reload(json.loads(path.read_text()))


class DataIOManager(dg.ConfigurableIOManagerFactory):
    """IO manager for reference and current data: by reference, in the instance's storage folder; a
    re-read keeps to the same memory budget as the first read."""

    data: DataResource
    base_dir: str | None = None

    def create_io_manager(self, context: dg.InitResourceContext) -> _DataByReference:
        from upath import UPath

        return _DataByReference(UPath(self.base_dir or context.instance.storage_directory()), self.data)
