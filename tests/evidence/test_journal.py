import pytest

from assurance.domain.errors import EvidenceError
from assurance.evidence import journal
from assurance.evidence.store import EvidenceStore


@pytest.fixture
def store(tmp_path):
    return EvidenceStore(str(tmp_path / "evidence"))


def test_each_append_is_a_new_object_read_back_in_write_order(store, tmp_path):
    first = journal.append(store, "_portfolio/notes", [{"n": 1}, {"n": 2}])
    second = journal.append(store, "_portfolio/notes", [{"n": 3}])
    assert first != second and first < second
    assert [r["n"] for r in journal.read(store, "_portfolio/notes")] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "evidence" / "_portfolio" / "notes").iterdir()) == [
        first.rsplit("/", 1)[-1],
        second.rsplit("/", 1)[-1],
    ]


def test_create_never_replaces_an_object_nor_leaves_its_staging(store, tmp_path):
    store.create("_portfolio/notes/a.jsonl", b'{"n": 1}\n')
    with pytest.raises(EvidenceError, match="could not create"):
        store.create("_portfolio/notes/a.jsonl", b'{"n": 2}\n')
    assert store.read_bytes("_portfolio/notes/a.jsonl") == b'{"n": 1}\n'
    assert [p.name for p in (tmp_path / "evidence" / "_portfolio" / "notes").iterdir()] == ["a.jsonl"]


def test_staged_foreign_and_damaged_entries_are_skipped(store, tmp_path):
    folder = tmp_path / "evidence" / "_portfolio" / "notes"
    journal.append(store, "_portfolio/notes", [{"n": 1}])
    (folder / ".x.jsonl.1234.staging").write_text('{"n": 2}\n')
    (folder / "readme.txt").write_text('{"n": 3}\n')
    (folder / "b.jsonl").write_bytes(b'{"n": 4}\n{"n": \n[5]\n\xff\n')
    assert [r["n"] for r in journal.read(store, "_portfolio/notes")] == [1, 4]


def test_missing_journal_and_legacy_file_read_as_empty(store):
    assert journal.read(store, "_portfolio/notes", legacy="_portfolio/notes.jsonl") == []
    assert store.read_folder("_portfolio/notes") == {}
