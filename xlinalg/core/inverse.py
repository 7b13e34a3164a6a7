"""General square matrices: inverse, det, slogdet.

With ``X = A⁻¹``: ``dX = −X dA X`` and ``d log|det A| = tr(A⁻¹ dA)`` (Giles 2008).

``d det A = tr(adj(A) dA) = ⟨C, dA⟩`` with the cofactor matrix ``C = adj(A)ᵀ``, a polynomial in
the entries of ``A``, finite everywhere, ``C = det(A) A⁻ᵀ`` for regular ``A``. It is computed
from one QR factorization ``A = Q R``: ``A⁻ᵀ = Q R⁻ᵀ`` and ``det A = det(Q) ∏ R_ii``, so

``C = det(Q) (∏ᵢ R_ii) Q R⁻ᵀ``.

Determinant and inverse then come from the same triangle: where ``A`` is (nearly) singular,
the large ``1/R_kk`` in ``R⁻ᵀ`` cancels against the same ``R_kk`` in the product, and ``C`` is
as accurate as at a regular matrix (the product of ``det A`` and ``A⁻ᵀ`` computed by two
separate factorizations is not: their rounding errors differ, and ``det A · A⁻ᵀ`` loses
``ε κ(A)`` relative accuracy, all of it at rank ``n − 1``). An exactly zero ``R_kk`` (rank
``n − 1``: ``C`` has rank one) is replaced by ``ε max|R_ii|``, a perturbation of ``A`` within
the backward error of the QR factorization, which keeps ``C`` finite and exact to rounding.
"""

from __future__ import annotations

from .matrix import diag_embed, diagonal, mT, trace_of_product
from .operator import Arg, Operator, Output, register


def _inverse_forward(xp, kern, a):
    return (kern.inv(a),)


def _inverse_jvp(xp, kern, inputs, outputs, tangents):
    (x,), (da,) = outputs, tangents
    return (-xp.matmul(x, xp.matmul(da, x)),)


def _inverse_vjp(xp, kern, inputs, outputs, cotangents):
    (x,), (g,) = outputs, cotangents
    xt = mT(xp, x)
    return (-xp.matmul(xt, xp.matmul(g, xt)),)


def _inverse_reference(a):
    import numpy as np

    return (np.linalg.inv(a) if a.shape[0] else a,)


def _singular(arrays, params):
    """A matrix with a zero row."""
    a = arrays[0].copy()
    a[..., -1, :] = 0.0
    return (a,)


inverse = register(
    Operator(
        name="inverse",
        args=(Arg("A", dims=("n", "n"), domain="nonsingular"),),
        outputs=(Output("out", dims=("n", "n")),),
        forward=_inverse_forward,
        jvp=_inverse_jvp,
        vjp=_inverse_vjp,
        failure="the matrix is singular",
        summary="Matrix inverse ``A⁻¹``.",
        math="""\
Forward:  ``X = A⁻¹``.
JVP:      ``dX = −X dA X``.
VJP:      ``Ā = −Xᵀ Ḡ Xᵀ``.""",
        reference=_inverse_reference,
        breaks=_singular,
    )
)


def _inverse_transpose(xp, kern, a):
    return mT(xp, kern.inv(a))


def _cofactor(xp, kern, a):
    """The cofactor matrix ``C = adj(A)ᵀ`` of each ``A``: ``∂ det A / ∂A``.

    ``C = det(Q) (∏ᵢ R_ii) Q R⁻ᵀ`` from ``A = Q R`` (``= det(A) A⁻ᵀ`` for regular ``A``), with
    diagonal entries of ``R`` below the smallest normal number replaced by ``ε max|R_ii|``
    (the smallest normal number when ``R`` is zero), so that ``C`` is finite and exact to
    rounding at singular ``A``. Differentiable twice with the kernel table (QR, triangular
    solve, determinant of the orthogonal ``Q`` reduced to its sign ±1).
    """
    n = a.shape[-1]
    if n == 0:
        return xp.zeros_like(a)
    q, r = kern.qr(a)
    rd = diagonal(xp, r)
    info = xp.finfo(a.dtype)
    scale = xp.max(xp.abs(rd), axis=-1, keepdims=True)
    bump = xp.where(scale > 0, info.eps * scale, xp.full_like(scale, info.smallest_normal))
    rd_safe = xp.where(xp.abs(rd) < info.smallest_normal, bump, rd)
    r_safe = r + diag_embed(xp, rd_safe - rd)
    # det(Q) = ±1 is locally constant: its sign, with derivative zero
    one = xp.ones_like(rd[..., 0])  # an array even for one matrix: no scalar promotion
    det_q = xp.where(kern.det(q) < 0, -one, one)
    q_rinvt = kern.solve_triangular(r_safe, q, lower=False, transpose=True, left=False)  # Q R⁻ᵀ
    return (det_q * xp.prod(rd_safe, axis=-1))[..., None, None] * q_rinvt


def _det_forward(xp, kern, a):
    return (kern.det(a),)


def _det_jvp(xp, kern, inputs, outputs, tangents):
    (a,), (da,) = inputs, tangents
    return (trace_of_product(xp, _cofactor(xp, kern, a), da),)


def _det_vjp(xp, kern, inputs, outputs, cotangents):
    (a,), (g,) = inputs, cotangents
    return (g[..., None, None] * _cofactor(xp, kern, a),)


def _det_reference(a):
    import scipy.linalg

    return (scipy.linalg.det(a) if a.shape[0] else 1.0,)


det = register(
    Operator(
        name="det",
        args=(Arg("A", dims=("n", "n"), domain="nonsingular"),),
        outputs=(Output("out", dims=()),),
        forward=_det_forward,
        jvp=_det_jvp,
        vjp=_det_vjp,
        summary="Determinant ``det A``.",
        math="""\
Forward:  ``d = det A``.
JVP:      ``dd = ⟨C, dA⟩ = tr(adj(A) dA)``,  ``C = adj(A)ᵀ`` the cofactor matrix.
VJP:      ``Ā = ḡ C``.  ``C = det(Q) (∏ R_ii) Q R⁻ᵀ`` from ``A = Q R`` (``= d A⁻ᵀ`` for
          regular ``A``); finite and exact at singular ``A`` (``R_ii = 0`` → ``ε max|R_jj|``).""",
        reference=_det_reference,
    )
)


def _slogdet_forward(xp, kern, a):
    return kern.slogdet(a)


def _slogdet_jvp(xp, kern, inputs, outputs, tangents):
    (a,), (sign, _), (da,) = inputs, outputs, tangents
    dlog = trace_of_product(xp, _inverse_transpose(xp, kern, a), da)
    return xp.zeros_like(sign), dlog


def _slogdet_vjp(xp, kern, inputs, outputs, cotangents):
    (a,), _, (_, glog) = inputs, outputs, cotangents
    return (glog[..., None, None] * _inverse_transpose(xp, kern, a),)


def _slogdet_reference(a):
    import numpy as np
    import scipy.linalg

    if a.shape[0] == 0:
        return (1.0, 0.0)
    lu, piv = scipy.linalg.lu_factor(a)
    d = np.diag(lu)
    swaps = np.sum(piv != np.arange(len(piv)))
    return ((-1.0) ** swaps * np.prod(np.sign(d)), np.sum(np.log(np.abs(d))))


slogdet = register(
    Operator(
        name="slogdet",
        args=(Arg("A", dims=("n", "n"), domain="nonsingular"),),
        outputs=(Output("sign", dims=()), Output("logabsdet", dims=())),
        forward=_slogdet_forward,
        jvp=_slogdet_jvp,
        vjp=_slogdet_vjp,
        summary="Sign and natural logarithm of the absolute value of the determinant.",
        math="""\
Forward:  ``(s, l)`` with ``det A = s · exp(l)``.
JVP:      ``ds = 0``,  ``dl = tr(A⁻¹ dA)``.
VJP:      ``Ā = l̄ A⁻ᵀ`` (the sign is piecewise constant: its cotangent is ignored).""",
        reference=_slogdet_reference,
    )
)
