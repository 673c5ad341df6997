"""The evidence store: per-version run folders written whole or not at all, with a verifiable manifest.

Layout: `<root>/<model>/<version>/<run_id>/` holding the tables, report and `manifest.json`, and
`<root>/_portfolio/` for portfolio tables. Every model name and version becomes one safe path segment
through `safe_segment`, the only way a name reaches a path.
A run folder counts only once its manifest exists: on local disk the folder is staged aside and
renamed into place; elsewhere (object stores have no rename) the files go first and the manifest last,
written create-only so a published run is never replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from assurance.domain.errors import EvidenceError

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "manifest.json"
PORTFOLIO = "_portfolio"
STAGING = ".staging-"
# a publisher fills its staging folder within seconds; one untouched this long was left by a killed process
STALE_STAGING_SECONDS = 3600
# fsspec protocols without real folders, where "making a folder" would create a missing bucket instead
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
# the product's own top-level folders, compared case-blind: macOS and Windows disks ignore case
RESERVED = frozenset({PORTFOLIO.casefold()})
# the longest file name most file systems take (ext4, APFS, NTFS: 255 bytes; segments here are ASCII)
MAX_SEGMENT = 255
# never literal in an encoded name (`~` is percent-encoded), so it marks a shortened segment unambiguously
SHORTENED = "~"
_SAFE = re.compile(r"[A-Za-z0-9_\-]")


def _escape(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode())


def safe_segment(name: str) -> str:
    """The one path segment a model name or version is stored under: deterministic, and no two names share one.

    Everything but letters, digits, `_` and `-` is percent-encoded, so no name can climb (`..`), split
    (`/`, `\\`, slash lookalikes such as U+2215) or carry control characters into a path; ordinary names
    stay as typed. A name equal to one of the product's folders (`_portfolio`) gets its first character
    encoded too. A segment too long for a file name keeps a readable head plus a hash of the whole; only
    then is it not reversible, and the run's manifest keeps the name (see `segment_name`).
    """
    if not name:
        raise EvidenceError("an empty name cannot become an evidence path segment")
    encoded = "".join(ch if _SAFE.fullmatch(ch) else _escape(ch) for ch in name)
    if encoded.casefold() in RESERVED:
        encoded = _escape(encoded[0]) + encoded[1:]
    return shorten(encoded)


def shorten(segment: str, limit: int = MAX_SEGMENT) -> str:
    """`segment` when it fits in `limit` characters, else its head, `~` and a hash of the whole segment
    (cut before any half escape), so distinct long segments stay distinct and readable at a glance."""
    if len(segment) <= limit:
        return segment
    digest = hashlib.sha256(segment.encode()).hexdigest()[:32]
    head = segment[: limit - len(digest) - len(SHORTENED)]
    cut = head.rfind("%", len(head) - 2)
    return f"{head[:cut] if cut >= 0 else head}{SHORTENED}{digest}"


def segment_name(segment: str) -> str | None:
    """The name a segment was made from, or None for a shortened one (its manifest keeps the name)."""
    return None if SHORTENED in segment else unquote(segment)


def new_run_id(now: datetime | None = None) -> str:
    """Sortable by time, unique across concurrent runs."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: v if v is None or isinstance(v, (str, bytes)) else str(v))
    out.to_parquet(buf, index=False)
    return buf.getvalue()


def manifest_entries(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [{"path": p, "sha256": sha256_bytes(b), "size": len(b)} for p, b in sorted(files.items())]


def manifest_document(files: dict[str, bytes], manifest: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The manifest with every file's sha256 and size, and the exact bytes of `manifest.json`: what is
    published, and what a copy elsewhere (the MLflow run) must hold to be verifiable against it."""
    document = {**manifest, "files": manifest_entries(files)}
    return document, json.dumps(document, indent=2, sort_keys=True, default=str).encode()


@dataclass(frozen=True)
class Published:
    """Where a run's evidence landed: `path` is the run folder relative to the root."""

    root: str
    path: str
    run_id: str
    manifest: dict[str, Any]

    @property
    def url(self) -> str:
        return f"{self.root.rstrip('/')}/{self.path}"


class EvidenceStore:
    """An fsspec-backed store rooted at a local path or any URI such as `s3://bucket/prefix`.

    Credentials and endpoints come from the file system's own configuration (for S3 the AWS
    variables, e.g. `AWS_ENDPOINT_URL_S3` for an S3-compatible service), never from the root.
    """

    def __init__(self, root: str, web_url: str | None = None):
        from fsspec.core import url_to_fs

        self.root = str(root)
        self.web_url = web_url.rstrip("/") if web_url else None
        self.fs, self.base = url_to_fs(self.root)
        protocols = set(self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self.local = "file" in protocols
        self.object_store = bool(protocols & OBJECT_STORES)
        self._unpublished: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}

    def hold_unpublished(self, model: str, version: str, tables: dict[str, pd.DataFrame]) -> None:
        """Tables computed for a version that is published later, at the end of a batch of versions: its
        model's later versions in the batch read them as its latest evidence, as after a run of its own."""
        self._unpublished[(model, str(version))] = tables

    def makedirs(self, path: str) -> None:
        """Make a folder where folders exist; on object stores they do not, and s3fs would create a missing bucket."""
        if not self.object_store:
            self.fs.makedirs(path, exist_ok=True)

    def refresh(self) -> None:
        """Forget cached listings: object-store clients keep them for the life of the process, and a reader
        must see the runs other processes published since (and the objects they changed)."""
        self.fs.invalidate_cache()

    def link(self, rel: str) -> str | None:
        """The address a browser opens for a file under the root, when a web server serves the root
        (`ASSURANCE_EVIDENCE_URL`); None otherwise. Paths hold percent-encoded names, so `%` is encoded again."""
        return f"{self.web_url}/{quote(rel, safe='/')}" if self.web_url else None

    def _abs(self, rel: str) -> str:
        return f"{self.base.rstrip('/')}/{rel}" if rel else self.base

    def version_path(self, model: str, version: str) -> str:
        return f"{safe_segment(model)}/{safe_segment(str(version))}"

    def check_writable(self) -> None:
        """Fail early and clearly when the root cannot take evidence; a run must not lose its work late."""
        probe = self._abs(f".write-probe-{uuid.uuid4().hex[:8]}")
        try:
            self.makedirs(self.base)
            with self.fs.open(probe, "wb") as fh:
                fh.write(b"ok")
            self.fs.rm(probe)
        except Exception as exc:  # noqa: BLE001 - any storage error means the same to the user
            raise EvidenceError(
                f"evidence root {self.root!r} is not writable ({type(exc).__name__}: {exc}); "
                "set --evidence or ASSURANCE_EVIDENCE_ROOT to a folder or URI you can write to"
            ) from exc

    def create(self, rel: str, data: bytes) -> None:
        """Write one object that must not exist yet, whole: readers see all of it or none, and no writer
        can replace another's. On local disk the bytes are staged aside and hard-linked into place (a link
        refuses an existing name, where a rename would replace it); object stores put it create-only."""
        path = self._abs(rel)
        parent, _, leaf = path.rpartition("/")
        try:
            self.makedirs(parent)
            if self.local:
                staged = f"{parent}/.{leaf}.{uuid.uuid4().hex[:8]}.staging"
                with open(staged, "xb") as fh:
                    fh.write(data)
                try:
                    os.link(staged, path)
                finally:
                    os.unlink(staged)
            else:
                with self.fs.open(path, "xb") as fh:
                    fh.write(data)
        except Exception as exc:  # noqa: BLE001 - any storage error means the same to the user
            raise EvidenceError(f"could not create {self.root.rstrip('/')}/{rel}: {exc}") from exc

    def read_folder(self, rel_dir: str) -> dict[str, bytes]:
        """Every object directly in `rel_dir` by name, staged dot-names left out, fetched in one batch (an
        object store serves them concurrently); empty when there is no such folder."""
        self.refresh()
        try:
            entries = self.fs.ls(self._abs(rel_dir), detail=True)
        except FileNotFoundError:
            return {}
        paths = [
            e["name"]
            for e in entries
            if e["type"] == "file" and not e["name"].rstrip("/").rsplit("/", 1)[-1].startswith(".")
        ]
        blobs = self.fs.cat(paths) if paths else {}
        return {path.rstrip("/").rsplit("/", 1)[-1]: data for path, data in blobs.items()}

    def publish(self, rel_dir: str, files: dict[str, bytes], manifest: dict[str, Any]) -> Published:
        """Write `files` plus `manifest.json` under `rel_dir`, whole or not at all, never overwriting."""
        final = self._abs(rel_dir)
        self.refresh()
        if self.fs.exists(final):
            raise EvidenceError(f"evidence folder {rel_dir} already exists; evidence is never overwritten")
        manifest, body = manifest_document(files, manifest)
        parent, _, leaf = final.rstrip("/").rpartition("/")
        target = f"{parent}/{STAGING}{leaf}" if self.local else final
        if self.local:
            self._sweep_staging(parent)
        try:
            self._write_all(target, files, body)
            if self.local:
                self.fs.mv(target, final, recursive=True)
        except Exception as exc:
            if self.local and self.fs.exists(target):
                self.fs.rm(target, recursive=True)
            raise EvidenceError(f"could not publish evidence to {self.root}/{rel_dir}: {exc}") from exc
        return Published(self.root, rel_dir, rel_dir.rsplit("/", 1)[-1], manifest)

    def _sweep_staging(self, parent: str) -> None:
        """Remove staging folders that killed publishers left beside the runs: readers never list them, but
        each holds a run's worth of files. Only stale ones go: a live publisher's folder is seconds old."""
        if not self.fs.exists(parent):
            return
        cutoff = time.time() - STALE_STAGING_SECONDS
        for entry in self.fs.ls(parent, detail=True):
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if name.startswith(STAGING) and entry.get("mtime", cutoff) < cutoff:
                with contextlib.suppress(FileNotFoundError):  # another publisher swept it first
                    self.fs.rm(entry["name"], recursive=True)

    def _write_all(self, target: str, files: dict[str, bytes], manifest_body: bytes) -> None:
        for rel, data in files.items():
            path = f"{target}/{rel}"
            self.makedirs(path.rsplit("/", 1)[0])
            with self.fs.open(path, "wb") as fh:
                fh.write(data)
        self.makedirs(target)
        with self.fs.open(f"{target}/{MANIFEST}", "xb") as fh:
            fh.write(manifest_body)

    def publish_run(
        self, model: str, version: str, run_id: str, files: dict[str, bytes], manifest: dict
    ) -> Published:
        return self.publish(f"{self.version_path(model, version)}/{safe_segment(run_id)}", files, manifest)

    def runs(self, model: str, version: str) -> list[str]:
        """Published run ids of a version, oldest first; staged or half-written folders do not count."""
        base = self._abs(self.version_path(model, version))
        self.refresh()
        if not self.fs.exists(base):
            return []
        out = []
        for entry in self.fs.ls(base, detail=False):
            leaf = entry.rstrip("/").rsplit("/", 1)[-1]
            if not leaf.startswith(".") and self.fs.exists(f"{entry.rstrip('/')}/{MANIFEST}"):
                out.append(leaf)
        return sorted(out)

    def latest_run_path(self, model: str, version: str) -> str | None:
        runs = self.runs(model, version)
        return f"{self.version_path(model, version)}/{runs[-1]}" if runs else None

    def read_bytes(self, rel: str) -> bytes:
        """One object whole; `cat_file` fetches it without trusting cached listings (sizes, ETags)."""
        return self.fs.cat_file(self._abs(rel))

    def read_manifest(self, rel_dir: str) -> dict[str, Any]:
        return json.loads(self.read_bytes(f"{rel_dir}/{MANIFEST}"))

    def subfolders(self, rel_dir: str) -> list[str]:
        """Names of the folders directly in `rel_dir`, sorted; hidden (staged, cached) ones left out. One
        listing and no reads, so a version's many runs cost one call, not one per run."""
        try:
            entries = self.fs.ls(self._abs(rel_dir), detail=True)
        except FileNotFoundError:
            return []
        names = (e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory")
        return sorted(n for n in names if not n.startswith("."))

    def replace(self, rel: str, data: bytes) -> None:
        """Write one file whole, replacing any previous one: readers see the old bytes or the new, never part.

        For caches and portfolio tables beside the evidence, never for run evidence (published once). On
        local disk the bytes are staged under a unique hidden name and renamed into place; an object store
        puts an object whole."""
        path = self._abs(rel)
        parent, _, leaf = path.rpartition("/")
        self.makedirs(parent)
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        staged = f"{parent}/.{leaf}.{uuid.uuid4().hex[:8]}.staging"
        try:
            with self.fs.open(staged, "wb") as fh:
                fh.write(data)
            self.fs.mv(staged, path)
        finally:
            if self.fs.exists(staged):
                self.fs.rm(staged)

    def latest_table(self, model: str, version: str, stem: str) -> pd.DataFrame | None:
        """The newest published `<stem>.parquet` of a version, or None when there is none."""
        import pandas as pd

        unpublished = self._unpublished.get((model, str(version)), {}).get(stem)
        if unpublished is not None:
            return unpublished
        rel = self.latest_run_path(model, version)
        if rel is None or not self.fs.exists(self._abs(f"{rel}/{stem}.parquet")):
            return None
        return pd.read_parquet(io.BytesIO(self.read_bytes(f"{rel}/{stem}.parquet")))

    def verify(self, rel_dir: str) -> list[str]:
        """Problems with a run folder against its manifest: changed, missing or extra files."""
        self.refresh()
        try:
            manifest = self.read_manifest(rel_dir)
        except FileNotFoundError:
            return [f"{rel_dir}: no {MANIFEST}"]
        base = self._abs(rel_dir).rstrip("/")
        present = {
            p[len(base) + 1 :] for p in self.fs.find(base) if not p.endswith(f"/{MANIFEST}") and p != base
        }
        return verify_entries(
            manifest.get("files", []), present, lambda rel: self.read_bytes(f"{rel_dir}/{rel}")
        )


def verify_entries(entries: list[dict], present: set[str], read) -> list[str]:
    """Compare manifest entries with the files present; shared by run folders and audit bundles."""
    problems = []
    listed = {e["path"] for e in entries}
    for entry in entries:
        rel = entry["path"]
        if rel not in present:
            problems.append(f"missing file: {rel}")
            continue
        data = read(rel)
        if len(data) != entry["size"] or sha256_bytes(data) != entry["sha256"]:
            problems.append(f"changed file: {rel} (sha256 does not match the manifest)")
    problems += [f"extra file not in the manifest: {rel}" for rel in sorted(present - listed)]
    return problems
