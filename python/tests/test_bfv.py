"""BFV: round trips of every type, and homomorphic identities against plain
arithmetic modulo t."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

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


@pytest.fixture(scope="module")
def ctx():
    params = BfvParameters.preset("n8192")
    sk = SecretKey(params)

    class Ctx:
        pass

    c = Ctx()
    c.params, c.sk = params, sk
    c.pk, c.rk = PublicKey(sk), RelinKeys(sk)
    c.encoder, c.evaluator, c.decryptor = BatchEncoder(params), Evaluator(params), Decryptor(sk)
    c.t, c.n = params.plaintext_modulus, params.slot_count
    c.rng = random.Random(7)
    return c


def rand_slots(c, k=None):
    return [c.rng.randrange(c.t) for _ in range(k or c.n)]


def enc(c, values):
    return c.sk.encrypt(c.encoder.encode(values))


def dec(c, ct):
    return c.encoder.decode(c.decryptor.decrypt(ct))


def test_presets_are_secure_and_reach_their_depth():
    depth = {"n4096": 1, "n8192": 3, "n16384": 8}
    assert BfvParameters.preset_names() == list(depth)
    for name, d in depth.items():
        p = BfvParameters.preset(name)
        assert not p.is_insecure
        assert p.log_q <= BfvParameters.max_log_q_128(p.degree)
        sk = SecretKey(p)
        rk, encoder, ev, dc = RelinKeys(sk), BatchEncoder(p), Evaluator(p), Decryptor(sk)
        x = sk.encrypt(encoder.encode([3, 5]))
        c = x
        for _ in range(d):
            c = ev.multiply_relin(c, x, rk)
        assert dc.noise_budget(c) > 0
        t = p.plaintext_modulus
        assert encoder.decode(dc.decrypt(c))[:3] == [pow(3, d + 1, t), pow(5, d + 1, t), 0]


def test_parameters_round_trip_and_equality(ctx):
    p = ctx.params
    again = BfvParameters.from_dict(p.to_dict())
    assert again == p and hash(again) == hash(p)
    assert again.fingerprint == p.fingerprint and len(p.fingerprint) == 8
    assert again.moduli == p.moduli and again.special_modulus == p.special_modulus
    assert p.max_level == len(p.moduli) - 1
    other = BfvParameters(8192, plaintext_bits=21, moduli_bits=[54, 54, 55], special_modulus_bits=55)
    assert other != p
    nks = BfvParameters(2048, plaintext_modulus=12289, moduli_bits=[54], key_switching=False)
    assert not nks.supports_key_switching and nks.special_modulus is None
    assert BfvParameters.from_dict(nks.to_dict()) == nks
    assert "BfvParameters(degree=8192" in repr(p)


def test_keys_round_trip(ctx):
    p = ctx.params
    sk2 = SecretKey.from_bytes(ctx.sk.to_bytes(), p)
    assert sk2.to_bytes() == ctx.sk.to_bytes()
    assert "redacted" in repr(ctx.sk)
    pk2 = PublicKey.from_bytes(ctx.pk.to_bytes(), p)
    assert pk2.to_bytes() == ctx.pk.to_bytes()
    rk2 = RelinKeys.from_bytes(ctx.rk.to_bytes(), p)
    assert rk2.to_bytes() == ctx.rk.to_bytes()
    # The reloaded keys work: public-key encryption, then decryption with
    # the reloaded secret key and relinearization with the reloaded keys.
    x = rand_slots(ctx)
    ct = Encryptor(p, pk2).encrypt(ctx.encoder.encode(x))
    sq = ctx.evaluator.relinearize(ctx.evaluator.square(ct), rk2)
    assert ctx.encoder.decode(Decryptor(sk2).decrypt(sq)) == [v * v % ctx.t for v in x]


def test_plaintexts_round_trip(ctx):
    p = ctx.params
    pt = ctx.encoder.encode(rand_slots(ctx))
    assert Plaintext.from_bytes(pt.to_bytes(), p) == pt
    coeffs = rand_slots(ctx, 100)
    pc = Plaintext.from_coeffs(p, coeffs)
    assert pc.coeffs[:100] == coeffs and set(pc.coeffs[100:]) == {0}
    ntt = ctx.evaluator.plain_to_ntt(pt, 1)
    assert ntt.level == 1
    ntt2 = PlaintextNtt.from_bytes(ntt.to_bytes(), p)
    assert ntt2.to_bytes() == ntt.to_bytes() and ntt2.level == 1


def test_ciphertexts_round_trip_in_every_shape(ctx):
    p, ev = ctx.params, ctx.evaluator
    x = rand_slots(ctx)
    seeded = enc(ctx, x)
    public = Encryptor(p, ctx.pk).encrypt(ctx.encoder.encode(x))
    assert seeded.is_seeded and not public.is_seeded
    assert len(seeded.to_bytes()) < len(public.to_bytes())
    shapes = [
        seeded,
        public,
        ev.transform_to_ntt(public),
        ev.multiply(public, public),
        ev.mod_switch_to_next(public),
        ev.mod_switch_to_level(public, p.max_level),
    ]
    for ct in shapes:
        back = Ciphertext.from_bytes(ct.to_bytes(), p)
        assert (back.level, back.size, back.is_ntt) == (ct.level, ct.size, ct.is_ntt)
        assert back.to_bytes() == ct.to_bytes()
    assert shapes[3].size == 3 and shapes[2].is_ntt and shapes[5].level == p.max_level
    for ct in (seeded, public, shapes[2], shapes[4], shapes[5]):
        assert dec(ctx, Ciphertext.from_bytes(ct.to_bytes(), p)) == x


def test_encoding_lists_and_numpy(ctx):
    e = ctx.encoder
    assert e.slot_count == ctx.n
    x = rand_slots(ctx, 10)
    assert e.decode(e.encode(x)) == x + [0] * (ctx.n - 10)
    for dtype in (np.uint8, np.int16, np.int32, np.uint32, np.int64, np.uint64):
        a = np.arange(50, dtype=dtype)
        out = e.decode_array(e.encode(a))
        assert out.dtype == np.uint64 and out.shape == (ctx.n,)
        assert np.array_equal(out[:50], a.astype(np.uint64))
    strided = np.arange(100, dtype=np.int64)[::2]
    assert e.decode(e.encode(strided))[:50] == list(range(0, 100, 2))
    half = (ctx.t - 1) // 2
    signed = [-half, -1, 0, 1, half]
    pt = e.encode_signed(np.array(signed, dtype=np.int64))
    assert e.decode(pt, signed=True)[:5] == signed
    assert e.decode_array(pt, signed=True).dtype == np.int64
    assert e.decode(pt)[:2] == [ctx.t - half, ctx.t - 1]
    assert e.decode(e.encode_scalar(-5)) == [ctx.t - 5] * ctx.n


def test_homomorphic_identities(ctx):
    ev, t = ctx.evaluator, ctx.t
    x, y, z = rand_slots(ctx), rand_slots(ctx), rand_slots(ctx)
    cx, cy = enc(ctx, x), enc(ctx, y)
    pz = ctx.encoder.encode(z)
    cases = {
        "add": (ev.add(cx, cy), [(a + b) % t for a, b in zip(x, y)]),
        "operator +": (cx + cy, [(a + b) % t for a, b in zip(x, y)]),
        "sub": (ev.sub(cx, cy), [(a - b) % t for a, b in zip(x, y)]),
        "operator -": (cx - cy, [(a - b) % t for a, b in zip(x, y)]),
        "negate": (ev.negate(cx), [(-a) % t for a in x]),
        "unary -": (-cx, [(-a) % t for a in x]),
        "add_plain": (ev.add_plain(cx, pz), [(a + c) % t for a, c in zip(x, z)]),
        "plain + ct": (pz + cx, [(a + c) % t for a, c in zip(x, z)]),
        "sub_plain": (ev.sub_plain(cx, pz), [(a - c) % t for a, c in zip(x, z)]),
        "plain - ct": (pz - cx, [(c - a) % t for a, c in zip(x, z)]),
        "multiply_plain": (ev.multiply_plain(cx, pz), [a * c % t for a, c in zip(x, z)]),
        "plain * ct": (pz * cx, [a * c % t for a, c in zip(x, z)]),
        "multiply (size 3)": (ev.multiply(cx, cy), [a * b % t for a, b in zip(x, y)]),
        "operator *": (cx * cy, [a * b % t for a, b in zip(x, y)]),
        "multiply_relin": (ev.multiply_relin(cx, cy, ctx.rk), [a * b % t for a, b in zip(x, y)]),
        "square + relinearize": (ev.relinearize(ev.square(cx), ctx.rk), [a * a % t for a in x]),
        "add_many": (ev.add_many([cx, cy, cx]), [(2 * a + b) % t for a, b in zip(x, y)]),
        "mod_switch_to_next": (ev.mod_switch_to_next(cx), x),
        "ntt round trip": (ev.transform_from_ntt(ev.transform_to_ntt(cx)), x),
        "multiply_plain_ntt": (
            ev.transform_from_ntt(ev.multiply_plain_ntt(ev.transform_to_ntt(cx), ev.plain_to_ntt(pz))),
            [a * c % t for a, c in zip(x, z)],
        ),
    }
    for name, (ct, want) in cases.items():
        assert dec(ctx, ct) == want, name
    assert ev.multiply(cx, cy).size == 3
    # (x + y) * z == x*z + y*z, on ciphertexts.
    lhs = ev.relinearize(ev.multiply(ev.add(cx, cy), enc(ctx, z)), ctx.rk)
    rhs = ev.add(ev.multiply_relin(cx, enc(ctx, z), ctx.rk), ev.multiply_relin(cy, enc(ctx, z), ctx.rk))
    assert dec(ctx, lhs) == dec(ctx, rhs)


def test_multiply_plain_accumulate_is_a_matrix_product(ctx):
    ev, t = ctx.evaluator, ctx.t
    k, m = 5, 3
    xs = [rand_slots(ctx) for _ in range(k)]
    weights = [[ctx.rng.randrange(-20, 21) for _ in range(k)] for _ in range(m)]
    weights[1][2] = 0
    cts = [ev.transform_to_ntt(enc(ctx, x)) for x in xs]
    rows = [
        [None if w == 0 else ev.plain_to_ntt(ctx.encoder.encode_scalar(w)) for w in row] for row in weights
    ]
    outs = ev.multiply_plain_accumulate(cts, rows)
    assert len(outs) == m
    xs_np = np.array(xs, dtype=object)
    for o, row in zip(outs, weights):
        want = (np.array(row, dtype=object) @ xs_np) % t
        assert dec(ctx, ev.transform_from_ntt(o)) == [int(v) for v in want]


def test_noise_budget_decreases_with_products(ctx):
    cx = enc(ctx, rand_slots(ctx))
    fresh = ctx.decryptor.noise_budget(cx)
    prod = ctx.evaluator.multiply_relin(cx, cx, ctx.rk)
    assert 0 < ctx.decryptor.noise_budget(prod) < fresh


def test_calls_from_threads(ctx):
    """Heavy calls release the GIL; several threads share one key and
    evaluator and each gets its own correct answer."""
    ev, t = ctx.evaluator, ctx.t
    inputs = [rand_slots(ctx, 64) for _ in range(4)]
    results: dict[int, list[int]] = {}

    def work(i):
        c = enc(ctx, inputs[i])
        results[i] = dec(ctx, ev.multiply_relin(c, c, ctx.rk))[:64]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    for i, x in enumerate(inputs):
        assert results[i] == [v * v % t for v in x]
