"""Bad input raises breachcheck exceptions (never a crash or a panic)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from breachcheck import errors
from breachcheck.bfv import (
    BatchEncoder,
    BfvParameters,
    Ciphertext,
    Decryptor,
    Encryptor,
    Evaluator,
    Plaintext,
    PlaintextNtt,
    PublicKey,
    RelinKeys,
    SecretKey,
)
from breachcheck.psi import OprfKey, PsiParams, Receiver, SenderDb, run_in_process


@pytest.fixture(scope="module")
def bfv():
    p = BfvParameters.preset("n4096")
    sk = SecretKey(p)
    return p, sk, BatchEncoder(p), Evaluator(p)


def test_hierarchy():
    for cls in (
        errors.ParameterError,
        errors.InsecureParametersError,
        errors.MismatchError,
        errors.InvalidValueError,
        errors.DecodeError,
        errors.LabelError,
        errors.VaultError,
    ):
        assert issubclass(cls, errors.BreachCheckError) and issubclass(cls, ValueError)
    assert issubclass(errors.ServerConnectionError, ConnectionError)
    assert issubclass(errors.CheckTimeoutError, TimeoutError)
    assert issubclass(errors.ServerError, errors.CheckError)


def test_bad_parameters():
    with pytest.raises(errors.InsecureParametersError, match="exceeds the 128-bit bound"):
        BfvParameters(4096, plaintext_bits=20, moduli_bits=[60, 60])
    with pytest.raises(errors.ParameterError, match="power of two"):
        BfvParameters(3000, plaintext_bits=20, moduli_bits=[36])
    with pytest.raises(errors.ParameterError, match="1 mod 2n"):
        BfvParameters(4096, plaintext_modulus=65539, moduli_bits=[36, 36])
    with pytest.raises(errors.ParameterError, match="exactly one"):
        BfvParameters(4096, moduli_bits=[36, 36])
    with pytest.raises(errors.ParameterError, match="not both"):
        BfvParameters(4096, plaintext_bits=16, moduli=[68719403009], moduli_bits=[36])
    with pytest.raises(errors.ParameterError, match="unknown BFV preset"):
        BfvParameters.preset("n1")
    with pytest.raises(errors.ParameterError, match="missing"):
        BfvParameters.from_dict({"degree": 4096})
    with pytest.raises(errors.ParameterError, match="unknown PSI preset"):
        PsiParams.preset("huge")
    with pytest.raises(errors.DecodeError):
        PsiParams.from_json("{not json")
    with pytest.raises(errors.ParameterError):
        PsiParams.from_json(PsiParams.preset("64K-1").to_json().replace('"hash_functions": 1', '"hash_functions": 0'))
    with pytest.raises(TypeError):
        BfvParameters(4096, plaintext_bits="20", moduli_bits=[36, 36])  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        BfvParameters(-1, plaintext_bits=20, moduli_bits=[36])
    nks = BfvParameters(2048, plaintext_modulus=12289, moduli_bits=[54], key_switching=False)
    with pytest.raises(errors.ParameterError, match="no key switching"):
        RelinKeys(SecretKey(nks))


def test_bad_values(bfv):
    p, sk, encoder, ev = bfv
    t = p.plaintext_modulus
    with pytest.raises(errors.InvalidValueError):
        encoder.encode([0] * (p.slot_count + 1))
    with pytest.raises(errors.InvalidValueError):
        encoder.encode([t])
    with pytest.raises(errors.InvalidValueError, match="encode_signed"):
        encoder.encode([-1])
    with pytest.raises(errors.InvalidValueError):
        encoder.encode([2**70])
    with pytest.raises(errors.InvalidValueError):
        encoder.encode_signed([t])
    with pytest.raises(TypeError):
        encoder.encode([1.5])
    with pytest.raises(TypeError):
        encoder.encode("123")
    with pytest.raises(TypeError):
        encoder.encode(np.array([1.0, 2.0]))
    with pytest.raises(TypeError):
        encoder.encode(np.array([True, False]))
    with pytest.raises(errors.InvalidValueError, match="1-D"):
        encoder.encode(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(errors.InvalidValueError):
        Plaintext.from_coeffs(p, [t])
    ct = sk.encrypt(encoder.encode([1]))
    with pytest.raises(errors.InvalidValueError):
        ev.add_many([])
    with pytest.raises(errors.InvalidValueError):
        ev.multiply_plain_accumulate([ev.transform_to_ntt(ct)], [[None]])
    with pytest.raises(errors.InvalidValueError):
        ev.multiply_plain_accumulate([ev.transform_to_ntt(ct)], [[]])


def test_mismatches(bfv):
    p, sk, encoder, ev = bfv
    other = BfvParameters.preset("n8192")
    sk2 = SecretKey(other)
    ct = sk.encrypt(encoder.encode([1, 2]))
    ct2 = sk2.encrypt(BatchEncoder(other).encode([1, 2]))
    with pytest.raises(errors.MismatchError):
        ev.add(ct, ct2)
    with pytest.raises(errors.MismatchError):
        ct + ct2
    with pytest.raises(errors.MismatchError):
        Decryptor(sk2).decrypt(ct)
    with pytest.raises(errors.MismatchError):
        sk2.encrypt(encoder.encode([1]))
    with pytest.raises(errors.MismatchError):
        Encryptor(other, PublicKey(sk))
    with pytest.raises(errors.MismatchError):
        ev.multiply_relin(ct, ct, RelinKeys(sk2))
    with pytest.raises(errors.MismatchError, match="another parameter set"):
        Ciphertext.from_bytes(ct.to_bytes(), other)
    low = ev.mod_switch_to_next(ct)
    with pytest.raises(errors.MismatchError, match="level"):
        ev.add(ct, low)
    with pytest.raises(errors.MismatchError):
        ev.mod_switch_to_next(low)  # no level left
    with pytest.raises(errors.MismatchError, match="NTT"):
        ev.multiply_plain_ntt(ct, ev.plain_to_ntt(encoder.encode([1])))
    with pytest.raises(TypeError):
        ct * 3  # type: ignore[operator]


def test_corrupt_bytes_never_crash(bfv):
    p, sk, encoder, ev = bfv
    pt = encoder.encode(list(range(100)))
    ct = sk.encrypt(pt)
    samples = {
        Ciphertext: ct.to_bytes(),
        Plaintext: pt.to_bytes(),
        PlaintextNtt: ev.plain_to_ntt(pt).to_bytes(),
        PublicKey: PublicKey(sk).to_bytes(),
        RelinKeys: RelinKeys(sk).to_bytes(),
        SecretKey: sk.to_bytes(),
    }
    rng = random.Random(1)
    for cls, good in samples.items():
        cls.from_bytes(good, p)  # the untouched bytes load
        with pytest.raises(errors.DecodeError):
            cls.from_bytes(good[:-1], p)
        with pytest.raises(errors.DecodeError):
            cls.from_bytes(good + b"\0", p)
        with pytest.raises(errors.DecodeError):
            cls.from_bytes(b"", p)
        for _ in range(30):
            bad = bytearray(good)
            for _ in range(rng.randint(1, 4)):
                bad[rng.randrange(len(bad))] = rng.randrange(256)
            try:
                cls.from_bytes(bytes(bad), p)
            except errors.BreachCheckError:
                pass  # flipped bytes may still decode (payload) or be refused
            bad = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
            with pytest.raises(errors.BreachCheckError):
                cls.from_bytes(bad, p)


def test_psi_misuse(tmp_path):
    params = PsiParams.preset("64K-1-16")
    db = SenderDb(params, [b"a", b"b"], [b"1", b"2"])
    with pytest.raises(errors.LabelError, match="needs a label"):
        db.insert([b"c"])
    with pytest.raises(errors.LabelError, match="2 labels for 1 items"):
        db.insert([b"c"], [b"x", b"y"])
    with pytest.raises(errors.LabelError, match="bytes; the maximum is 16"):
        db.insert([b"c"], [b"x" * 17])
    with pytest.raises(errors.LabelError, match="without items"):
        SenderDb(params, labels=[b"x"])
    unlabeled = SenderDb(PsiParams.preset("64K-1"), [b"a"])
    with pytest.raises(errors.LabelError, match="takes no labels"):
        unlabeled.insert([b"c"], [b"x"])
    with pytest.raises(errors.DecodeError):
        db.evaluate_oprf(b"\x00\x01garbage")
    with pytest.raises(errors.DecodeError):
        db.answer(b"garbage")
    receiver = Receiver(params)
    with pytest.raises(errors.InvalidValueError, match="exceed"):
        receiver.oprf_request([b"a"] * (params.table_size + 1))
    request, pending = receiver.oprf_request([b"a"])
    response = db.evaluate_oprf(request)
    with pytest.raises(errors.DecodeError):
        receiver.create_query(pending, response[:-1])
    query, state = receiver.create_query(receiver.oprf_request([b"a"])[1], response)
    with pytest.raises(errors.DecodeError):
        receiver.decode(state, [b"nonsense"])
    # A query for other parameters is refused by the sender.
    other = Receiver(PsiParams.preset("64K-1"))
    r2, p2 = other.oprf_request([b"a"])
    q2, _ = other.create_query(p2, db.evaluate_oprf(r2))
    with pytest.raises(errors.BreachCheckError):
        db.answer(q2)
    with pytest.raises(errors.InvalidValueError):
        OprfKey.from_bytes(b"\xff" * 32)
    with pytest.raises(errors.InvalidValueError):
        OprfKey.from_bytes(b"short")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database")
    with pytest.raises(errors.BreachCheckError):
        SenderDb.load(bad, db.oprf_key)
    with pytest.raises(FileNotFoundError):
        SenderDb.load(tmp_path / "missing.db", db.oprf_key)
    assert [m.matched for m in run_in_process(db, [b"a"])] == [True]


def test_used_oprf_state_is_refused():
    params = PsiParams.preset("64K-1")
    db = SenderDb(params, [b"a"])
    receiver = Receiver(params)
    request, pending = receiver.oprf_request([b"a"])
    response = db.evaluate_oprf(request)
    receiver.create_query(pending, response)
    with pytest.raises(errors.InvalidValueError, match="already used"):
        receiver.create_query(pending, response)
