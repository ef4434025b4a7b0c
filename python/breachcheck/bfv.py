"""BFV homomorphic encryption with batching (he-core).

A plaintext holds ``n`` integers modulo ``t`` (slots); additions and
multiplications of ciphertexts act slot by slot. Parameters come from a
preset (``BfvParameters.preset("n8192")``) or the constructor, which
refuses anything above the 128-bit security bound unless told otherwise.

>>> from breachcheck.bfv import *
>>> params = BfvParameters.preset("n4096")
>>> sk = SecretKey(params)
>>> encoder, evaluator = BatchEncoder(params), Evaluator(params)
>>> x = sk.encrypt(encoder.encode([1, 2, 3]))
>>> y = sk.encrypt(encoder.encode([4, 5, 6]))
>>> xy = evaluator.multiply_relin(x, y, RelinKeys(sk))
>>> encoder.decode(Decryptor(sk).decrypt(xy))[:3]
[4, 10, 18]
"""

from ._native import (
    BatchEncoder as BatchEncoder,
    BfvParameters as BfvParameters,
    Ciphertext as Ciphertext,
    Decryptor as Decryptor,
    Encryptor as Encryptor,
    Evaluator as Evaluator,
    Plaintext as Plaintext,
    PlaintextNtt as PlaintextNtt,
    PublicKey as PublicKey,
    RelinKeys as RelinKeys,
    SecretKey as SecretKey,
)

__all__ = [
    "BfvParameters",
    "SecretKey",
    "PublicKey",
    "RelinKeys",
    "Plaintext",
    "PlaintextNtt",
    "Ciphertext",
    "BatchEncoder",
    "Encryptor",
    "Decryptor",
    "Evaluator",
]
