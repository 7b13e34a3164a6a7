"""Float64 references: each operator's registry ``reference`` (NumPy/SciPy, one matrix at a
time, written independently of the derivative rules), evaluated over the broadcast batch.

Where an output is not unique by itself, the conventions (``docs/conventions.md``) make it
unique and the reference applies the same convention (syevd's sign rule, gelqf's
``diag(L) ≥ 0``); the forward check also verifies the operator's registry ``invariants``.
"""

from __future__ import annotations

from xlinalg.core.samples import reference as _reference


def reference(op: str, params: dict, *arrays) -> tuple:
    """The outputs of ``op`` in float64, computed matrix by matrix over the broadcast batch."""
    return _reference(op, params, *arrays)
