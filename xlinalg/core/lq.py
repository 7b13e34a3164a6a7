"""LQ factorization: gelqf.

``A = L Q`` for ``A`` of shape ``m × n``, ``m ≤ n``: ``L`` lower triangular ``m × m`` with
``diag(L) ≥ 0`` (which makes the factorization unique for full-rank ``A``), ``Q`` ``m × n``
with orthonormal rows. Computed from the QR factorization of ``Aᵀ``.

Derivatives (the LQ form of the QR rules of Walter & Lehmann 2018, as in the MXNet paper):
with ``C = L⁻¹ dA Qᵀ`` and ``Ω = triu(C, 1) − triu(C, 1)ᵀ`` (``dQ Qᵀ``, skew-symmetric),
``dL = L (C − Ω)`` and ``dQ = L⁻¹ dA − (C − Ω) Q``. Its adjoint:
``M = Lᵀ L̄ − Q̄ Qᵀ``, ``Ā = L⁻ᵀ (Q̄ + copyltu(M) Q)``, ``copyltu(M) = tril(M) + tril(M, −1)ᵀ``.
"""

from __future__ import annotations

from .matrix import diagonal, mT
from .operator import Arg, Operator, Output, register


def _forward(xp, kern, a):
    q, r = kern.qr(mT(xp, a))
    sign = 1.0 - 2.0 * xp.astype(diagonal(xp, r) < 0, a.dtype)
    q_lq = mT(xp, q) * sign[..., :, None]  # rows of Q flipped ...
    el = mT(xp, r) * sign[..., None, :]  # ... with the matching columns of L
    return q_lq, el


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


gelqf = register(
    Operator(
        name="gelqf",
        args=(Arg("A"),),
        outputs=(Output("Q"), Output("L")),
        forward=_forward,
        jvp=_jvp,
        vjp=_vjp,
        check=_check,
        summary="LQ factorization ``A = L Q`` with ``Q Qᵀ = I`` and ``diag(L) ≥ 0``.",
        math="""\
Forward:  ``A = L Q``, ``L`` lower triangular with ``diag(L) ≥ 0``, ``Q Qᵀ = I``.
JVP:      ``C = L⁻¹ dA Qᵀ``, ``Ω = triu(C,1) − triu(C,1)ᵀ``: ``dL = L (C − Ω)``,
          ``dQ = L⁻¹ dA − (C − Ω) Q``.
VJP:      ``M = Lᵀ L̄ − Q̄ Qᵀ``,  ``Ā = L⁻ᵀ (Q̄ + copyltu(M) Q)``.""",
    )
)
