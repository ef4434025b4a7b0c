"""Labeled private set intersection (psi-core).

The sender holds a database of items (bytes) with optional labels; the
receiver learns which of its items are in it, and their labels, and the
sender learns nothing. Every protocol message is ``bytes``, so any
transport works::

    request, pending = receiver.oprf_request(items)    # receiver -> sender
    response = db.evaluate_oprf(request)                # sender -> receiver
    query, state = receiver.create_query(pending, response)  # -> sender
    parts = db.answer(query)                            # sender -> receiver
    matches = receiver.decode(state, parts)

>>> from breachcheck.psi import PsiParams, SenderDb, run_in_process
>>> db = SenderDb(PsiParams.preset("64K-1-16"), [b"alice"], [b"seen 3 times"])
>>> m = run_in_process(db, [b"alice"])[0]
>>> m.matched, m.label.rstrip(b"\\0")
(True, b'seen 3 times')
"""

from ._native import (
    OprfKey as OprfKey,
    OprfPending as OprfPending,
    PsiMatch as PsiMatch,
    PsiParams as PsiParams,
    QueryState as QueryState,
    Receiver as Receiver,
    SenderDb as SenderDb,
    run_in_process as run_in_process,
)

__all__ = [
    "PsiParams",
    "OprfKey",
    "SenderDb",
    "Receiver",
    "OprfPending",
    "QueryState",
    "PsiMatch",
    "run_in_process",
]
