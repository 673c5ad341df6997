import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from assurance.domain.errors import EvidenceError
from assurance.evidence.bundle import archive_bytes, export, latest_files, verify, write_pdf
from assurance.evidence.store import EvidenceStore, parquet_bytes


@pytest.fixture
def store(tmp_path):
    store = EvidenceStore(str(tmp_path / "evidence"))
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"feature": ["a", "b"], "psi": rng.random(2)})
    files = {
        "drift.parquet": parquet_bytes(table),
        "report.md": b"# Report\n",
        "plots/drift.png": b"\x89PNG fake",
    }
    store.publish_run(
        "credit model", "1", "20250101T000000Z-aaaa", {"report.md": b"old"}, {"finished_at": "x"}
    )
    store.publish_run("credit model", "1", "20250102T000000Z-bbbb", files, {"model": "credit model"})
    return store


@pytest.fixture
def bundle(store, tmp_path):
    return export(store, "credit model", "1", tmp_path / "out")


def rezip(path, edit):
    """Rebuild the archive with `edit(members)` applied, as someone editing a member would."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    edit(members)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())


def test_export_writes_one_archive_of_the_latest_run(bundle):
    assert bundle.name == "assurance-credit%20model-v1-20250102T000000Z-bbbb.zip"
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
    root = bundle.name[: -len(".zip")]
    assert names == [
        f"{root}/manifest.json",
        f"{root}/drift.parquet",
        f"{root}/plots/drift.png",
        f"{root}/report.md",
    ]
    assert verify(bundle) == []


def test_export_is_reproducible_and_accepts_a_file_name(store, bundle, tmp_path):
    again = export(store, "credit model", "1", tmp_path / "named.zip")
    assert again == tmp_path / "named.zip"
    assert again.read_bytes() == bundle.read_bytes()


def test_flipping_any_byte_of_the_archive_fails_verify(bundle, tmp_path):
    original = bundle.read_bytes()
    damaged = tmp_path / "damaged.zip"
    for i in range(len(original)):
        for bit in (0x01, 0x80):
            data = bytearray(original)
            data[i] ^= bit
            damaged.write_bytes(bytes(data))
            assert verify(damaged), f"flipping bit {bit:#x} of byte {i} of {len(original)} went unnoticed"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda m: m.update({k: v + b"!" for k, v in m.items() if k.endswith("report.md")}),
            "changed file: report.md",
        ),
        (lambda m: [m.pop(k) for k in list(m) if k.endswith("drift.png")], "missing file: plots/drift.png"),
        (
            lambda m: m.update({next(iter(m)).rsplit("/", 1)[0] + "/notes.txt": b"x"}),
            "extra file not in the manifest: notes.txt",
        ),
        (lambda m: [m.pop(k) for k in list(m) if k.endswith("manifest.json")], "no readable manifest.json"),
    ],
)
def test_changed_missing_extra_members_are_named(bundle, edit, expected):
    rezip(bundle, edit)
    problems = verify(bundle)
    assert any(expected in p for p in problems), problems


def test_rezipped_but_unchanged_content_is_not_the_canonical_bundle(bundle):
    rezip(bundle, lambda m: None)
    assert any("canonical" in p for p in verify(bundle))


def test_not_an_archive(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    assert "not a readable zip archive" in verify(junk)[0]
    assert "cannot read" in verify(tmp_path / "absent.zip")[0]


def test_two_folders_or_bad_manifest(tmp_path):
    two = tmp_path / "two.zip"
    two.write_bytes(_two_roots())
    assert "exactly one bundle folder" in verify(two)[0]
    bad = tmp_path / "bad.zip"
    bad.write_bytes(archive_bytes("r", {"manifest.json": b'{"files": "nope"}'}))
    assert "not a valid manifest" in verify(bad)[0]


def _two_roots() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/manifest.json", "{}")
        zf.writestr("b/manifest.json", "{}")
    return buf.getvalue()


def test_export_without_evidence_or_with_damaged_evidence(store, tmp_path):
    with pytest.raises(EvidenceError, match="no published evidence"):
        export(store, "credit model", "9", tmp_path)
    (tmp_path / "evidence" / "credit%20model" / "1" / "20250102T000000Z-bbbb" / "report.md").write_bytes(
        b"edited"
    )
    with pytest.raises(EvidenceError, match="does not match its manifest"):
        export(store, "credit model", "1", tmp_path)


def test_pdf_of_the_latest_run_is_its_report_pdf_or_made_from_its_markdown(store, tmp_path):
    from pypdf import PdfReader

    rel, files = latest_files(store, "credit model", "1")
    made = write_pdf("credit model", "1", rel, files, tmp_path)  # published before report.pdf existed
    assert made.name == "assurance-credit%20model-v1-20250102T000000Z-bbbb.pdf"
    assert "Report" in PdfReader(made).pages[0].extract_text()
    kept = write_pdf("credit model", "1", rel, {**files, "report.pdf": b"%PDF-1.3 stored"}, tmp_path / "r.pdf")
    assert kept.read_bytes() == b"%PDF-1.3 stored"
    with pytest.raises(EvidenceError, match="no report"):
        write_pdf("credit model", "1", rel, {"manifest.json": b"{}"}, tmp_path)
