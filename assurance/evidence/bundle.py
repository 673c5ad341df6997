"""Audit bundles: one archive of a version's latest evidence with its manifest, verifiable offline.

The bundle is a zip whose members are stored uncompressed, in a canonical order (manifest first,
then the files by path) with fixed timestamps and permissions, under one folder named for the run.
Verification needs nothing but the archive: every file must match the manifest's sha256 and size,
no file may be missing or extra, and the archive must be byte-for-byte the canonical bundle of its
own contents, so a change anywhere (file data, names, headers, directory) is caught, not only in
the files. Storing rather than compressing keeps that canonical form independent of zlib versions.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from assurance.domain.errors import EvidenceError
from assurance.evidence.store import MANIFEST, MAX_SEGMENT, safe_segment, shorten, verify_entries

if TYPE_CHECKING:
    from assurance.evidence.store import EvidenceStore

SUFFIX = ".zip"
_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644
_UNIX = 3


def bundle_root(model: str, version: str, run_id: str) -> str:
    """The bundle's folder and file stem: safe on any file system (short enough for a file name with its
    suffix), unique per run."""
    stem = f"assurance-{safe_segment(model)}-v{safe_segment(str(version))}-{safe_segment(run_id)}"
    return shorten(stem, MAX_SEGMENT - len(SUFFIX))


def archive_bytes(root: str, files: dict[str, bytes]) -> bytes:
    """The canonical archive of `files` (including `manifest.json`) under folder `root`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for rel in [MANIFEST, *sorted(p for p in files if p != MANIFEST)]:
            info = zipfile.ZipInfo(f"{root}/{rel}", date_time=_DATE_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = _UNIX
            info.external_attr = _FILE_MODE << 16
            zf.writestr(info, files[rel])
    return buf.getvalue()


def _target(out: str | os.PathLike | None, root: str, suffix: str = SUFFIX) -> Path:
    """`out` may name the file or a folder for it (default: the current directory)."""
    path = Path(out) if out else Path.cwd()
    if path.is_dir() or str(out or "").endswith(os.sep) or not path.suffix:
        return path / f"{root}{suffix}"
    return path


def _write(target: Path, data: bytes) -> Path:
    """Write `data` to `target` whole or not at all (a temporary file beside it, then a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".export-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def latest_files(store: EvidenceStore, model: str, version: str) -> tuple[str, dict[str, bytes]]:
    """The version's latest published run folder and its files (manifest included).

    Raises EvidenceError when the version has no published evidence or when the stored evidence no
    longer matches its own manifest (an export must never launder damaged evidence).
    """
    rel = store.latest_run_path(model, version)
    if rel is None:
        raise EvidenceError(f"no published evidence for {model} version {version} under {store.root}")
    problems = store.verify(rel)
    if problems:
        raise EvidenceError(
            f"evidence in {store.root}/{rel} does not match its manifest: {'; '.join(problems)}"
        )
    manifest_body = store.read_bytes(f"{rel}/{MANIFEST}")
    entries = json.loads(manifest_body).get("files", [])
    return rel, {MANIFEST: manifest_body, **{e["path"]: store.read_bytes(f"{rel}/{e['path']}") for e in entries}}


def export(store: EvidenceStore, model: str, version: str, out: str | os.PathLike | None = None) -> Path:
    """Write the bundle of the version's latest published run and return its path."""
    rel, files = latest_files(store, model, version)
    return write_bundle(model, version, rel, files, out)


def write_bundle(
    model: str, version: str, rel: str, files: dict[str, bytes], out: str | os.PathLike | None = None
) -> Path:
    """Write the bundle of run folder `rel` (its `files` from `latest_files`) and return its path."""
    root = bundle_root(model, version, rel.rsplit("/", 1)[-1])
    return _write(_target(out, root), archive_bytes(root, files))


def write_pdf(
    model: str, version: str, rel: str, files: dict[str, bytes], out: str | os.PathLike | None = None
) -> Path:
    """Write the report of run folder `rel` as a PDF and return its path.

    Runs published before reports had a PDF get one made from their report.md and plots."""
    from assurance.reporting.pdf import from_evidence

    if "report.pdf" in files:
        data = files["report.pdf"]
    elif "report.md" in files:
        data = from_evidence(files, f"Model assurance report: {model} version {version}")
    else:
        raise EvidenceError(f"the evidence in {rel} has no report to print")
    root = bundle_root(model, version, rel.rsplit("/", 1)[-1])
    return _write(_target(out, root, ".pdf"), data)


def _members(data: bytes) -> tuple[dict[str, bytes], dict[str, str], list[str]]:
    """Readable members by name, damaged members with why, and duplicate names (damage is reported, not raised)."""
    members: dict[str, bytes] = {}
    damaged: dict[str, str] = {}
    duplicates: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.filename in members or info.filename in damaged:
                duplicates.append(f"duplicate member: {info.filename}")
                continue
            try:
                members[info.filename] = zf.read(info)
            except Exception as exc:  # noqa: BLE001 - any read failure means the member was damaged
                damaged[info.filename] = f"{type(exc).__name__}: {exc}"
    return members, damaged, duplicates


def _split_root(names: list[str]) -> tuple[str | None, list[str]]:
    """The one folder every member sits in, and the members that do not."""
    roots = {n.split("/", 1)[0] for n in names if "/" in n}
    root = roots.pop() if len(roots) == 1 else None
    stray = [n for n in names if root is None or not n.startswith(f"{root}/") or n.endswith("/")]
    return root, stray


def _entries(manifest_body: bytes) -> list[dict]:
    """The manifest's file list; ValueError when it is not one."""
    entries = json.loads(manifest_body).get("files")
    valid = isinstance(entries, list) and all(
        isinstance(e, dict)
        and isinstance(e.get("path"), str)
        and isinstance(e.get("sha256"), str)
        and isinstance(e.get("size"), int)
        for e in entries
    )
    if not valid:
        raise ValueError("its `files` is not a list of {path, sha256, size}")
    return entries


def verify(bundle_path: str | os.PathLike) -> list[str]:
    """Everything wrong with a bundle, checked offline; an empty list means it is intact."""
    try:
        data = Path(bundle_path).read_bytes()
    except OSError as exc:
        return [f"cannot read {bundle_path}: {exc}"]
    try:
        members, damaged, problems = _members(data)
    except Exception as exc:  # noqa: BLE001 - zipfile raises several types for a damaged archive
        return [f"{bundle_path} is not a readable zip archive ({type(exc).__name__}: {exc})"]
    root, stray = _split_root([*members, *damaged])
    if root is None:
        return [*problems, "the archive does not hold exactly one bundle folder"]
    problems += [f"extra file not in the manifest: {n}" for n in stray]
    inside = len(root) + 1
    files = {n[inside:]: b for n, b in members.items() if n not in stray}
    broken = {n[inside:]: why for n, why in damaged.items() if n not in stray}
    problems += [f"changed file: {rel} ({why})" for rel, why in broken.items()]
    if MANIFEST not in files:
        return [*problems, f"no readable {MANIFEST} in {root}/: the bundle cannot be verified"]
    try:
        entries = _entries(files[MANIFEST])
    except (ValueError, AttributeError) as exc:
        return [*problems, f"{MANIFEST} is not a valid manifest ({exc})"]
    listed = [e for e in entries if e["path"] not in broken]
    problems += verify_entries(listed, set(files) - {MANIFEST}, files.__getitem__)
    if not problems and archive_bytes(root, files) != data:
        problems.append(
            "the archive differs from the canonical bundle of its own files: it was altered after export"
        )
    return problems
