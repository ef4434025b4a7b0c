"""Private password-breach checks against a breach server (breach-client).

The server never sees a username, a password or a hash of either: only
blinded group elements and ciphertexts under a key that stays in this
process (OPRF, then labeled PSI over BFV).

>>> from breachcheck import check_password
>>> check_password("hunter2", "http://127.0.0.1:50051")  # doctest: +SKIP
PasswordReport(password_breached=True, password_seen=12)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Optional, Union

from . import _native

__all__ = [
    "EntryResult",
    "Skipped",
    "VaultReport",
    "PasswordReport",
    "check_vault",
    "check_password",
]

StrPath = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class EntryResult:
    """The answer for one login of the export."""

    #: 1-based data-record number in the file (header excluded).
    entry: int
    #: The URL column, or the entry's title when the URL is empty.
    url: str
    #: The username exactly as written in the file.
    username: str
    #: Whether this (username, password) pair is in the breach data.
    credential_breached: bool
    #: How often the pair was seen; 0 when not found.
    breach_count: int
    #: Whether the password alone is in the breach data.
    password_breached: bool
    #: How often the password was seen (under any username); 0 when not found.
    password_seen: int

    @property
    def is_breached(self) -> bool:
        """Whether anything about this entry was found."""
        return self.credential_breached or self.password_breached


@dataclass(frozen=True)
class Skipped:
    """Rows of the export that were not checked, by reason."""

    empty_password: int = 0
    not_a_login: int = 0


@dataclass(frozen=True)
class VaultReport:
    """The result of :func:`check_vault`."""

    #: Login entries checked (the length of ``results``).
    checked: int
    #: One result per login entry, in file order.
    results: List[EntryResult] = field(default_factory=list)
    skipped: Skipped = field(default_factory=Skipped)

    @property
    def breached(self) -> List[EntryResult]:
        """The entries found in the breach data."""
        return [r for r in self.results if r.is_breached]


@dataclass(frozen=True)
class PasswordReport:
    """The result of :func:`check_password`."""

    password_breached: bool
    password_seen: int


def _ca(ca_certificate: Optional[Union[bytes, StrPath]]) -> Optional[bytes]:
    if ca_certificate is None or isinstance(ca_certificate, bytes):
        return ca_certificate
    with open(ca_certificate, "rb") as f:
        return f.read()


def check_vault(
    path: StrPath,
    server: str,
    *,
    format: Optional[str] = None,
    timeout: Optional[float] = None,
    call_timeout: float = 60.0,
    retry: bool = True,
    ca_certificate: Optional[Union[bytes, StrPath]] = None,
    max_items_per_round: Optional[int] = None,
) -> VaultReport:
    """Checks every login of a password-manager CSV export against the
    breach server at ``server`` (``http://host:port`` or ``https://...``).

    ``format`` names the export format (``chrome``, ``firefox``,
    ``bitwarden``, ...; detected from the header when None). ``timeout``
    bounds the whole check, ``call_timeout`` each call (seconds);
    refusals for load are retried unless ``retry`` is False.
    ``ca_certificate`` is a PEM certificate (bytes or a path) to trust for
    ``https://`` besides the system roots.

    Raises :class:`~breachcheck.errors.VaultError` for an unreadable
    export and a :class:`~breachcheck.errors.CheckError` subclass when the
    check fails. Ctrl-C stops it.
    """
    raw = _native.check_vault(
        path,
        server,
        format=format,
        timeout=timeout,
        call_timeout=call_timeout,
        retry=retry,
        ca_certificate=_ca(ca_certificate),
        max_items_per_round=max_items_per_round,
    )
    return VaultReport(
        checked=raw["checked"],
        results=[EntryResult(**r) for r in raw["results"]],
        skipped=Skipped(**raw["skipped"]),
    )


def check_password(
    password: str,
    server: str,
    *,
    timeout: Optional[float] = None,
    call_timeout: float = 60.0,
    retry: bool = True,
    ca_certificate: Optional[Union[bytes, StrPath]] = None,
) -> PasswordReport:
    """Checks one password against the server's passwords collection.

    Raises :class:`~breachcheck.errors.InvalidValueError` for an empty
    password and a :class:`~breachcheck.errors.CheckError` subclass when
    the check fails.
    """
    raw = _native.check_password(
        password,
        server,
        timeout=timeout,
        call_timeout=call_timeout,
        retry=retry,
        ca_certificate=_ca(ca_certificate),
    )
    return PasswordReport(**raw)
