"""CuPy kernels: ``cupy.linalg`` and ``cupyx.scipy.linalg`` on the GPU, and the GPU kernel layer.

CuPy has no autodiff: its users call :func:`xlinalg.vjp`/:func:`xlinalg.jvp`, whose rules run on
these kernels. ``compiled`` runs the GPU layer's rules (:mod:`xlinalg.cuda.rules`) where the
CUDA library is built, a device is usable and the orders fit its per-matrix entries, on the
arrays' memory and CuPy's current stream; elsewhere the pure rules run on CuPy's cuSOLVER and
cuBLAS calls. Failures follow the table contract: CuPy does not check cuSOLVER's ``info``
unless asked, so factorizations and inverses run under ``cupyx.errstate(linalg="raise")`` and a
batch with a failing entry is redone matrix by matrix, that entry NaN.
"""

from __future__ import annotations

import cupy
import cupyx
import cupyx.scipy.linalg
import numpy as np

from .portable import Kernels


class CupyArrays:
    """CuPy arrays for the GPU layer's rules (:class:`xlinalg.cuda.rules.Arrays`): on the
    array's device, on CuPy's current stream."""

    def empty(self, shape, like, dtype=None):
        with like.device:
            return cupy.empty(shape, dtype=like.dtype if dtype is None else dtype)

    def contiguous(self, x):
        return cupy.ascontiguousarray(x)

    def broadcast(self, x, shape):
        return cupy.ascontiguousarray(cupy.broadcast_to(x, shape))

    def pointer(self, x):
        return x.data.ptr

    def dtype(self, x):
        return x.dtype.name

    def stream(self, x):
        return cupy.cuda.get_current_stream(x.device.id).ptr  # CuPy's current stream is per device

    def device(self, x):
        return x.device.id

    def interleave(self, x, batch):
        return cupy.ascontiguousarray(x.reshape(batch, -1).T)

    def deinterleave(self, y, out):
        out.reshape(y.shape[1], -1)[...] = y.T


class CupyKernels(Kernels):
    """Kernels over ``array_api_compat.cupy``; failures raise NumPy's ``LinAlgError`` (CuPy's
    own error class)."""

    name = "cupy"
    error_base = np.linalg.LinAlgError

    def cholesky(self, a):
        with cupyx.errstate(linalg="raise"):
            return self._guarded(cupy.linalg.cholesky, a)

    def inv(self, a):
        with cupyx.errstate(linalg="raise"):
            return self._guarded(cupy.linalg.inv, a)

    def eigh(self, a):
        w, v = cupy.linalg.eigh(a, UPLO="L")
        return w, v

    def solve_triangular(self, a, b, *, lower, transpose=False, left=True):
        if not left:  # X op(A) = B  <=>  op(A)ᵀ Xᵀ = Bᵀ
            x = self.solve_triangular(a, cupy.swapaxes(b, -1, -2), lower=lower, transpose=not transpose)
            return cupy.swapaxes(x, -1, -2)
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if a.shape[-1] == 0 or b.shape[-1] == 0:
            return cupy.zeros(batch + b.shape[-2:], dtype=b.dtype)
        a = cupy.broadcast_to(a, batch + a.shape[-2:])
        b = cupy.broadcast_to(b, batch + b.shape[-2:])
        return cupyx.scipy.linalg.solve_triangular(a, b, trans=1 if transpose else 0, lower=lower)

    def compiled(self, op, kind, arrays):
        from ..cuda import rules

        if any(x.device != arrays[0].device for x in arrays):
            return None
        return rules.cuda_runner(op, kind, arrays, CupyArrays())
