"""What the native backends (``torch-native``, ``jax-native``, ``jax-native-jit``,
``mxnet-native``) share: the sizes of packed triangles, and the reading of a batch index.

A native backend runs a framework's own functions in place of xlinalg's operators. Its
mapping converts only layouts — eigenvectors in rows, the lower/upper flag, ``alpha`` and
``beta`` scaling, transposes, argument order — with the framework's differentiable
operations, and never repairs a value or a derivative: where the framework reads a whole
matrix, returns other signs or a differently shaped gradient, the suite is meant to see it.
Each mapping function takes the operator's parameters as keyword-only arguments, so an
unknown parameter raises ``TypeError`` as a Python call does.
"""

from __future__ import annotations

import math
import re

import numpy as np


def packed_indices(n: int, offset: int, lower: bool) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(rows, cols, transposed)``: ``extracttrian``'s packing order (MXNet's). The packed
    entries are ``A[..., rows, cols]``, or ``Aᵀ[..., rows, cols]`` when ``transposed``: the
    lower triangle ``|offset|`` below the diagonal for ``offset < 0`` or ``offset == 0`` with
    ``lower``, else the upper one, column by column."""
    rows, cols = np.tril_indices(n, -abs(offset), n)
    return rows, cols, not (offset < 0 or (offset == 0 and lower))


def packed_order(length: int, offset: int) -> int:
    """The matrix order ``n`` whose packed triangle with ``offset`` has ``length`` entries:
    ``m + |offset|`` with ``m (m + 1) / 2 = length``.

    Raises
    ------
    ValueError
        When ``length`` is not a triangular number.
    """
    m = (math.isqrt(8 * length + 1) - 1) // 2
    if m * (m + 1) // 2 != length:
        raise ValueError(f"maketrian: {length} entries do not fill a triangle")
    return m + abs(offset)


def flat_batch_index(pattern: str):
    """An ``ErrorContract.index`` function reading a flat batch position from a message (the
    first group of the regular expression ``pattern``) and unravelling it over the batch."""
    compiled = re.compile(pattern)

    def index(exc: BaseException, batch_shape: tuple):
        m = compiled.search(str(exc))
        if m is None:
            return ()
        k = int(m.group(1))
        return tuple(int(i) for i in np.unravel_index(k, batch_shape)) if batch_shape else ()

    return index
