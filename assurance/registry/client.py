"""The MLflow registry adapter: one typed object around `MlflowClient`, with no global MLflow state.

Works the same against an embedded `sqlite:///` registry and a `mlflow server` over HTTP, which differ
in small ways (version int vs str, missing `model_id`, page tokens) that are absorbed here.

The end of this module is the one place the product touches MLflow's process-wide state (environment
variables and the fluent API's global URIs): MLflow reads some of its settings only from there.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from assurance.domain.errors import RegistryError
from assurance.domain.values import VersionRecord
from assurance.settings import DEFAULT_TRACKING_URI

RESULT_TAG_PREFIX = "assurance.result."
# the people's decision on a version, copied from its decision record (assurance.governance.decisions)
DECISION_TAG = "assurance.decision"
DOC_SUFFIXES = (".md", ".markdown", ".txt")
MAX_DOC_BYTES = 1 << 20
_UNREACHABLE = (
    "Max retries exceeded",
    "Failed to establish",
    "Connection refused",
    "timed out",
    "Name or service",
)


@dataclass(frozen=True)
class VersionRef:
    """A version as one registry snapshot sees it: enough to fingerprint changes without a full record."""

    name: str
    version: str
    status: str
    tags: dict[str, str]
    aliases: tuple[str, ...]
    run_id: str | None
    created_ms: int | None


def _model_id(mv: Any) -> str | None:
    mid = getattr(mv, "model_id", None)
    if mid:
        return mid
    source = getattr(mv, "source", "") or ""
    if source.startswith("models:/m-"):
        return source.split("/", 1)[1].split("/")[0]
    return None


def is_decision_tag(key: str) -> bool:
    return key == DECISION_TAG or key.startswith(f"{DECISION_TAG}.")


def is_product_tag(key: str) -> bool:
    """Tags the product writes itself (`assurance.result.*`, `assurance.decision` and `assurance.decision.*`):
    the only tags it may write, and the ones whose change never starts a run."""
    return key.startswith(RESULT_TAG_PREFIX) or is_decision_tag(key)


def artifact_root_for(tracking_uri: str) -> str | None:
    """Where an embedded registry keeps artifacts: next to its database, never in ./mlruns.

    None for servers, which choose (and proxy) their own artifact store.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return (Path(tracking_uri[len("sqlite:///") :]).parent / "artifacts").as_uri()


def web_address(tracking_uri: str) -> str | None:
    """The tracking server's address for a browser (http(s) only, without credentials); None when the
    registry is a file or database a browser cannot open."""
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class Registry:
    """Read versions, their runs and artifacts; write back only the product's own tags (`is_product_tag`)
    and assurance runs."""

    def __init__(
        self, tracking_uri: str | None = None, registry_uri: str | None = None, creates: bool = False
    ):
        """`creates`: the registry may be new (the demo builder makes one); otherwise a `sqlite:///` registry
        must already exist, see `require_existing_sqlite`."""
        self.tracking_uri = tracking_uri or DEFAULT_TRACKING_URI
        self.registry_uri = registry_uri or self.tracking_uri
        self.creates = creates
        self._client = None

    @property
    def client(self):
        if self._client is None:
            for uri in {self.tracking_uri, self.registry_uri} if not self.creates else ():
                require_existing_sqlite(uri)
            mlflow_process_defaults()
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        return self._client

    def _call(self, what: str, fn, *args, **kwargs):
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            code = getattr(exc, "error_code", "")
            if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                raise RegistryError(f"{what}: not found in the registry at {self.tracking_uri}") from exc
            if any(marker in str(exc) for marker in _UNREACHABLE):
                raise RegistryError(
                    f"{what} failed: the registry at {self.tracking_uri} cannot be reached; "
                    "check the tracking URI and that the MLflow server is up"
                ) from exc
            raise RegistryError(
                f"{what} failed against {self.tracking_uri}: {str(exc).splitlines()[0]}"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            raise RegistryError(
                f"{what} failed: the registry at {self.tracking_uri} cannot be reached ({type(exc).__name__}: {exc})"
            ) from exc

    def resolve_version(self, name: str, version: str | None = None, alias: str | None = None) -> str:
        """The version number asked for: explicit, behind an alias, or the newest one."""
        if version:
            return str(
                self._call(
                    f"model version {name}/{version}", self.client.get_model_version, name, str(version)
                ).version
            )
        if alias:
            return str(
                self._call(
                    f"alias {alias!r} of {name}", self.client.get_model_version_by_alias, name, alias
                ).version
            )
        versions = list(self._search_versions(f"name = '{_quote(name)}'"))
        if not versions:
            raise RegistryError(f"model {name!r} has no versions in the registry at {self.tracking_uri}")
        return str(max(int(v.version) for v in versions))

    def _paged(self, what: str, search, **kwargs) -> Iterator[Any]:
        """Every item of a paginated search; page tokens are None/bytes embedded and ''/str over HTTP."""
        token = None
        while True:
            page = self._call(what, search, max_results=1000, page_token=token, **kwargs)
            yield from page
            token = getattr(page, "token", None)
            if not token:
                return

    def _search_versions(self, filter_string: str | None = None) -> Iterator[Any]:
        return self._paged(
            "listing model versions", self.client.search_model_versions, filter_string=filter_string
        )

    def _registered_models(self) -> Iterator[Any]:
        return self._paged("listing registered models", self.client.search_registered_models)

    def snapshot(self) -> list[VersionRef]:
        """Every version with merged tags and aliases, from one paginated pass over the registry."""
        models = {m.name: m for m in self._registered_models()}
        refs = []
        for mv in self._search_versions():
            model = models.get(mv.name)
            model_tags = dict(getattr(model, "tags", {}) or {})
            aliases = tuple(
                sorted(
                    a for a, v in (getattr(model, "aliases", {}) or {}).items() if str(v) == str(mv.version)
                )
            )
            refs.append(
                VersionRef(
                    name=mv.name,
                    version=str(mv.version),
                    status=str(mv.status),
                    tags={**model_tags, **dict(mv.tags or {})},
                    aliases=aliases,
                    run_id=mv.run_id,
                    created_ms=mv.creation_timestamp,
                )
            )
        return refs

    def version_record(self, name: str, version: str) -> VersionRecord:
        """The full record the graph starts from; problems with the run or artifacts become notes."""
        version = str(version)
        mv = self._call(f"model version {name}/{version}", self.client.get_model_version, name, version)
        rm = self._call(f"registered model {name}", self.client.get_registered_model, name)
        model_tags = dict(rm.tags or {})
        version_tags = dict(mv.tags or {})
        aliases = sorted(a for a, v in (rm.aliases or {}).items() if str(v) == version)
        record = VersionRecord(
            name=name,
            version=version,
            tags={**model_tags, **version_tags},
            model_tags=model_tags,
            version_tags=version_tags,
            aliases=aliases,
            status=str(mv.status),
            source=mv.source or "",
            run_id=mv.run_id,
            model_id=_model_id(mv),
            created_ms=mv.creation_timestamp,
            updated_ms=mv.last_updated_timestamp,
            description=mv.description or "",
            model_description=rm.description or "",
            model_aliases={a: str(v) for a, v in (rm.aliases or {}).items()},
        )
        self._add_run(record)
        self._add_model_metadata(record)
        return record

    def _add_run(self, record: VersionRecord) -> None:
        if not record.run_id:
            record.notes.append(
                "the version has no source run: logged metrics and documents cannot be checked"
            )
            return
        try:
            run = self.client.get_run(record.run_id)
        except Exception as exc:  # noqa: BLE001
            record.notes.append(f"source run {record.run_id} could not be read: {exc}")
            return
        record.logged_metrics = {k: float(v) for k, v in (run.data.metrics or {}).items()}
        record.run_params = dict(run.data.params or {})
        for ds_input in getattr(run.inputs, "dataset_inputs", None) or []:
            ds = ds_input.dataset
            context = next((t.value for t in ds_input.tags or [] if t.key == "mlflow.data.context"), "")
            record.run_datasets.append(
                {
                    "name": ds.name,
                    "source": _dataset_source(ds.source),
                    "source_type": ds.source_type,
                    "context": context,
                }
            )
        try:
            artifacts = self.client.list_artifacts(record.run_id)
        except Exception as exc:  # noqa: BLE001
            record.notes.append(f"artifacts of run {record.run_id} could not be listed: {exc}")
            return
        record.run_artifacts = sorted(a.path for a in artifacts)
        for art in artifacts:
            if (
                not art.is_dir
                and art.path.lower().endswith(DOC_SUFFIXES)
                and (art.file_size or 0) <= MAX_DOC_BYTES
            ):
                text = self._artifact_text(record.run_id, art.path)
                if text is not None:
                    record.documents[art.path] = text

    def _artifact_text(self, run_id: str, path: str) -> str | None:
        import mlflow.artifacts

        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=path, dst_path=tmp, tracking_uri=self.tracking_uri
                )
                return Path(local).read_text(errors="replace")
            except Exception:  # noqa: BLE001 - an unreadable document is reported as missing
                return None

    def model_download_uri(self, record: VersionRecord) -> str:
        return self._call(
            f"model artifacts of {record.key}",
            self.client.get_model_version_download_uri,
            record.name,
            record.version,
        )

    def download_model(self, record: VersionRecord, dst: Path) -> Path:
        """Model artifacts in a local folder (holding `MLmodel`)."""
        import mlflow.artifacts

        uri = self.model_download_uri(record)
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(dst), tracking_uri=self.tracking_uri
            )
        )

    def _add_model_metadata(self, record: VersionRecord) -> None:
        import mlflow.artifacts
        import yaml

        try:
            uri = self.model_download_uri(record)
            with tempfile.TemporaryDirectory() as tmp:
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{uri.rstrip('/')}/MLmodel", dst_path=tmp, tracking_uri=self.tracking_uri
                )
                mlmodel = yaml.safe_load(Path(local).read_text()) or {}
        except Exception as exc:  # noqa: BLE001
            record.notes.append(f"the model's MLmodel file could not be read: {exc}")
            return
        record.flavors = sorted((mlmodel.get("flavors") or {}).keys())
        signature = mlmodel.get("signature") or {}
        record.signature_inputs = _columns(signature.get("inputs"))
        record.signature_outputs = _columns(signature.get("outputs"))

    def set_result_tags(self, name: str, version: str, tags: Mapping[str, str | None]) -> None:
        """Write results back as `assurance.result.*` version tags; a None value deletes the tag, so no
        result of an earlier run stays behind as if it were this run's."""
        self._set_product_tags(name, version, tags, lambda key: key.startswith(RESULT_TAG_PREFIX))

    def set_decision_tags(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        """Write a recorded decision as `assurance.decision[.*]` version tags, for tools that read tags."""
        self._set_product_tags(name, version, tags, is_decision_tag)

    def _set_product_tags(self, name: str, version: str, tags: Mapping[str, str | None], allowed) -> None:
        for key in tags:
            if not allowed(key):
                raise ValueError(f"refusing to write tag {key!r}: it is not one of the product's own tags")
        for key, value in tags.items():
            if value is None:
                self._call(
                    f"deleting tag {key}", self.client.delete_model_version_tag, name, str(version), key
                )
            else:
                self._call(
                    f"writing tag {key}",
                    self.client.set_model_version_tag,
                    name,
                    str(version),
                    key,
                    str(value),
                )

    def experiment_id(self, name: str) -> str:
        """The id of the active experiment `name`, created when missing (next to the database when embedded).

        Concurrent runs may race to create it: the loser reads the winner's. A deleted experiment of that
        name is an error, since MLflow keeps the name reserved until it is purged or restored.
        """
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return self.client.create_experiment(
                    name, artifact_location=artifact_root_for(self.tracking_uri)
                )
            except MlflowException as exc:
                if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                    raise
                found = self.client.get_experiment_by_name(name)
        if found is None or found.lifecycle_stage != "active":
            raise RegistryError(
                f"experiment {name!r} is deleted in the registry at {self.tracking_uri}: restore it or name another"
            )
        return found.experiment_id


def require_existing_sqlite(uri: str) -> None:
    """Refuse a `sqlite:///` registry whose database file does not exist.

    MLflow would create the folders and an empty registry at a mistyped path and then report only that
    the version is not there; this product reads registries, it never creates one.
    """
    if not uri.startswith("sqlite:///"):
        return
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if path in ("", ":memory:") or Path(path).is_file():
        return
    raise RegistryError(
        f"the registry {uri} does not exist: no database file at {Path(path).resolve()}; "
        "check the tracking URI (MLFLOW_TRACKING_URI or --tracking-uri)"
    )


def _columns(spec: Any) -> list[dict[str, Any]] | None:
    if not spec:
        return None
    cols = json.loads(spec) if isinstance(spec, str) else spec
    if not isinstance(cols, list):
        return None
    return [{"name": c.get("name"), "type": c.get("type"), "required": c.get("required", True)} for c in cols]


def _dataset_source(source: str) -> str:
    """MLflow stores a dataset source as JSON such as {"uri": ...} or {"url": ...}; keep the location."""
    try:
        data = json.loads(source)
    except (TypeError, ValueError):
        return source
    if isinstance(data, dict):
        for key in ("uri", "url", "path", "location"):
            if data.get(key):
                return str(data[key])
    return source


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


# MLflow's process-wide state ----------------------------------------------------------------------
# MLflow reads telemetry, progress bars, run-link printing and HTTP retries only from environment variables
# (no client or call parameter carries them), and its fluent logging API only from global URIs. These three functions
# are the only places the product changes either; nothing uses the environment to pass its own settings.

MLFLOW_PROCESS_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # ending a run on a server prints its link to stdout, which would corrupt `assurance run --json`
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
# the command line: a few retries, then a clear error, instead of ~4 minutes of MLflow's default retries
CLI_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
# a sensor or schedule tick: fail within seconds, so the tick fails visibly and the next one tries again
FAIL_FAST_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}
_TRACKING_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_fail_fast_lock = threading.Lock()
_fail_fast_depth = 0
_fail_fast_saved: dict[str, str | None] = {}


def mlflow_process_defaults(http: Mapping[str, str] | None = None) -> None:
    """Turn off MLflow's telemetry, artifact progress bars and printed run links (and set `http` retry limits)
    for this process.

    MLflow reads these from environment variables only, telemetry once at `import mlflow`; so they are
    environment defaults, set before MLflow is imported: by `Registry.client` (every process that reads
    the registry: runs, sensor ticks, the CLI), by the command line at start (with `CLI_HTTP`) and by
    `mlflow_tracking`. A value the user set is never changed.
    """
    for key, value in {**MLFLOW_PROCESS_DEFAULTS, **(http or {})}.items():
        os.environ.setdefault(key, value)


@contextmanager
def fail_fast_http() -> Iterator[None]:
    """Make MLflow HTTP calls in this block give up in seconds instead of ~4 minutes, unless the user set limits.

    MLflow's REST client takes its retry count and timeout from `MLFLOW_HTTP_REQUEST_MAX_RETRIES` and
    `MLFLOW_HTTP_REQUEST_TIMEOUT` at call time and offers no parameter for them, so the limits are
    environment variables set for the duration of the block. Ticks of several sensors may overlap in one
    code server: the first block in sets the variables the user left unset, the last one out restores
    them, so runs started from this process keep MLflow's defaults.
    """
    global _fail_fast_depth
    with _fail_fast_lock:
        if _fail_fast_depth == 0:
            _fail_fast_saved.clear()
            _fail_fast_saved.update({k: os.environ.get(k) for k in FAIL_FAST_HTTP})
            for key, value in FAIL_FAST_HTTP.items():
                os.environ.setdefault(key, value)
        _fail_fast_depth += 1
    try:
        yield
    finally:
        with _fail_fast_lock:
            _fail_fast_depth -= 1
            if _fail_fast_depth == 0:
                _restore(_fail_fast_saved)


@contextmanager
def mlflow_tracking(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (`mlflow.log_model`, `register_model`, ...) at `uri`, then restore it.

    Only code that logs models the way an owner does needs this (the demo and test registry builder):
    MLflow internals there build their own clients from the process-wide URI, and a URI handed to one
    `MlflowClient` left a stray `./mlflow.db` (STACK.md). `mlflow.set_tracking_uri` also writes
    `MLFLOW_TRACKING_URI`/`MLFLOW_REGISTRY_URI` to the environment; both come back as they were on exit.
    The product's own reads (`Registry`) pass the URI explicitly and need none of this.
    """
    mlflow_process_defaults()
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {key: os.environ.get(key) for key in _TRACKING_ENV}
    saved_tracking = getattr(tracking_utils, "_tracking_uri", None)
    saved_registry = getattr(registry_utils, "_registry_uri", None)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved_tracking)
        mlflow.set_registry_uri(saved_registry)
        _restore(saved_env)


def _restore(saved: Mapping[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
