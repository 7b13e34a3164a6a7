"""``torch-native``: PyTorch's own functions in place of xlinalg's operators, differentiated
by PyTorch (``torch.autograd``, ``torch.func``), as :mod:`.torch` differentiates the adapter.

Each operator maps to the function ``docs/mapping.md`` names (``torch.linalg.cholesky``,
``torch.cholesky_inverse``, ``torch.cholesky_solve``, ``torch.linalg.solve_triangular``,
``torch.linalg.eigh``, ``torch.linalg.qr`` of the transpose, ``torch.diag_embed``, matrix
products for gemm/gemm2/syrk and ``tril() @`` for trmm, ``tril_indices`` for the packed
triangles) with layout conversions only (:mod:`.native`).

Declared: PyTorch's error contract — ``RuntimeError`` for bad shapes and dtypes,
``torch.linalg.LinAlgError`` naming the flat batch element (``"(Batch element 5)"``) for
numerical failures, which ``cholesky_solve`` and ``solve_triangular`` do not detect (their
failing entries come out non-finite) — and the known failures in
``known_failures/torch-native.toml``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..declarations import ErrorContract
from .native import flat_batch_index, packed_indices, packed_order
from .torch import TorchBackend

KNOWN_FAILURES = Path(__file__).parent / "known_failures" / "torch-native.toml"


def _torch():
    import torch

    return torch


def potrf(A, *, lower=True):
    return (_torch().linalg.cholesky(A, upper=not lower),)


def potri(F, *, lower=True):
    return (_torch().cholesky_inverse(F, upper=not lower),)


def potrs(F, B, *, lower=True):
    return (_torch().cholesky_solve(B, F, upper=not lower),)


def trsm(A, B, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    # op(A) = Aᵀ reads the transposed triangle: upper for a lower A
    a, upper = (A.mT, lower) if transpose else (A, not lower)
    return (_torch().linalg.solve_triangular(a, alpha * B, upper=upper, left=not rightside),)


def trmm(A, B, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    t = A.tril() if lower else A.triu()
    t = t.mT if transpose else t
    return (alpha * (B @ t if rightside else t @ B),)


def syrk(A, *, transpose=False, alpha=1.0):
    return (alpha * (A.mT @ A if transpose else A @ A.mT),)


def gemm2(A, B, *, transpose_a=False, transpose_b=False, alpha=1.0):
    return (alpha * ((A.mT if transpose_a else A) @ (B.mT if transpose_b else B)),)


def gemm(A, B, C, *, transpose_a=False, transpose_b=False, alpha=1.0, beta=1.0):
    return (gemm2(A, B, transpose_a=transpose_a, transpose_b=transpose_b, alpha=alpha)[0] + beta * C,)


def sumlogdiag(A):
    return (A.diagonal(0, -2, -1).log().sum(-1),)


def syevd(A):
    w, v = _torch().linalg.eigh(A, UPLO="L")
    return v.mT, w  # eigenvectors in rows


def inverse(A):
    return (_torch().linalg.inv(A),)


def det(A):
    return (_torch().linalg.det(A),)


def slogdet(A):
    sign, logabsdet = _torch().linalg.slogdet(A)
    return sign, logabsdet


def extractdiag(A, *, offset=0):
    return (A.diagonal(offset, -2, -1),)


def makediag(a, *, offset=0):
    return (_torch().diag_embed(a, offset),)


def extracttrian(A, *, offset=0, lower=True):
    rows, cols, transposed = packed_indices(A.shape[-1], offset, lower)
    return ((A.mT if transposed else A)[..., rows, cols],)


def maketrian(a, *, offset=0, lower=True):
    n = packed_order(a.shape[-1], offset)
    rows, cols, transposed = packed_indices(n, offset, lower)
    out = a.new_zeros((*a.shape[:-1], n, n))
    out[..., rows, cols] = a
    return (out.mT if transposed else out,)


def gelqf(A):
    q, r = _torch().linalg.qr(A.mT)  # A = L Q is Aᵀ = Qᵀ Lᵀ
    return q.mT, r.mT


FUNCTIONS = {
    f.__name__: f
    for f in (potrf, potri, potrs, trsm, trmm, syrk, gemm2, gemm, sumlogdiag, syevd, inverse, det, slogdet, extractdiag, makediag, extracttrian, maketrian, gelqf)
}


def _contract() -> ErrorContract:
    torch = _torch()
    return ErrorContract(
        value_error=(ValueError, RuntimeError, IndexError),
        type_error=(TypeError, RuntimeError),
        linalg_error=(torch.linalg.LinAlgError,),
        failures="raise",
        failures_by_op={"potrs": "nan", "trsm": "nan"},
        index=flat_batch_index(r"\(Batch element (\d+)\)"),
        messages=False,
    )


class TorchNativeBackend(TorchBackend):
    """PyTorch's functions (:data:`FUNCTIONS`) under PyTorch's autograd."""

    name = "torch-native"
    sources = {
        **TorchBackend.sources,
        "jvp": "torch.func.jvp (PyTorch's forward-mode derivatives)",
        "errors": "raised at the call by PyTorch's functions",
    }
    known_failures = KNOWN_FAILURES

    @property
    def error_contract(self):
        return _contract()

    @staticmethod
    def _fn(op, params):
        f = FUNCTIONS[op]
        return lambda *xs: f(*xs, **params)

    def call(self, op, arrays, params):
        return self._fn(op, params)(*arrays)

    def to_numpy(self, y):
        # force: PyTorch returns the tangent of slogdet's sign as a ZeroTensor, which has no
        # plain NumPy view
        return np.array(y.detach().cpu().numpy(force=True), copy=True)


BACKEND = TorchNativeBackend()
