"""LQ factorization: gelqf.

``A = L Q`` for ``A`` of shape ``m × n``, ``m ≤ n``: ``L`` lower triangular ``m × m`` with
``diag(L) ≥ 0`` (which makes the factorization unique for full-rank ``A``), ``Q`` ``m × n``
with orthonormal rows. Computed from the QR factorization of ``Aᵀ``.

Every derivative solves with ``L``, which is singular exactly when ``A`` does not have full row
rank (``L_ii = 0`` for some ``i``; ``Q`` is then not unique either). Such a batch entry fails:
its outputs come out NaN, so that it raises :class:`~xlinalg.LinAlgError` eagerly and is NaN
under a compiler, as for the other factorizations, instead of giving a NaN gradient later.

Derivatives (the LQ form of the QR rules of Walter & Lehmann 2018, as in the MXNet paper):
with ``C = L⁻¹ dA Qᵀ`` and ``Ω = triu(C, 1) − triu(C, 1)ᵀ`` (``dQ Qᵀ``, skew-symmetric),
``dL = L (C − Ω)`` and ``dQ = L⁻¹ dA − (C − Ω) Q``. Its adjoint:
``M = Lᵀ L̄ − Q̄ Qᵀ``, ``Ā = L⁻ᵀ (Q̄ + copyltu(M) Q)``, ``copyltu(M) = tril(M) + tril(M, −1)ᵀ``.
"""

from __future__ import annotations

import math

from .matrix import diagonal, mT
from .operator import Arg, Operator, Output, register


def _forward(xp, kern, a):
    q, r = kern.qr(mT(xp, a))
    d = diagonal(xp, r)
    sign = 1.0 - 2.0 * xp.astype(d < 0, a.dtype)
    q_lq = mT(xp, q) * sign[..., :, None]  # rows of Q flipped ...
    el = mT(xp, r) * sign[..., None, :]  # ... with the matching columns of L
    # no full row rank: a zero on the diagonal of L, the entry fails (NaN, see the docstring)
    failed = xp.any(d == 0, axis=-1)[..., None, None]
    return _nan_where(xp, failed, q_lq), _nan_where(xp, failed, el)


def _nan_where(xp, mask, y):
    """``y`` with the entries selected by ``mask`` NaN, dtype kept."""
    z = xp.where(mask, math.nan, y)
    return z if z.dtype == y.dtype else xp.astype(z, y.dtype)


def _jvp(xp, kern, inputs, outputs, tangents):
    (q, el), (da,) = outputs, tangents
    c = xp.matmul(kern.solve_triangular(el, da, lower=True), mT(xp, q))
    upper = xp.triu(c, k=1)
    c_minus_omega = c - upper + mT(xp, upper)
    dl = xp.matmul(el, c_minus_omega)
    dq = kern.solve_triangular(el, da, lower=True) - xp.matmul(c_minus_omega, q)
    return dq, dl


def _vjp(xp, kern, inputs, outputs, cotangents):
    (q, el), (gq, gl) = outputs, cotangents
    m = xp.matmul(mT(xp, el), gl) - xp.matmul(gq, mT(xp, q))
    copyltu = xp.tril(m) + mT(xp, xp.tril(m, k=-1))
    rhs = gq + xp.matmul(copyltu, q)
    return (kern.solve_triangular(el, rhs, lower=True, transpose=True),)


def _check(shapes, params):
    ((m, n),) = shapes
    if m > n:
        return f"A has more rows than columns ({m}x{n}); gelqf needs m <= n"
    return None


def _reference(a):
    import numpy as np
    import scipy.linalg

    m = a.shape[0]
    if m == 0:
        return np.zeros((0, a.shape[1])), np.zeros((0, 0))
    q, r = scipy.linalg.qr(a.T, mode="economic")
    s = np.where(np.diag(r) < 0, -1.0, 1.0)
    return (q * s).T, r.T * s


def _rank_deficient(arrays, params):
    """A matrix whose last row is zero: rank m − 1."""
    a = arrays[0].copy()
    a[..., -1, :] = 0.0
    return (a,)


def _invariants(inputs, outputs, tol):
    """``L Q = A``, ``Q Qᵀ = I``, ``L`` lower triangular with ``diag(L) ≥ 0``."""
    import numpy as np

    q, el = outputs
    a = np.asarray(inputs[0], np.float64)
    if a.size == 0 or q.size == 0:
        return []
    scale = np.max(np.abs(a)) or 1.0
    eye = np.eye(q.shape[-2])
    lmax = np.max(np.abs(el)) or 1.0
    return [
        (np.max(np.abs(el @ q - a)) / scale / tol, "L Q differs from A"),
        (np.max(np.abs(q @ np.swapaxes(q, -1, -2) - eye)) / tol, "Q Qᵀ differs from I"),
        (np.max(np.abs(np.triu(el, 1))) / lmax / tol, "L is not lower triangular"),
        (np.max(np.maximum(-np.diagonal(el, axis1=-2, axis2=-1), 0.0), initial=0.0) / lmax / tol, "diag(L) has negative entries"),
    ]


gelqf = register(
    Operator(
        name="gelqf",
        args=(Arg("A", dims=("m", "n"), domain="full_rank"),),
        outputs=(Output("Q", dims=("m", "n")), Output("L", dims=("m", "m"))),
        forward=_forward,
        jvp=_jvp,
        vjp=_vjp,
        check=_check,
        failure="A does not have full row rank (L has a zero on its diagonal)",
        summary="LQ factorization ``A = L Q`` with ``Q Qᵀ = I`` and ``diag(L) ≥ 0``.",
        math="""\
Forward:  ``A = L Q``, ``L`` lower triangular with ``diag(L) ≥ 0``, ``Q Qᵀ = I``; fails
          where ``A`` does not have full row rank (``L_ii = 0``: ``L⁻¹`` below does not exist).
JVP:      ``C = L⁻¹ dA Qᵀ``, ``Ω = triu(C,1) − triu(C,1)ᵀ``: ``dL = L (C − Ω)``,
          ``dQ = L⁻¹ dA − (C − Ω) Q``.
VJP:      ``M = Lᵀ L̄ − Q̄ Qᵀ``,  ``Ā = L⁻ᵀ (Q̄ + copyltu(M) Q)``.""",
        reference=_reference,
        invariants=_invariants,
        breaks=_rank_deficient,
    )
)
