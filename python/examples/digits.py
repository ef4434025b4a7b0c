"""Encrypted inference on handwritten digits, in the spirit of CryptoNets.

A small network with square activations (64 pixels -> hidden units,
x**2 -> 10 classes) is trained in plain NumPy on scikit-learn's bundled
8x8 digits (no download), quantized to integers, and then evaluated on
*encrypted* images with breachcheck's BFV: one ciphertext per pixel, each
holding that pixel of up to n images at once (batching: image i lives in
slot i). The server-side computation never sees a pixel:

    z_j    = sum_i W1[i, j] * x_i + b1[j]     (plaintext weights, ciphertext pixels)
    a_j    = z_j ** 2                          (ciphertext square, relinearized)
    out_k  = sum_j W2[j, k] * a_j + b2[k]

Everything is exact integer arithmetic modulo the plaintext modulus t;
the example picks t above twice the largest |out_k| any image in
[0, 16]^64 could produce, so nothing wraps around and the decrypted
outputs equal the clear integer outputs bit for bit. It prints the clear
and encrypted accuracy (equal by construction, and checked image by
image) and the time per image.

    python examples/digits.py             # the whole test split
    python examples/digits.py --limit 64  # a slice
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits

from breachcheck.bfv import (
    BatchEncoder,
    BfvParameters,
    Decryptor,
    Evaluator,
    RelinKeys,
    SecretKey,
)

PIXEL_MAX = 16  # load_digits pixels are integers in [0, 16]


@dataclass
class FloatModel:
    w1: np.ndarray  # (64, hidden)
    b1: np.ndarray  # (hidden,)
    w2: np.ndarray  # (hidden, 10)
    b2: np.ndarray  # (10,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (x / PIXEL_MAX) @ self.w1 + self.b1
        return (z * z) @ self.w2 + self.b2


@dataclass
class IntModel:
    w1: np.ndarray  # int64 (64, hidden)
    b1: np.ndarray
    w2: np.ndarray  # int64 (hidden, 10)
    b2: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Exact integer forward pass (int64 cannot overflow: see bound())."""
        z = x.astype(np.int64) @ self.w1 + self.b1
        return (z * z) @ self.w2 + self.b2

    def bound(self) -> int:
        """The largest |output| any image in [0, PIXEL_MAX]^64 can give,
        in Python integers (no overflow)."""
        w1 = self.w1.astype(object)
        pos = np.where(w1 > 0, w1, 0).sum(axis=0) * PIXEL_MAX
        neg = np.where(w1 < 0, w1, 0).sum(axis=0) * PIXEL_MAX
        zmax = [max(abs(int(p + b)), abs(int(n + b))) for p, n, b in zip(pos, neg, self.b1.tolist())]
        out = [
            sum(abs(int(self.w2[j, k])) * zmax[j] ** 2 for j in range(len(zmax))) + abs(int(self.b2[k]))
            for k in range(self.w2.shape[1])
        ]
        return max(out)


def split(seed: int):
    digits = load_digits()
    x = digits.data.astype(np.int64)
    y = digits.target
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(0.8 * len(y))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def train(x: np.ndarray, y: np.ndarray, hidden: int, epochs: int, seed: int) -> FloatModel:
    """Full-batch Adam on softmax cross-entropy with a little weight decay."""
    rng = np.random.default_rng(seed)
    xf = x / PIXEL_MAX
    onehot = np.eye(10)[y]
    params = [
        rng.normal(0, 0.3 / math.sqrt(64), (64, hidden)),
        np.zeros(hidden),
        rng.normal(0, 0.3 / math.sqrt(hidden), (hidden, 10)),
        np.zeros(10),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr, b1, b2, eps, decay = 0.02, 0.9, 0.999, 1e-8, 1e-4
    for step in range(1, epochs + 1):
        w1, c1, w2, c2 = params
        z = xf @ w1 + c1
        a = z * z
        logits = a @ w2 + c2
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / len(y)
        gw2 = a.T @ g + decay * w2
        gc2 = g.sum(axis=0)
        gz = (g @ w2.T) * 2 * z
        gw1 = xf.T @ gz + decay * w1
        gc1 = gz.sum(axis=0)
        for i, grad in enumerate((gw1, gc1, gw2, gc2)):
            m[i] = b1 * m[i] + (1 - b1) * grad
            v[i] = b2 * v[i] + (1 - b2) * grad * grad
            mh = m[i] / (1 - b1**step)
            vh = v[i] / (1 - b2**step)
            params[i] = params[i] - lr * mh / (np.sqrt(vh) + eps)
    return FloatModel(*params)


def quantize(model: FloatModel, w1_levels: int, w2_levels: int) -> IntModel:
    """Integer weights: W1 to [-w1_levels, w1_levels] on integer pixels,
    W2 to [-w2_levels, w2_levels]; biases scaled to match, so the integer
    outputs approximate a positive multiple of the float logits."""
    s1 = w1_levels / np.abs(model.w1).max()
    s2 = w2_levels / np.abs(model.w2).max()
    scale_z = s1 * PIXEL_MAX  # z_int ~ scale_z * z
    return IntModel(
        w1=np.round(model.w1 * s1).astype(np.int64),
        b1=np.round(model.b1 * scale_z).astype(np.int64),
        w2=np.round(model.w2 * s2).astype(np.int64),
        b2=np.round(model.b2 * s2 * scale_z**2).astype(np.int64),
    )


def bfv_parameters(bound: int) -> BfvParameters:
    """n = 8192 with 218 bits of q (the 128-bit bound), and the smallest
    plaintext modulus holding every output: t > 2 * bound, so signed
    decoding in (-t/2, t/2) is exact."""
    bits = (2 * bound + 1).bit_length() + 1
    params = BfvParameters(8192, plaintext_bits=bits, moduli_bits=[54, 54, 55], special_modulus_bits=55)
    assert params.plaintext_modulus > 2 * bound, "plaintext modulus too small"
    return params


@dataclass
class Result:
    float_accuracy: float
    clear_accuracy: float
    encrypted_accuracy: float
    images: int
    bound: int
    params: BfvParameters
    noise_budget: int
    seconds_encrypt: float
    seconds_evaluate: float
    seconds_decrypt: float
    clear_logits: np.ndarray
    encrypted_logits: np.ndarray

    @property
    def seconds_total(self) -> float:
        return self.seconds_encrypt + self.seconds_evaluate + self.seconds_decrypt


def encrypted_logits(model: IntModel, x: np.ndarray, params: BfvParameters):
    """The network on encrypted images: returns the decrypted outputs
    (images x 10), the lowest noise budget left, and the times of
    encryption, evaluation and decryption."""
    n = params.slot_count
    if len(x) > n:
        raise ValueError(f"at most {n} images per batch")
    sk = SecretKey(params)
    rk = RelinKeys(sk)
    encoder, evaluator, decryptor = BatchEncoder(params), Evaluator(params), Decryptor(sk)

    def weight(w: int):
        # A constant-slot plaintext in NTT form; zero weights are skipped.
        return None if w == 0 else evaluator.plain_to_ntt(encoder.encode_scalar(int(w)))

    w1 = [[weight(model.w1[i, j]) for i in range(model.w1.shape[0])] for j in range(model.w1.shape[1])]
    w2 = [[weight(model.w2[j, k]) for j in range(model.w2.shape[0])] for k in range(model.w2.shape[1])]
    b1 = [encoder.encode_scalar(int(b)) for b in model.b1]
    b2 = [encoder.encode_scalar(int(b)) for b in model.b2]

    # Client: one ciphertext per pixel position, slot i = image i.
    start = time.perf_counter()
    pixels = [sk.encrypt(encoder.encode(x[:, i])) for i in range(x.shape[1])]
    encrypted = time.perf_counter()

    # Server: only ciphertexts and plaintext weights.
    pixels = [evaluator.transform_to_ntt(c) for c in pixels]
    hidden = evaluator.multiply_plain_accumulate(pixels, w1)
    hidden = [evaluator.add_plain(evaluator.transform_from_ntt(h), b) for h, b in zip(hidden, b1)]
    squares = [evaluator.transform_to_ntt(evaluator.relinearize(evaluator.square(h), rk)) for h in hidden]
    outputs = evaluator.multiply_plain_accumulate(squares, w2)
    outputs = [evaluator.add_plain(evaluator.transform_from_ntt(o), b) for o, b in zip(outputs, b2)]
    evaluated = time.perf_counter()

    # Client: decrypt the 10 output ciphertexts.
    budget = min(decryptor.noise_budget(o) for o in outputs)
    logits = np.stack(
        [encoder.decode_array(decryptor.decrypt(o), signed=True)[: len(x)] for o in outputs], axis=1
    )
    done = time.perf_counter()
    return logits, budget, (encrypted - start, evaluated - encrypted, done - evaluated)


def run(limit: int | None = None, hidden: int = 16, epochs: int = 300, seed: int = 0) -> Result:
    x_train, y_train, x_test, y_test = split(seed)
    if limit is not None:
        x_test, y_test = x_test[:limit], y_test[:limit]
    model = train(x_train, y_train, hidden, epochs, seed)
    qmodel = quantize(model, w1_levels=15, w2_levels=15)
    bound = qmodel.bound()
    if bound >= 2**62:
        raise ValueError(f"outputs up to {bound} do not fit a 61-bit plaintext modulus")
    params = bfv_parameters(bound)
    clear = qmodel.logits(x_test)
    logits, budget, (t_enc, t_eval, t_dec) = encrypted_logits(qmodel, x_test, params)
    return Result(
        float_accuracy=float((model.logits(x_test).argmax(axis=1) == y_test).mean()),
        clear_accuracy=float((clear.argmax(axis=1) == y_test).mean()),
        encrypted_accuracy=float((logits.argmax(axis=1) == y_test).mean()),
        images=len(x_test),
        bound=bound,
        params=params,
        noise_budget=budget,
        seconds_encrypt=t_enc,
        seconds_evaluate=t_eval,
        seconds_decrypt=t_dec,
        clear_logits=clear,
        encrypted_logits=logits,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="test images to classify (default: all)")
    ap.add_argument("--hidden", type=int, default=16, help="hidden units (default 16)")
    ap.add_argument("--epochs", type=int, default=300, help="training steps (default 300)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    r = run(args.limit, args.hidden, args.epochs, args.seed)
    p = r.params
    print(f"test images: {r.images}")
    print(f"float model accuracy:              {r.float_accuracy:.4f}")
    print(f"quantized model accuracy, clear:     {r.clear_accuracy:.4f}")
    print(f"quantized model accuracy, encrypted: {r.encrypted_accuracy:.4f}")
    same = np.array_equal(r.clear_logits, r.encrypted_logits)
    print(f"encrypted outputs equal the clear integer outputs for every image: {same}")
    print(
        f"BFV: n = {p.degree}, t = {p.plaintext_modulus} ({p.plaintext_modulus.bit_length()} bits; "
        f"largest possible |output| {r.bound}, about 2^{math.log2(r.bound):.1f}), log q = {p.log_q}; "
        f"noise budget left: {r.noise_budget} bits"
    )
    print(
        f"time: encrypt {r.seconds_encrypt:.3f} s, evaluate {r.seconds_evaluate:.3f} s, "
        f"decrypt {r.seconds_decrypt:.3f} s; {1000 * r.seconds_total / r.images:.2f} ms per image "
        f"({r.images} images in one batch of {p.slot_count} slots; a full batch costs the same, "
        f"{1e6 * r.seconds_total / p.slot_count:.0f} us per image)"
    )
    if not same or r.clear_accuracy != r.encrypted_accuracy:
        raise SystemExit("encrypted and clear results differ")


if __name__ == "__main__":
    main()
