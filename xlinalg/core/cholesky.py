"""Cholesky family: potrf, potri, potrs, sumlogdiag.

``lower=True``: ``A = L Lᵀ`` with ``L`` lower triangular; ``lower=False``: ``A = Uᵀ U`` with
``U = Lᵀ`` upper triangular. Rules are written for the lower factor; the upper case transposes
(``U = Lᵀ`` so ``dU = dLᵀ`` and ``L̄ = Ūᵀ``). Derivatives as in Murray (2016), "Differentiation
of the Cholesky decomposition", with ``Φ(X) = tril(X) − diag(X)/2``.
"""

from __future__ import annotations

from .matrix import diag_embed, diagonal, identity_like, mT, phi
from .operator import Arg, Operator, Output, register


def _as_lower(xp, f, lower):
    return f if lower else mT(xp, f)


# ---- potrf ------------------------------------------------------------------------------------
def _potrf_forward(xp, kern, a, *, lower):
    return (_as_lower(xp, kern.cholesky(a), lower),)


def _potrf_jvp(xp, kern, inputs, outputs, tangents, *, lower):
    (f,), (da,) = outputs, tangents
    el = _as_lower(xp, f, lower)
    # dL = L Φ(L⁻¹ dA L⁻ᵀ)
    s = kern.solve_triangular(el, da, lower=True)
    s = kern.solve_triangular(el, s, lower=True, transpose=True, left=False)
    return (_as_lower(xp, xp.matmul(el, phi(xp, s)), lower),)


def _potrf_vjp(xp, kern, inputs, outputs, cotangents, *, lower):
    (f,), (g,) = outputs, cotangents
    el, gl = _as_lower(xp, f, lower), _as_lower(xp, g, lower)
    # Ā = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹ (made symmetric by the structure projection)
    p = phi(xp, xp.matmul(mT(xp, el), gl))
    p = kern.solve_triangular(el, p, lower=True, transpose=True)
    return (kern.solve_triangular(el, p, lower=True, left=False),)


potrf = register(
    Operator(
        name="potrf",
        args=(Arg("A", square=True, structure="symmetric"),),
        outputs=(Output("out"),),
        params={"lower": True},
        forward=_potrf_forward,
        jvp=_potrf_jvp,
        vjp=_potrf_vjp,
        failure="the matrix is not positive definite",
        summary="Cholesky factorization of a symmetric positive definite matrix.",
        math="""\
Forward:  ``A = L Lᵀ`` (``lower``) or ``A = Uᵀ U``; the other triangle of the result is zero.
JVP:      ``dL = L Φ(L⁻¹ dA L⁻ᵀ)``,  ``Φ(X) = tril(X) − diag(X)/2``.
VJP:      ``Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹)``,  ``sym(X) = (X + Xᵀ)/2``.""",
    )
)


# ---- potri ------------------------------------------------------------------------------------
def _factor_product_tangent(xp, f, df, lower):
    """``dA`` for ``A = F Fᵀ`` (lower) or ``A = Fᵀ F`` (upper)."""
    d = xp.matmul(df, mT(xp, f)) if lower else xp.matmul(mT(xp, df), f)
    return d + mT(xp, d)


def _factor_product_cotangent(xp, f, ga, lower):
    """``F̄`` from ``Ā`` for ``A = F Fᵀ`` (lower) or ``A = Fᵀ F`` (upper)."""
    s = ga + mT(xp, ga)
    return xp.matmul(s, f) if lower else xp.matmul(f, s)


def _cholesky_inverse(xp, kern, f, lower):
    el = _as_lower(xp, f, lower)
    linv = kern.solve_triangular(el, identity_like(xp, el), lower=True)
    return xp.matmul(mT(xp, linv), linv)


def _potri_forward(xp, kern, f, *, lower):
    return (_cholesky_inverse(xp, kern, f, lower),)


def _potri_jvp(xp, kern, inputs, outputs, tangents, *, lower):
    (f,), (x,), (df,) = inputs, outputs, tangents
    da = _factor_product_tangent(xp, f, df, lower)
    return (-xp.matmul(x, xp.matmul(da, x)),)


def _potri_vjp(xp, kern, inputs, outputs, cotangents, *, lower):
    (f,), (x,), (g,) = inputs, outputs, cotangents
    ga = -xp.matmul(x, xp.matmul(g, x))
    return (_factor_product_cotangent(xp, f, ga, lower),)


potri = register(
    Operator(
        name="potri",
        args=(Arg("F", square=True, structure="triangular"),),
        outputs=(Output("out"),),
        params={"lower": True},
        forward=_potri_forward,
        jvp=_potri_jvp,
        vjp=_potri_vjp,
        failure="the Cholesky factor is singular (zero on its diagonal)",
        summary="Inverse ``A⁻¹`` of ``A = F Fᵀ`` (or ``Fᵀ F``) from its Cholesky factor ``F``.",
        math="""\
Forward:  ``X = (F Fᵀ)⁻¹`` (``lower``) or ``(Fᵀ F)⁻¹``; the full symmetric matrix.
JVP:      ``dX = −X dA X``,  ``dA = dF Fᵀ + F dFᵀ`` (upper: ``dFᵀ F + Fᵀ dF``).
VJP:      ``M = −X Ḡ X``,  ``F̄ = (M + Mᵀ) F`` (upper: ``F (M + Mᵀ)``), masked to the triangle.""",
    )
)


# ---- potrs ------------------------------------------------------------------------------------
def _cholesky_solve(xp, kern, f, b, lower):
    el = _as_lower(xp, f, lower)
    y = kern.solve_triangular(el, b, lower=True)
    return kern.solve_triangular(el, y, lower=True, transpose=True)


def _potrs_forward(xp, kern, f, b, *, lower):
    return (_cholesky_solve(xp, kern, f, b, lower),)


def _potrs_jvp(xp, kern, inputs, outputs, tangents, *, lower):
    (f, b), (x,), (df, db) = inputs, outputs, tangents
    da = _factor_product_tangent(xp, f, df, lower)
    return (_cholesky_solve(xp, kern, f, db - xp.matmul(da, x), lower),)


def _potrs_vjp(xp, kern, inputs, outputs, cotangents, *, lower):
    (f, b), (x,), (g,) = inputs, outputs, cotangents
    gb = _cholesky_solve(xp, kern, f, g, lower)
    ga = -xp.matmul(gb, mT(xp, x))
    return _factor_product_cotangent(xp, f, ga, lower), gb


def _potrs_check(shapes, params):
    f, b = shapes
    if b[0] != f[0]:
        return f"F is {f[0]}x{f[1]} but B {tuple(b)} has {b[0]} rows"
    return None


potrs = register(
    Operator(
        name="potrs",
        args=(Arg("F", square=True, structure="triangular"), Arg("B")),
        outputs=(Output("out"),),
        params={"lower": True},
        forward=_potrs_forward,
        jvp=_potrs_jvp,
        vjp=_potrs_vjp,
        check=_potrs_check,
        failure="the Cholesky factor is singular (zero on its diagonal)",
        summary="Solve ``A X = B`` given the Cholesky factor ``F`` of ``A``.",
        math="""\
Forward:  ``X = A⁻¹ B``,  ``A = F Fᵀ`` (``lower``) or ``Fᵀ F``: two triangular solves.
JVP:      ``dX = A⁻¹ (dB − dA X)``,  ``dA = dF Fᵀ + F dFᵀ`` (upper: ``dFᵀ F + Fᵀ dF``).
VJP:      ``B̄ = A⁻¹ Ḡ``,  ``M = −B̄ Xᵀ``,  ``F̄ = (M + Mᵀ) F`` (upper: ``F (M + Mᵀ)``), masked.""",
    )
)


# ---- sumlogdiag -------------------------------------------------------------------------------
def _sumlogdiag_forward(xp, kern, a):
    return (xp.sum(xp.log(diagonal(xp, a)), axis=-1),)


def _sumlogdiag_jvp(xp, kern, inputs, outputs, tangents):
    (a,), (da,) = inputs, tangents
    return (xp.sum(diagonal(xp, da) / diagonal(xp, a), axis=-1),)


def _sumlogdiag_vjp(xp, kern, inputs, outputs, cotangents):
    (a,), (g,) = inputs, cotangents
    return (diag_embed(xp, g[..., None] / diagonal(xp, a)),)


sumlogdiag = register(
    Operator(
        name="sumlogdiag",
        args=(Arg("A", square=True),),
        outputs=(Output("out", ndim=0),),
        forward=_sumlogdiag_forward,
        jvp=_sumlogdiag_jvp,
        vjp=_sumlogdiag_vjp,
        summary="Sum of the logarithms of the diagonal, ``Σ log A_ii``.",
        math="""\
Forward:  ``s = Σᵢ log A_ii`` (for the Cholesky factor ``L`` of ``A``: ``log det A = 2 s``).
JVP:      ``ds = Σᵢ dA_ii / A_ii``.
VJP:      ``Ā = diag(ḡ / A_ii)``.""",
    )
)
