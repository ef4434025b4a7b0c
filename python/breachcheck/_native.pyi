"""Type stubs of the extension module ``breachcheck._native``.

Use the public modules :mod:`breachcheck.bfv`, :mod:`breachcheck.psi` and
:mod:`breachcheck.breach`, which re-export these names. Every method that
can fail raises a :mod:`breachcheck.errors` class, never crashes.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union, final

import numpy as np
import numpy.typing as npt

__version__: str

_Ints = Union[Sequence[int], npt.NDArray[np.integer[Any]]]
_Path = Union[str, os.PathLike[str]]

# ---------------------------------------------------------------- BFV

@final
class BfvParameters:
    """BFV parameters, checked against the 128-bit security bound.

    Give exactly one of ``plaintext_modulus`` (a prime = 1 mod 2n) and
    ``plaintext_bits``, and one of ``moduli`` (primes) and ``moduli_bits``.
    Raises ``ParameterError``, or ``InsecureParametersError`` above the
    bound unless ``insecure_skip_security_check`` (tests only).
    """

    def __init__(
        self,
        degree: int,
        *,
        plaintext_modulus: Optional[int] = None,
        plaintext_bits: Optional[int] = None,
        moduli: Optional[Sequence[int]] = None,
        moduli_bits: Optional[Sequence[int]] = None,
        special_modulus: Optional[int] = None,
        special_modulus_bits: Optional[int] = None,
        key_switching: bool = True,
        insecure_skip_security_check: bool = False,
    ) -> None: ...
    @staticmethod
    def preset(name: str) -> BfvParameters:
        """``"n4096"`` (t = 65537, one product), ``"n8192"`` (20-bit t,
        three products deep), ``"n16384"`` (20-bit t, eight deep)."""
    @staticmethod
    def preset_names() -> List[str]: ...
    @staticmethod
    def max_log_q_128(degree: int) -> Optional[int]:
        """The largest log2(q) the 128-bit bound allows for ``degree``."""
    def to_dict(self) -> Dict[str, Any]:
        """The exact primes; ``from_dict`` rebuilds identical parameters."""
    @staticmethod
    def from_dict(d: Dict[str, Any]) -> BfvParameters: ...
    @property
    def degree(self) -> int: ...
    @property
    def slot_count(self) -> int: ...
    @property
    def plaintext_modulus(self) -> int: ...
    @property
    def moduli(self) -> List[int]: ...
    @property
    def special_modulus(self) -> Optional[int]: ...
    @property
    def log_q(self) -> int: ...
    @property
    def max_level(self) -> int: ...
    @property
    def supports_key_switching(self) -> bool: ...
    @property
    def is_insecure(self) -> bool: ...
    @property
    def fingerprint(self) -> bytes: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class SecretKey:
    """A fresh random BFV secret key. ``repr`` never shows it."""

    def __init__(self, params: BfvParameters) -> None: ...
    @property
    def parameters(self) -> BfvParameters: ...
    def encrypt(self, plaintext: Plaintext) -> Ciphertext:
        """Symmetric, seeded encryption (half the bytes of public-key encryption)."""
    def to_bytes(self) -> bytes:
        """SECRET bytes of the key."""
    @staticmethod
    def from_bytes(data: bytes, params: BfvParameters) -> SecretKey: ...

@final
class PublicKey:
    def __init__(self, secret_key: SecretKey) -> None: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes, params: BfvParameters) -> PublicKey: ...

@final
class RelinKeys:
    """Relinearization keys (parameters with key switching only)."""

    def __init__(self, secret_key: SecretKey) -> None: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes, params: BfvParameters) -> RelinKeys: ...

@final
class Plaintext:
    @staticmethod
    def from_coeffs(params: BfvParameters, coeffs: _Ints) -> Plaintext:
        """A polynomial from at most n coefficients, each in [0, t)."""
    @property
    def coeffs(self) -> List[int]: ...
    @property
    def parameters(self) -> BfvParameters: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes, params: BfvParameters) -> Plaintext: ...
    def __eq__(self, other: object) -> bool: ...

@final
class PlaintextNtt:
    """A plaintext in NTT form at one level (``Evaluator.plain_to_ntt``)."""

    @property
    def level(self) -> int: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes, params: BfvParameters) -> PlaintextNtt: ...

@final
class Ciphertext:
    """A BFV ciphertext. ``a + b``, ``a - b``, ``a * b`` (no
    relinearization), ``-a``, with ciphertexts or plaintexts."""

    @property
    def level(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def is_ntt(self) -> bool: ...
    @property
    def is_seeded(self) -> bool: ...
    @property
    def parameters(self) -> BfvParameters: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes, params: BfvParameters) -> Ciphertext: ...
    def __add__(self, other: Union[Ciphertext, Plaintext]) -> Ciphertext: ...
    def __radd__(self, other: Plaintext) -> Ciphertext: ...
    def __sub__(self, other: Union[Ciphertext, Plaintext]) -> Ciphertext: ...
    def __rsub__(self, other: Plaintext) -> Ciphertext: ...
    def __mul__(self, other: Union[Ciphertext, Plaintext]) -> Ciphertext: ...
    def __rmul__(self, other: Plaintext) -> Ciphertext: ...
    def __neg__(self) -> Ciphertext: ...

@final
class BatchEncoder:
    """n slots of integers mod t; products are slot-wise."""

    def __init__(self, params: BfvParameters) -> None: ...
    @property
    def slot_count(self) -> int: ...
    def encode(self, values: _Ints) -> Plaintext:
        """At most n values in [0, t); missing slots are zero."""
    def encode_signed(self, values: _Ints) -> Plaintext:
        """At most n values in (-t/2, t/2)."""
    def encode_scalar(self, value: int) -> Plaintext:
        """Every slot = ``value`` mod t (a constant polynomial)."""
    def decode(self, plaintext: Plaintext, signed: bool = False) -> List[int]: ...
    def decode_array(
        self, plaintext: Plaintext, signed: bool = False
    ) -> Union[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
        """Like ``decode``, as uint64 (int64 when ``signed``); needs NumPy."""

@final
class Encryptor:
    """Public-key encryption."""

    def __init__(self, params: BfvParameters, public_key: PublicKey) -> None: ...
    def encrypt(self, plaintext: Plaintext) -> Ciphertext: ...

@final
class Decryptor:
    def __init__(self, secret_key: SecretKey) -> None: ...
    def decrypt(self, ciphertext: Ciphertext) -> Plaintext: ...
    def noise_budget(self, ciphertext: Ciphertext) -> int:
        """Bits of noise budget left; 0: no longer decrypts correctly."""

@final
class Evaluator:
    """Homomorphic operations; each returns a new ciphertext."""

    def __init__(self, params: BfvParameters) -> None: ...
    def add(self, a: Ciphertext, b: Ciphertext) -> Ciphertext: ...
    def sub(self, a: Ciphertext, b: Ciphertext) -> Ciphertext: ...
    def negate(self, a: Ciphertext) -> Ciphertext: ...
    def add_many(self, cts: Sequence[Ciphertext]) -> Ciphertext: ...
    def add_plain(self, ct: Ciphertext, pt: Plaintext) -> Ciphertext: ...
    def sub_plain(self, ct: Ciphertext, pt: Plaintext) -> Ciphertext: ...
    def multiply_plain(self, ct: Ciphertext, pt: Plaintext) -> Ciphertext: ...
    def multiply_plain_ntt(self, ct: Ciphertext, pt: PlaintextNtt) -> Ciphertext:
        """Both in NTT form at the same level."""
    def multiply_plain_accumulate(
        self,
        cts: Sequence[Ciphertext],
        rows: Sequence[Sequence[Optional[PlaintextNtt]]],
    ) -> List[Ciphertext]:
        """Output o = sum_j cts[j] * rows[o][j] (None = zero); NTT form."""
    def multiply(self, a: Ciphertext, b: Ciphertext) -> Ciphertext:
        """Without relinearization: size(a) + size(b) - 1 polynomials."""
    def square(self, a: Ciphertext) -> Ciphertext: ...
    def multiply_relin(self, a: Ciphertext, b: Ciphertext, relin_keys: RelinKeys) -> Ciphertext: ...
    def relinearize(self, ct: Ciphertext, relin_keys: RelinKeys) -> Ciphertext: ...
    def mod_switch_to_next(self, ct: Ciphertext) -> Ciphertext: ...
    def mod_switch_to_level(self, ct: Ciphertext, level: int) -> Ciphertext: ...
    def transform_to_ntt(self, ct: Ciphertext) -> Ciphertext: ...
    def transform_from_ntt(self, ct: Ciphertext) -> Ciphertext: ...
    def plain_to_ntt(self, pt: Plaintext, level: int = 0) -> PlaintextNtt: ...

# ---------------------------------------------------------------- PSI

@final
class PsiParams:
    @staticmethod
    def preset(name: str) -> PsiParams:
        """A shipped preset, e.g. ``"64K-1024-16"``: 2^16 sender items,
        1024 items per query, 16-byte labels."""
    @staticmethod
    def preset_names() -> List[str]: ...
    @staticmethod
    def for_sizes(sender_items: int, receiver_items: int, label_bytes: int = 0) -> PsiParams: ...
    @staticmethod
    def from_json(json: str) -> PsiParams: ...
    def to_json(self) -> str: ...
    def false_positive_log2(self, receiver_items: int, sender_items: int) -> float: ...
    def bfv_parameters(self) -> BfvParameters: ...
    @property
    def table_size(self) -> int: ...
    @property
    def hash_functions(self) -> int: ...
    @property
    def max_items_per_bin(self) -> int: ...
    @property
    def felts_per_item(self) -> int: ...
    @property
    def query_powers(self) -> List[int]: ...
    @property
    def ps_low_degree(self) -> int: ...
    @property
    def label_byte_count(self) -> int: ...
    @property
    def nonce_byte_count(self) -> int: ...
    @property
    def fingerprint(self) -> bytes: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class OprfKey:
    """The sender's secret OPRF key."""

    @staticmethod
    def generate() -> OprfKey: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> OprfKey: ...

@final
class SenderDb:
    """The sender's database; thread-safe (queries run concurrently)."""

    def __init__(
        self,
        params: PsiParams,
        items: Optional[Sequence[bytes]] = None,
        labels: Optional[Sequence[bytes]] = None,
        oprf_key: Optional[OprfKey] = None,
    ) -> None: ...
    def insert(self, items: Sequence[bytes], labels: Optional[Sequence[bytes]] = None) -> None: ...
    def remove(self, items: Sequence[bytes]) -> int: ...
    @property
    def item_count(self) -> int: ...
    def __len__(self) -> int: ...
    @property
    def is_labeled(self) -> bool: ...
    @property
    def params(self) -> PsiParams: ...
    @property
    def oprf_key(self) -> OprfKey: ...
    def stats(self) -> Dict[str, int]: ...
    def save(self, path: _Path) -> None:
        """One versioned file, without the OPRF key."""
    @staticmethod
    def load(path: _Path, oprf_key: OprfKey) -> SenderDb: ...
    def evaluate_oprf(self, request: bytes) -> bytes:
        """Protocol step 2."""
    def answer(self, query: bytes) -> List[bytes]:
        """Protocol step 4: the result parts."""

@final
class OprfPending:
    """Single-use blinding state (``Receiver.oprf_request``)."""

@final
class QueryState:
    """Secret state of one query (``Receiver.create_query``)."""

@final
class PsiMatch:
    @property
    def matched(self) -> bool: ...
    @property
    def label(self) -> Optional[bytes]:
        """Zero-padded to ``label_byte_count``; None when unmatched or unlabeled."""
    def __eq__(self, other: object) -> bool: ...

@final
class Receiver:
    def __init__(self, params: PsiParams) -> None: ...
    @property
    def max_items(self) -> int: ...
    @property
    def params(self) -> PsiParams: ...
    def oprf_request(self, items: Sequence[bytes]) -> Tuple[bytes, OprfPending]:
        """Protocol step 1."""
    def create_query(self, pending: OprfPending, response: bytes) -> Tuple[bytes, QueryState]:
        """Protocol step 3."""
    def decode(self, state: QueryState, parts: Sequence[bytes]) -> List[PsiMatch]: ...

def run_in_process(db: SenderDb, items: Sequence[bytes]) -> List[PsiMatch]:
    """The whole protocol in this process, with a fresh receiver."""

# ---------------------------------------------------------------- breach check

def check_vault(
    path: _Path,
    server: str,
    *,
    format: Optional[str] = None,
    timeout: Optional[float] = None,
    call_timeout: float = 60.0,
    retry: bool = True,
    ca_certificate: Optional[bytes] = None,
    max_items_per_round: Optional[int] = None,
) -> Dict[str, Any]: ...
def check_password(
    password: str,
    server: str,
    *,
    timeout: Optional[float] = None,
    call_timeout: float = 60.0,
    retry: bool = True,
    ca_certificate: Optional[bytes] = None,
) -> Dict[str, Any]: ...
