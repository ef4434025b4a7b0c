"""Labeled and unlabeled PSI with known matches, message by message and in one call."""

from __future__ import annotations

import json

import pytest

from breachcheck.errors import DatabaseError
from breachcheck.psi import OprfKey, PsiMatch, PsiParams, Receiver, SenderDb, run_in_process

LABELED = "64K-1024-16"
UNLABELED = "64K-1024"


def items(prefix: str, count: int) -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(count)]


@pytest.fixture(scope="module")
def labeled_db():
    params = PsiParams.preset(LABELED)
    sender = items("user", 300)
    labels = [f"label {i}".encode() for i in range(300)]
    return SenderDb(params, sender, labels)


def test_presets_and_params():
    names = PsiParams.preset_names()
    assert LABELED in names and UNLABELED in names
    p = PsiParams.preset(LABELED)
    assert p.label_byte_count == 16 and p.table_size >= 1024
    assert PsiParams.from_json(p.to_json()) == p
    assert len(p.fingerprint) == 32
    assert p.false_positive_log2(1024, 1 << 16) < -40
    bfv = p.bfv_parameters()
    spec = json.loads(p.to_json())["bfv"]
    assert bfv.degree == spec["poly_modulus_degree"]
    assert bfv.plaintext_modulus == spec["plain_modulus"]
    small = PsiParams.for_sizes(1000, 10, 16)
    assert small.label_byte_count >= 16
    designed = PsiParams.for_sizes(1 << 25, 1, 0)  # beyond the presets: designed
    assert designed.false_positive_log2(1, 1 << 25) < -40


def test_labeled_psi_message_by_message(labeled_db):
    params = labeled_db.params
    receiver = Receiver(params)
    assert receiver.max_items == params.table_size
    query_items = [b"user-7", b"stranger", b"user-299", b"user-0", b"user-3000"]
    request, pending = receiver.oprf_request(query_items)
    assert isinstance(request, bytes)
    response = labeled_db.evaluate_oprf(request)
    query, state = receiver.create_query(pending, response)
    parts = labeled_db.answer(query)
    assert parts and all(isinstance(p, bytes) for p in parts)
    got = receiver.decode(state, parts)
    assert [m.matched for m in got] == [True, False, True, True, False]
    pad = lambda s: s.encode().ljust(16, b"\0")  # noqa: E731
    assert [m.label for m in got] == [pad("label 7"), None, pad("label 299"), pad("label 0"), None]
    # Decoding is repeatable; matches compare by value.
    assert receiver.decode(state, parts) == got
    assert got[0] != got[1] and isinstance(got[0], PsiMatch)


def test_run_in_process_insert_remove_save_load(tmp_path, labeled_db):
    params = PsiParams.preset(LABELED)
    key = OprfKey.generate()
    db = SenderDb(params, items("a", 20), [b"x"] * 20, oprf_key=key)
    assert len(db) == 20 and db.is_labeled
    db.insert([b"new", b"a-3"], [b"fresh", b"replaced"])
    assert db.item_count == 21
    assert db.remove([b"a-5", b"absent"]) == 1
    got = run_in_process(db, [b"new", b"a-3", b"a-5", b"a-6"])
    assert [m.matched for m in got] == [True, True, False, True]
    assert [m.label.rstrip(b"\0") if m.label else None for m in got] == [b"fresh", b"replaced", None, b"x"]
    stats = db.stats()
    assert stats["items"] == 20 and stats["bundles"] >= 1
    path = tmp_path / "sender.db"
    db.save(path)
    loaded = SenderDb.load(path, OprfKey.from_bytes(key.to_bytes()))
    assert loaded.item_count == 20
    assert run_in_process(loaded, [b"a-3", b"a-5"]) == got[1:3]
    with pytest.raises(DatabaseError, match="another OPRF key"):
        SenderDb.load(path, OprfKey.generate())


def test_unlabeled_psi():
    params = PsiParams.preset(UNLABELED)
    db = SenderDb(params, items("pw", 100))
    assert not db.is_labeled
    got = run_in_process(db, [b"pw-1", b"pw-100", b"pw-99"])
    assert [(m.matched, m.label) for m in got] == [(True, None), (False, None), (True, None)]


def test_many_items_one_query(labeled_db):
    """A full query: 1024 items of which every third is in the database."""
    query = [f"user-{i}".encode() if i % 3 == 0 else f"nobody-{i}".encode() for i in range(1024)]
    got = run_in_process(labeled_db, query)
    for i, m in enumerate(got):
        expect = i % 3 == 0 and i < 300
        assert m.matched == expect, i
        if expect:
            assert m.label.rstrip(b"\0") == f"label {i}".encode()


def test_keys_are_redacted(labeled_db):
    assert "redacted" in repr(OprfKey.generate())
    assert "redacted" in repr(labeled_db.oprf_key)
    assert len(labeled_db.oprf_key.to_bytes()) == 32
