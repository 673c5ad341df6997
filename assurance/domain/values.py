"""The values that flow through the assurance graph: plain dataclasses, picklable between Dagster steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from assurance.domain.findings import Finding
    from assurance.evidence.store import EvidenceStore
    from assurance.policy.model import Policy
    from assurance.scoring.models import ScoringModel


def partition_key(name: str, version: str | int) -> str:
    """MLflow forbids `/` in model names, so `NAME/VERSION` splits back unambiguously on the last `/`."""
    return f"{name}/{version}"


# The tags by which a Dagster run covers a range of versions (a backfill's batch) instead of one partition.
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def version_order(key: str) -> tuple[str, int, str]:
    """Sort key of partition keys: by model, then version number (MLflow versions are numbers)."""
    name, version = split_partition_key(key)
    return (name, int(version), "") if version.isdigit() else (name, -1, version)


def consecutive(keys: list[str], order: list[str], size: int) -> list[list[str]]:
    """`keys` cut into batches of up to `size` versions that are neighbours in the partitions' `order`:
    one run covers a range of partitions, so a batch must be one."""
    position = {k: i for i, k in enumerate(order)}
    batches: list[list[str]] = []
    for key in sorted(keys, key=position.__getitem__):
        last = batches[-1] if batches else None
        if last and len(last) < size and position[last[-1]] + 1 == position[key]:
            last.append(key)
        else:
            batches.append([key])
    return batches


def covered(run_tags: dict[str, str], order: list[str]) -> list[str]:
    """The versions a run covers: its partition, or every partition of its range in `order`."""
    if "dagster/partition" in run_tags:
        return [run_tags["dagster/partition"]]
    start, end = run_tags.get(RANGE_START_TAG), run_tags.get(RANGE_END_TAG)
    if start not in order or end not in order:
        return []
    return order[order.index(start) : order.index(end) + 1]


def split_partition_key(key: str) -> tuple[str, str]:
    name, sep, version = key.rpartition("/")
    if not sep or not name or not version:
        raise ValueError(f"partition key {key!r} is not of the form NAME/VERSION")
    return name, version


@dataclass
class VersionRecord:
    """Everything the registry says about one model version, tags merged model-then-version.

    `documents` holds the text of the markdown artifacts at the top of the source run (model card,
    datasheet, ...), so documentation checks need no registry access of their own. `model_aliases` maps
    every alias of the registered model to its version, so the version's champion can be named.
    """

    name: str
    version: str
    tags: dict[str, str]
    model_tags: dict[str, str]
    version_tags: dict[str, str]
    aliases: list[str]
    status: str
    source: str
    run_id: str | None
    model_id: str | None
    created_ms: int | None
    updated_ms: int | None
    description: str = ""
    model_description: str = ""
    signature_inputs: list[dict[str, Any]] | None = None
    signature_outputs: list[dict[str, Any]] | None = None
    flavors: list[str] = field(default_factory=list)
    logged_metrics: dict[str, float] = field(default_factory=dict)
    run_params: dict[str, str] = field(default_factory=dict)
    run_artifacts: list[str] = field(default_factory=list)
    run_datasets: list[dict[str, str]] = field(default_factory=list)
    documents: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    model_aliases: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return partition_key(self.name, self.version)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def feature_names(self) -> list[str] | None:
        if not self.signature_inputs:
            return None
        return [c["name"] for c in self.signature_inputs if c.get("name")]

    def tag_list(self, key: str) -> list[str]:
        """A comma-separated tag as a clean list."""
        return [v.strip() for v in self.tags.get(key, "").split(",") if v.strip()]


@dataclass(frozen=True)
class Sampling:
    """How data too big for the memory budget was read: a seeded uniform sample of its rows.

    Evidence carries it so a reviewer knows counts (rows, duplicates) are the sample's while rates and
    distributions estimate the full data's, and can draw the same sample again from the same seed.
    """

    rows_total: int
    rows_kept: int
    method: str
    seed: int
    budget_mb: int

    def describe(self) -> str:
        return (
            f"a seeded uniform sample of {self.rows_kept:,} of {self.rows_total:,} rows ({self.method}, "
            f"seed {self.seed}) to stay within the {self.budget_mb:,} MB memory budget"
        )


@dataclass
class Dataset:
    """Reference or current data, or the reason it could not be had (which becomes a finding).

    `sampling` is set when the data was larger than the memory budget and `frame` holds a sample of it.
    """

    role: str
    uri: str | None
    frame: pd.DataFrame | None = None
    error: str | None = None
    fingerprint: str | None = None
    label: str | None = None
    sampling: Sampling | None = None

    @property
    def ok(self) -> bool:
        return self.frame is not None

    @property
    def has_label(self) -> bool:
        return self.ok and self.label is not None and self.label in self.frame.columns

    @property
    def rows(self) -> int:
        return 0 if self.frame is None else len(self.frame)

    @property
    def rows_total(self) -> int:
        """Rows of the data itself, not of the sample when it was sampled."""
        return self.sampling.rows_total if self.sampling else self.rows


@dataclass
class Scores:
    """Model outputs for one dataset, aligned with its rows.

    `prediction` holds the predicted label (classifiers) or value (regressors); `score` holds the
    probability of `positive` for binary classifiers and is absent otherwise. Rows the model could
    not score (`unscored` of them, e.g. missing values it cannot take) hold NaN in both.
    """

    frame: pd.DataFrame | None = None
    error: str | None = None
    unscored: int = 0
    unscored_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.frame is not None


@dataclass
class Predictions:
    """The model's outputs on reference and current data."""

    task: str  # "binary", "multiclass", "regression" or "unknown"
    reference: Scores
    current: Scores
    positive: Any = None
    classes: list[Any] = field(default_factory=list)
    loader: str = ""
    error: str | None = None

    def for_role(self, role: str) -> Scores:
        return self.reference if role == "reference" else self.current


@dataclass
class Champion:
    """The version a challenger is compared with: its version and the alias naming it, its record and
    model when they loaded, else `reason` (no champion, the version is its own champion, or why it did
    not load), which the comparison reports instead."""

    version: str | None = None
    alias: str | None = None
    record: VersionRecord | None = None
    model: ScoringModel | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.model is not None


@dataclass
class Inputs:
    """What an analysis gets: the version, the policy, both datasets, the predictions and the store; for
    analyses that need them, the version's own model and its champion's; and the memory budget for any
    other data it reads (the training data; None: the settings' default)."""

    record: VersionRecord
    policy: Policy
    reference: Dataset | None = None
    current: Dataset | None = None
    predictions: Predictions | None = None
    model: ScoringModel | None = None
    store: EvidenceStore | None = None
    data_budget_mb: int | None = None
    champion: Champion | None = None

    def dataset(self, role: str) -> Dataset | None:
        return self.reference if role == "reference" else self.current


@dataclass
class Section:
    """One analysis's result: findings, evidence tables and plots, and its part of the report.

    `tables` map a file stem to a frame (written as `<stem>.parquet`); `plots` map a name to PNG bytes
    (written as `plots/<name>.png`); `summary` is markdown for the report; `skipped` says which
    checks could not run and why; `metrics` are numbers shown as Dagster metadata.
    """

    key: str
    title: str
    findings: list[Finding] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    plots: dict[str, bytes] = field(default_factory=dict)
    summary: str = ""
    skipped: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    def skip(self, reason: str) -> Section:
        self.skipped.append(reason)
        return self
