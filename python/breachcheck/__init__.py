"""breachcheck: BFV homomorphic encryption, labeled private set
intersection and a private password-breach check, built in Rust.

Submodules:

- :mod:`breachcheck.bfv`: the BFV scheme (parameters, keys, batch
  encoding, encryption, homomorphic operations, serialization);
- :mod:`breachcheck.psi`: labeled PSI (parameters, sender database,
  receiver, protocol messages as bytes);
- :mod:`breachcheck.breach`: check a password-manager export or one
  password against a breach server, privately;
- :mod:`breachcheck.errors`: the exception classes.

Heavy calls release the GIL, so threads run them in parallel.
"""

from . import bfv, breach, errors, psi
from ._native import __version__
from .breach import check_password, check_vault
from .errors import BreachCheckError

__all__ = [
    "__version__",
    "bfv",
    "psi",
    "breach",
    "errors",
    "check_vault",
    "check_password",
    "BreachCheckError",
]
