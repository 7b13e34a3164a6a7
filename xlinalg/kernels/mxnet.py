"""MXNet CPU kernels: NumPy's table, with MXNet's own batched LAPACK for the factorizations.

How the table is selected
    The MXNet adapter (:mod:`xlinalg.adapters.mxnet`) hands the core zero-copy NumPy views of
    CPU NDArrays (DLPack), so the namespace the core sees is NumPy's and
    :func:`~xlinalg.kernels.kernels_for` answers :class:`~xlinalg.kernels.numpy.NumpyKernels`
    for it. A namespace cannot tell whether its arrays came from MXNet, and plain NumPy calls
    must neither import MXNet nor change their kernels, so this table has no entry in
    ``kernels_for``'s lookup: the adapter selects it itself, for every call whose data it took
    from CPU NDArrays (it replaces the kernel table of the prepared
    :class:`~xlinalg.core.apply.Call` with :func:`cpu_kernels`). NDArrays on a GPU become CuPy
    arrays and get CuPy's table from ``kernels_for``.

Native operators bound once
    The four MXNet operators used here (``_linalg_potrf``, ``_linalg_trsm``,
    ``_linalg_inverse``, ``_linalg_syevd``) are made at import of this module from their
    handles in MXNet's C++ operator registry, the source ``mx.nd.linalg`` is itself generated
    from, never looked up in ``mx.nd.linalg``, ``mx.nd.op`` or ``mx.sym.linalg``. Code that
    installs ``xlinalg.mxnet``'s functions as ``mx.nd.linalg.<op>`` (the drop-in) therefore
    cannot route these kernels back into xlinalg.

Importing this module imports MXNet.
"""

from __future__ import annotations

import ctypes

import array_api_compat.numpy as _xp_numpy
import mxnet as mx
import numpy as np
from mxnet.base import _LIB, OpHandle, c_str, check_call
from mxnet.ndarray.register import _make_ndarray_function

from .mxnet_memory import to_ndarray, to_numpy
from .numpy import NumpyKernels

#: Below this many elements a call into MXNet costs more than NumPy's gufunc loop.
MIN_SIZE = 4096
#: From this order on MXNet's Cholesky beats NumPy's (batched or not); below it NumPy's
#: batched Cholesky is as fast whatever the batch size.
CHOLESKY_MIN_ORDER = 64

#: NumPy >= 1.22 exchanges CPU memory with MXNet through DLPack without copying.


def native_operator(op_name: str):
    """A new Python function for MXNet's registered operator ``op_name`` (e.g.
    ``"_linalg_potrf"``), made from its handle in MXNet's operator registry the way MXNet
    makes ``mx.nd.linalg.<op>``, and reachable from no MXNet namespace.

    Parameters
    ----------
    op_name : str
        The name the operator is registered under in MXNet's C++ registry.

    Returns
    -------
    function
        ``f(*NDArrays, **params)`` with the signature of ``mx.nd.linalg.<op>``.

    Raises
    ------
    ValueError
        When this MXNet build has no operator ``op_name``.
    """
    handle = OpHandle()
    check_call(_LIB.NNGetOpHandle(c_str(op_name), ctypes.byref(handle)))
    if not handle.value:
        raise ValueError(f"MXNet {mx.__version__} has no operator {op_name!r}")
    func_name = op_name.lstrip("_")
    fn = _make_ndarray_function(handle, op_name, func_name)
    fn.__module__, fn.__qualname__ = __name__, func_name
    return fn


_potrf = native_operator("_linalg_potrf")
_trsm = native_operator("_linalg_trsm")
_inverse = native_operator("_linalg_inverse")
_syevd = native_operator("_linalg_syevd")


class MxnetKernels(NumpyKernels):
    """NumPy kernels whose Cholesky, triangular solve, inverse and eigendecomposition run in
    MXNet's C++ operators (one batched LAPACK call instead of NumPy's per-matrix gufunc loop)
    for arrays of at least :data:`MIN_SIZE` elements (Cholesky: also of order at least
    :data:`CHOLESKY_MIN_ORDER`). Where MXNet reports a LAPACK failure (a matrix not positive
    definite, a singular matrix) the NumPy kernel redoes the call, giving NaN for the failing
    entries as the kernel contract asks. Inputs are left untouched, their flags included."""

    #: an xlinalg.LinAlgError raised on MXNet arrays is also an ``mx.base.MXNetError``, which
    #: MXNet's own linalg operators raise, so existing ``except`` clauses keep working
    error_base = (np.linalg.LinAlgError, mx.base.MXNetError)

    name = "mxnet"
    #: MXNet runs its own operators' BLAS on every thread, and no pool of its spins beside
    #: OpenBLAS's, so the layer's BLAS gets every thread from order 256 on (not 1024 as beside
    #: torch's OpenMP workers). Measured with 2 threads, float32, order 256, forward+backward under
    #: autograd: gemm 2.2 → 1.3 ms, trsm 1.7 → 1.2, inverse 2.5 → 2.0 (MXNet's own: 0.9–1.3).
    blas_threads_min_order = 256

    def cholesky(self, a):
        a = np.asarray(a)
        if a.shape[-1] < CHOLESKY_MIN_ORDER:
            return super().cholesky(a)
        return self._native(_potrf, super().cholesky, a)

    def inv(self, a):
        return self._native(_inverse, super().inv, np.asarray(a))

    def eigh(self, a):
        a = np.asarray(a)
        if not usable(a):
            return super().eigh(a)
        u, lam = _syevd(to_ndarray(a))
        return to_numpy(lam), np.swapaxes(to_numpy(u), -1, -2)

    def solve_triangular(self, a, b, *, lower, transpose=False, left=True):
        a, b = np.asarray(a), np.asarray(b)
        if not (usable(a) and usable(b)):
            return super().solve_triangular(a, b, lower=lower, transpose=transpose, left=left)
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if a.shape[:-2] != batch:
            a = np.broadcast_to(a, batch + a.shape[-2:])
        if b.shape[:-2] != batch:
            b = np.broadcast_to(b, batch + b.shape[-2:])
        x = _trsm(to_ndarray(a), to_ndarray(b), transpose=transpose, rightside=not left, lower=lower)
        return to_numpy(x)

    def _native(self, fn, fallback, a):
        if not usable(a):
            return fallback(a)
        try:
            return to_numpy(fn(to_ndarray(a)))  # waits for MXNet: a LAPACK failure raises here
        except mx.base.MXNetError:
            return fallback(a)


def usable(a) -> bool:
    """Whether to hand ``a`` to MXNet: large enough to pay for the call, and not empty
    (MXNet's legacy shapes cannot hold empty arrays)."""
    return a.ndim >= 2 and a.size >= MIN_SIZE


_table = None


def cpu_kernels() -> MxnetKernels:
    """The table the MXNet adapter runs the core with on the CPU (one instance, over
    ``array_api_compat.numpy``)."""
    global _table
    if _table is None:
        _table = MxnetKernels(_xp_numpy)
    return _table


__all__ = ["CHOLESKY_MIN_ORDER", "MIN_SIZE", "MxnetKernels", "cpu_kernels", "native_operator", "usable"]
