"""CPU NDArray memory as NumPy arrays and back, without copies where NumPy allows (DLPack).

Shared by the MXNet adapter and the MXNet kernel table; importing it imports no MXNet (the
functions import it on use, when NDArrays exist).
"""

from __future__ import annotations

import numpy as np

#: NumPy >= 1.22 exchanges CPU memory with MXNet through DLPack without copying.
DLPACK = hasattr(np, "from_dlpack") and hasattr(np.ndarray, "__dlpack__")


class _ReadView:
    """A DLPack producer for ``np.from_dlpack``: a read-only view of a CPU NDArray (waits for
    pending writes to it first)."""

    __slots__ = ("nd",)

    def __init__(self, nd):
        self.nd = nd

    def __dlpack__(self, stream=None):
        return self.nd.to_dlpack_for_read()

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU


def to_numpy(x, size=None) -> np.ndarray:
    """A read-only NumPy view of the CPU NDArray ``x`` (a copy with NumPy < 1.22); ``size``:
    ``x.size`` where the caller has it (each query is a call into MXNet)."""
    if size is None:
        size = x.size
    return np.from_dlpack(_ReadView(x)) if DLPACK and size else x.asnumpy()


def to_ndarray(a: np.ndarray):
    """A CPU NDArray holding the NumPy array ``a``: ``a``'s own memory (zero-copy, through a
    view that MXNet marks read-only, so ``a``'s flags stay as they are) when ``a`` is
    C-contiguous, else a contiguous copy's."""
    import mxnet as mx

    a = a.view() if a.flags.c_contiguous else np.ascontiguousarray(a)
    if DLPACK:
        return mx.nd.from_numpy(a, zero_copy=True)
    return copy_to_ndarray(a)


def copy_to_ndarray(a: np.ndarray, ctx=None, dtype=None):
    """A new NDArray in MXNet's own memory (on ``ctx``, default the CPU) holding a copy of the
    NumPy array ``a`` (converted to ``dtype``, default ``a``'s): one allocation and one copy,
    without the generic indexing path of ``mx.nd.array`` and ``out[:] = a``."""
    import mxnet as mx

    out = mx.nd.empty(a.shape, ctx=ctx or mx.cpu(), dtype=dtype or a.dtype)
    if a.size:
        out._sync_copyfrom(a)
    return out
