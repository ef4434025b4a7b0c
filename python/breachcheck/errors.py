"""Exceptions raised by breachcheck.

Every error of the Rust core arrives as one of these classes; none is a
crash. Classes for bad input also derive from ``ValueError``, connection
problems from ``ConnectionError`` and deadlines from ``TimeoutError``, so
code that catches the built-in classes keeps working.

::

    BreachCheckError
    ├── ParameterError (ValueError)
    │   └── InsecureParametersError
    ├── MismatchError (ValueError)
    ├── InvalidValueError (ValueError)
    ├── DecodeError (ValueError)
    ├── LabelError (ValueError)
    ├── PsiError
    ├── DatabaseError
    ├── VaultError (ValueError)
    └── CheckError
        ├── ServerConnectionError (ConnectionError)
        ├── CheckTimeoutError (TimeoutError)
        └── ServerError
"""

__all__ = [
    "BreachCheckError",
    "ParameterError",
    "InsecureParametersError",
    "MismatchError",
    "InvalidValueError",
    "DecodeError",
    "LabelError",
    "PsiError",
    "DatabaseError",
    "VaultError",
    "CheckError",
    "ServerConnectionError",
    "CheckTimeoutError",
    "ServerError",
]


class BreachCheckError(Exception):
    """Base class of every breachcheck error (also: OS randomness failures,
    internal errors)."""


class ParameterError(BreachCheckError, ValueError):
    """Parameters that cannot work: not a power of two, not a prime, not
    NTT-friendly, inconsistent PSI settings, unknown preset..."""


class InsecureParametersError(ParameterError):
    """BFV parameters above the HomomorphicEncryption.org 128-bit bound."""


class MismatchError(BreachCheckError, ValueError):
    """Objects of different parameter sets, levels or representations
    (NTT or coefficient form) were combined."""


class InvalidValueError(BreachCheckError, ValueError):
    """An argument is out of range (too many slots, a value not below the
    plaintext modulus, a used-up protocol state...)."""


class DecodeError(BreachCheckError, ValueError):
    """Bytes that are not a valid serialized object or protocol message
    (truncated, trailing data, wrong version or tag, out-of-range
    coefficients)."""


class LabelError(BreachCheckError, ValueError):
    """A label is too long, missing for a labeled database, or given to an
    unlabeled one."""


class PsiError(BreachCheckError):
    """A PSI step failed (e.g. cuckoo hashing could not place an item)."""


class DatabaseError(BreachCheckError):
    """A saved sender database is corrupt, of an older format, built with
    another OPRF key, or could not be read or written."""


class VaultError(BreachCheckError, ValueError):
    """A password-manager export could not be read (unknown header, bad
    CSV, unreadable file); the message names the file and line."""


class CheckError(BreachCheckError):
    """A breach check against a server failed."""


class ServerConnectionError(CheckError, ConnectionError):
    """No usable connection: refused, TLS problem, untrusted certificate,
    http:// against a TLS port or the reverse."""


class CheckTimeoutError(CheckError, TimeoutError):
    """A call or the whole check passed its deadline."""


class ServerError(CheckError):
    """The server answered with an error status, kept refusing for load,
    lacks a collection, or broke the protocol."""
