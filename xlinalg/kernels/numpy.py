"""NumPy/SciPy kernels: NumPy's batched LAPACK gufuncs, SciPy's BLAS/LAPACK for large
matrices. Works with NumPy 1.23 (the MXNet environment) and NumPy 2."""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from .. import lapack
from ..lapack.rules import rule as _compiled_rule
from .portable import Kernels

#: From this order on a triangular solve calls BLAS ``trsm`` matrix by matrix; below it one
#: batched LU solve (NumPy's gufunc) is faster than a Python loop over the batch.
TRSM_MIN_ORDER = 64


class NumpyKernels(Kernels):
    name = "numpy"
    error_base = np.linalg.LinAlgError
    #: From this matrix order on the compiled rules' BLAS runs on every thread
    #: (:func:`thread_split`).
    blas_threads_min_order = lapack.BLAS_THREADS_MIN_ORDER

    def cholesky(self, a):
        return self._guarded(np.linalg.cholesky, np.asarray(a))

    def threads(self, arrays) -> tuple[int, int]:
        """``(BLAS threads, batch threads)`` of a compiled rule on ``arrays``
        (:func:`thread_split` of :func:`xlinalg.lapack.threads`)."""
        return thread_split(lapack.threads(), arrays, min_order=self.blas_threads_min_order)

    def compiled(self, op, kind, arrays):
        fn = _compiled_rule(op, kind)
        return None if fn is None else numpy_runner(fn, kind, self.threads(arrays))

    def compiled_saving(self, op, kind, arrays):
        fn = _compiled_rule(op, kind, saving=True)
        return None if fn is None else numpy_runner(fn, kind, self.threads(arrays))

    def eigh(self, a):
        w, v = np.linalg.eigh(a, UPLO="L")
        return w, v

    def qr(self, a):
        return tuple(np.linalg.qr(a, mode="reduced"))

    def inv(self, a):
        return self._guarded(np.linalg.inv, np.asarray(a))

    def det(self, a):
        return np.linalg.det(a)

    def slogdet(self, a):
        sign, logabsdet = np.linalg.slogdet(a)
        return sign, logabsdet

    def solve_triangular(self, a, b, *, lower, transpose=False, left=True):
        a, b = np.asarray(a), np.asarray(b)
        if not left:  # X op(A) = B  <=>  op(A)ᵀ Xᵀ = Bᵀ
            x = self.solve_triangular(a, np.swapaxes(b, -1, -2), lower=lower, transpose=not transpose)
            return np.swapaxes(x, -1, -2)
        n = a.shape[-1]
        if n == 0 or b.shape[-1] == 0:
            return np.zeros(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + b.shape[-2:], b.dtype)
        if n < TRSM_MIN_ORDER:
            t = np.tril(a) if lower else np.triu(a)
            try:
                return np.linalg.solve(np.swapaxes(t, -1, -2) if transpose else t, b)
            except np.linalg.LinAlgError:
                pass  # a singular entry: solve matrix by matrix, NaN where singular
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = np.broadcast_to(a, batch + a.shape[-2:]).reshape(-1, n, n)
        b = np.broadcast_to(b, batch + b.shape[-2:]).reshape(-1, *b.shape[-2:])
        out = np.empty(b.shape, dtype=b.dtype)
        for i in range(a.shape[0]):
            try:
                out[i] = scipy.linalg.solve_triangular(
                    a[i], b[i], lower=lower, trans=1 if transpose else 0, check_finite=False
                )
            except np.linalg.LinAlgError:
                out[i] = np.nan
        return out.reshape(batch + out.shape[-2:])

    def _guarded(self, fn, a):
        with np.errstate(all="ignore"):
            try:
                return fn(a)
            except np.linalg.LinAlgError:
                pass
            out = np.full(a.shape, np.nan, dtype=a.dtype)
            flat_in, flat_out = a.reshape(-1, *a.shape[-2:]), out.reshape(-1, *a.shape[-2:])
            for i in range(flat_in.shape[0]):
                try:
                    flat_out[i] = fn(flat_in[i])
                except np.linalg.LinAlgError:
                    pass
            return out


def thread_split(threads: int, arrays, split_min_elements: int = 0, *, min_order: int | None = None) -> tuple[int, int]:
    """``(BLAS threads, batch threads)`` of a call on ``arrays`` (arrays or their shapes) given
    ``threads``.

    The BLAS the rule calls gets ``threads`` only for matrices of order ``min_order`` (default
    :data:`~xlinalg.lapack.BLAS_THREADS_MIN_ORDER`) and more, else one: two pools on the same
    cores (the batch's threads or a framework's, and OpenBLAS's, which spin while they wait)
    made small-matrix calls up to 20 times slower with 2 threads. Below that order the batch
    is split across ``threads``, unless it has fewer than ``split_min_elements`` elements in all
    (a framework whose own workers spin beside ours: :data:`xlinalg.kernels.torch.SPLIT_MIN_ELEMENTS`)."""
    if threads == 1:
        return 1, 1
    shapes = [getattr(x, "shape", x) for x in arrays]
    order = max((s[-1] for s in shapes if len(s) >= 2), default=0)
    if order >= (lapack.BLAS_THREADS_MIN_ORDER if min_order is None else min_order):
        return threads, threads
    small = split_min_elements and sum(math.prod(s) for s in shapes) < split_min_elements
    return 1, 1 if small else threads


def numpy_runner(fn, kind: str, threads: tuple[int, int]):
    """A compiled rule (:mod:`xlinalg.lapack.rules`) as the ``run(*groups, params)`` of
    :meth:`Kernels.compiled`, for arrays that are NumPy arrays (or convert to them), on
    ``threads``: ``(BLAS threads, batch threads)`` (:func:`thread_split`); a ``vjp`` run takes
    the rules' ``out`` (preallocated input cotangents, :mod:`xlinalg.lapack.rules`)."""
    blas_threads, threads = threads
    lapack.use_blas_threads(blas_threads)

    def run(*groups, params, out=None):
        if kind == "forward":
            return fn(*groups, params, threads)  # (a saving forward: with its residuals)
        return fn(*groups, params, threads, out=out), None

    return run


def host_runner(op, kind: str, threads: int, arrays, to_numpy, from_numpy, *, saving: bool = False, split_min_elements: int = 0):
    """The compiled ``kind`` rule of ``op`` (of :data:`~xlinalg.lapack.rules.SAVING` with
    ``saving``) for another library's concrete CPU arrays, run on NumPy views of their memory:
    ``to_numpy`` maps each array to NumPy (without copying where the library allows),
    ``from_numpy`` each result back. ``None`` when ``op`` has no such rule. The status of a
    forward, and residuals, stay NumPy arrays. ``threads``, ``split_min_elements``: see
    :func:`thread_split`."""
    fn = _compiled_rule(op, kind, saving=saving)
    if fn is None:
        return None
    inner = numpy_runner(fn, kind, thread_split(threads, arrays, split_min_elements))
    kept = 1 if saving and kind == "vjp" else 0  # the residuals: NumPy arrays already

    def run(*groups, params):
        result = inner(*groups[:kept], *(tuple(to_numpy(x) for x in g) for g in groups[kept:]), params=params)
        return (tuple(from_numpy(v) for v in result[0]), *result[1:])

    return run
