"""Evidence across runs: every published run folder of the store, and any of its tables stacked with provenance.

Only folders with a manifest count (half-written or staged folders never do), so anything computed
here is a pure function of published evidence and needs no shared mutable state.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from assurance.evidence.store import MANIFEST, PORTFOLIO, safe_segment, segment_name

if TYPE_CHECKING:
    from assurance.evidence.store import EvidenceStore

RUN_COLUMNS = ["model", "version", "run_id", "path", "at", "recommendation"]


@dataclass(frozen=True)
class RunFolder:
    """One published run: decoded model and version, its folder relative to the root, and when it finished."""

    model: str
    version: str
    run_id: str
    path: str
    at: pd.Timestamp
    recommendation: str | None
    files: frozenset[str]

    def has(self, stem: str) -> bool:
        """Whether the run's manifest lists `<stem>.parquet`."""
        return f"{stem}.parquet" in self.files


def run_time(manifest: dict, run_id: str) -> pd.Timestamp:
    """When the run finished per its manifest; run ids start with their UTC start time as a fallback."""
    for key in ("finished_at", "started_at"):
        if manifest.get(key):
            stamp = pd.Timestamp(manifest[key])
            return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    try:
        return pd.Timestamp(datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
    except ValueError:
        return pd.Timestamp(0, tz=UTC)


@dataclass(frozen=True)
class VersionFolder:
    """One version's folder: decoded model and version, and its path relative to the root."""

    model: str
    version: str
    path: str


def version_folders(
    store: EvidenceStore, model: str | None = None, version: str | None = None
) -> list[VersionFolder]:
    """The version folders of the store, of `model`, or the one of `model` and `version`: listings only."""
    if model is not None and version is not None:
        return [VersionFolder(model, str(version), store.version_path(model, version))]
    models = [safe_segment(model)] if model is not None else store.subfolders("")
    return [
        VersionFolder(segment_name(m) or m, segment_name(v) or v, f"{m}/{v}")
        for m in models
        if m != PORTFOLIO
        for v in store.subfolders(m)
    ]


def published_runs(store: EvidenceStore, folder: VersionFolder, names: list[str]) -> list[RunFolder]:
    """The published runs among the run folders `names` of one version, oldest first: one manifest read each,
    and a folder without a manifest (still being written, or abandoned) is not a run."""
    out = []
    for name in names:
        try:
            manifest = store.read_manifest(f"{folder.path}/{name}")
        except FileNotFoundError:
            continue
        out.append(_run_folder(folder.model, folder.version, f"{folder.path}/{name}", manifest))
    return sorted(out, key=lambda r: (r.at, r.run_id))


def _name(segment: str, manifest: dict, key: str) -> str:
    """A folder's model or version name as typed: decoded, or from the manifest when the folder name was
    shortened (a name too long for a file name)."""
    return segment_name(segment) or str(manifest.get(key, segment))


def _run_folder(model: str, version: str, path: str, manifest: dict) -> RunFolder:
    run_id = path.rsplit("/", 1)[-1]
    return RunFolder(
        model=model,
        version=version,
        run_id=run_id,
        path=path,
        at=run_time(manifest, run_id),
        recommendation=manifest.get("recommendation"),
        files=frozenset(e.get("path", "") for e in manifest.get("files", [])),
    )


def run_folders(
    store: EvidenceStore, model: str | None = None, version: str | None = None
) -> list[RunFolder]:
    """Every published run, oldest first within each version; only `model`'s (and `version`'s) when given."""
    base = store.base.rstrip("/")
    scope = base
    if model is not None:
        scope = (
            f"{base}/{store.version_path(model, version)}"
            if version is not None
            else f"{base}/{safe_segment(model)}"
        )
    store.refresh()
    if not store.fs.exists(scope):
        return []
    out = []
    for path in store.fs.find(scope):
        rel = path[len(base) + 1 :] if path.startswith(base + "/") else path
        parts = rel.split("/")
        if (
            len(parts) != 4
            or parts[3] != MANIFEST
            or parts[0] == PORTFOLIO
            or any(p.startswith(".") for p in parts)
        ):
            continue
        folder = "/".join(parts[:3])
        manifest = store.read_manifest(folder)
        out.append(_run_folder(_name(parts[0], manifest, "model"), _name(parts[1], manifest, "version"), folder, manifest))
    return sorted(out, key=lambda r: (r.model, r.version, r.at, r.run_id))


def runs_frame(folders: list[RunFolder]) -> pd.DataFrame:
    """The run folders as a table (one row per run)."""
    frame = pd.DataFrame(
        [(r.model, r.version, r.run_id, r.path, r.at, r.recommendation) for r in folders], columns=RUN_COLUMNS
    )
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def read_table(store: EvidenceStore, folder: str, stem: str) -> pd.DataFrame | None:
    """`<stem>.parquet` of one run folder, or None when that run did not write it."""
    try:
        data = store.read_bytes(f"{folder}/{stem}.parquet")
    except FileNotFoundError:
        return None
    return pd.read_parquet(io.BytesIO(data))


def stacked_table(store: EvidenceStore, folders: list[RunFolder], stem: str) -> pd.DataFrame | None:
    """One table across runs, each row tagged with model, version, run_id and run time; None if no run has it."""
    frames = []
    for run in folders:
        frame = read_table(store, run.path, stem) if run.has(stem) else None
        if frame is None:
            continue
        frame = frame.assign(model=run.model, version=run.version, run_id=run.run_id, run_at=run.at)
        frames.append(frame)
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)
