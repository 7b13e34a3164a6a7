"""Level-3 BLAS operators: gemm, gemm2, syrk, trmm, trsm.

``op(X)`` is ``Xᵀ`` when the corresponding ``transpose`` flag is set, else ``X``. Each VJP is
the adjoint of the JVP beside it under ⟨X, Y⟩ = Σ X_ij Y_ij.
"""

from __future__ import annotations

from .matrix import mT
from .operator import Arg, Operator, Output, register


def _op(xp, x, transpose):
    return mT(xp, x) if transpose else x


def _unop(xp, g, transpose):
    """Gradient w.r.t. ``X`` from the gradient w.r.t. ``op(X)`` (``op`` is its own adjoint)."""
    return mT(xp, g) if transpose else g


def _scale(c, x):
    """``c · x``, skipping the pass over ``x`` when ``c`` is 1."""
    return x if c == 1 else c * x


def _product_check(shapes, params):
    a, b = shapes[0], shapes[1]
    k_a = a[0] if params["transpose_a"] else a[1]
    k_b = b[1] if params["transpose_b"] else b[0]
    if k_a != k_b:
        return f"inner dimensions of op(A) {_shape_of_op(a, params['transpose_a'])} and op(B) {_shape_of_op(b, params['transpose_b'])} differ"
    if len(shapes) == 3:
        m = a[1] if params["transpose_a"] else a[0]
        n = b[0] if params["transpose_b"] else b[1]
        if tuple(shapes[2]) != (m, n):
            return f"C has shape {tuple(shapes[2])}, op(A) op(B) has shape {(m, n)}"
    return None


def _shape_of_op(shape, transpose):
    return tuple(reversed(shape)) if transpose else tuple(shape)


# ---- gemm2: alpha op(A) op(B) ----------------------------------------------------------------
def _gemm2_forward(xp, kern, a, b, *, transpose_a, transpose_b, alpha):
    return (_scale(alpha, xp.matmul(_op(xp, a, transpose_a), _op(xp, b, transpose_b))),)


def _gemm2_jvp(xp, kern, inputs, outputs, tangents, *, transpose_a, transpose_b, alpha):
    a, b = inputs
    da, db = tangents
    opa, opb = _op(xp, a, transpose_a), _op(xp, b, transpose_b)
    return (_scale(alpha, xp.matmul(_op(xp, da, transpose_a), opb) + xp.matmul(opa, _op(xp, db, transpose_b))),)


def _gemm2_vjp(xp, kern, inputs, outputs, cotangents, *, transpose_a, transpose_b, alpha):
    a, b = inputs
    (g,) = cotangents
    opa, opb = _op(xp, a, transpose_a), _op(xp, b, transpose_b)
    ga = _scale(alpha, xp.matmul(g, mT(xp, opb)))
    gb = _scale(alpha, xp.matmul(mT(xp, opa), g))
    return _unop(xp, ga, transpose_a), _unop(xp, gb, transpose_b)


def _gemm2_reference(a, b, *, transpose_a, transpose_b, alpha):
    return (alpha * ((a.T if transpose_a else a) @ (b.T if transpose_b else b)),)


def _product_condition(arrays, params):
    """Componentwise rounding bound of the product (and sum) relative to its size."""
    import numpy as np

    a, b = arrays[0], arrays[1]
    opa = np.swapaxes(a, -1, -2) if params["transpose_a"] else a
    opb = np.swapaxes(b, -1, -2) if params["transpose_b"] else b
    bound = abs(params["alpha"]) * (np.abs(opa) @ np.abs(opb))
    exact = params["alpha"] * (opa @ opb)
    if len(arrays) == 3:
        bound = bound + abs(params["beta"]) * np.abs(arrays[2])
        exact = exact + params["beta"] * arrays[2]
    if bound.size == 0:
        return 1.0
    return max(1.0, float(np.max(bound)) / max(float(np.max(np.abs(exact))), 1e-300))


gemm2 = register(
    Operator(
        name="gemm2",
        args=(Arg("A", dims=("m", "k"), flip="transpose_a"), Arg("B", dims=("k", "p"), flip="transpose_b")),
        outputs=(Output("out", dims=("m", "p")),),
        params={"transpose_a": False, "transpose_b": False, "alpha": 1.0},
        forward=_gemm2_forward,
        jvp=_gemm2_jvp,
        vjp=_gemm2_vjp,
        summary="General matrix product ``alpha * op(A) @ op(B)``.",
        math="""\
Forward:  ``Out = α op(A) op(B)``.
JVP:      ``dOut = α (op(dA) op(B) + op(A) op(dB))``.
VJP:      ``op(A)‾ = α Ḡ op(B)ᵀ``,  ``op(B)‾ = α op(A)ᵀ Ḡ``.""",
        grid={"transpose_a": (False, True), "transpose_b": (False, True), "alpha": (1.0, -0.7)},
        reference=_gemm2_reference,
        condition=_product_condition,
    )
)


# ---- gemm: alpha op(A) op(B) + beta C ---------------------------------------------------------
def _gemm_forward(xp, kern, a, b, c, *, transpose_a, transpose_b, alpha, beta):
    (prod,) = _gemm2_forward(xp, kern, a, b, transpose_a=transpose_a, transpose_b=transpose_b, alpha=alpha)
    return (prod + _scale(beta, c),)


def _gemm_jvp(xp, kern, inputs, outputs, tangents, *, transpose_a, transpose_b, alpha, beta):
    (dprod,) = _gemm2_jvp(
        xp, kern, inputs[:2], None, tangents[:2], transpose_a=transpose_a, transpose_b=transpose_b, alpha=alpha
    )
    return (dprod + _scale(beta, tangents[2]),)


def _gemm_vjp(xp, kern, inputs, outputs, cotangents, *, transpose_a, transpose_b, alpha, beta):
    ga, gb = _gemm2_vjp(
        xp, kern, inputs[:2], None, cotangents, transpose_a=transpose_a, transpose_b=transpose_b, alpha=alpha
    )
    return ga, gb, _scale(beta, cotangents[0])


def _gemm_reference(a, b, c, *, transpose_a, transpose_b, alpha, beta):
    return (alpha * ((a.T if transpose_a else a) @ (b.T if transpose_b else b)) + beta * c,)


gemm = register(
    Operator(
        name="gemm",
        args=(
            Arg("A", dims=("m", "k"), flip="transpose_a"),
            Arg("B", dims=("k", "p"), flip="transpose_b"),
            Arg("C", dims=("m", "p")),
        ),
        outputs=(Output("out", dims=("m", "p")),),
        params={"transpose_a": False, "transpose_b": False, "alpha": 1.0, "beta": 1.0},
        forward=_gemm_forward,
        jvp=_gemm_jvp,
        vjp=_gemm_vjp,
        summary="General matrix product and sum ``alpha * op(A) @ op(B) + beta * C``.",
        math="""\
Forward:  ``Out = α op(A) op(B) + β C``.
JVP:      ``dOut = α (op(dA) op(B) + op(A) op(dB)) + β dC``.
VJP:      ``op(A)‾ = α Ḡ op(B)ᵀ``,  ``op(B)‾ = α op(A)ᵀ Ḡ``,  ``C̄ = β Ḡ``.""",
        grid={"transpose_a": (False, True), "transpose_b": (False, True), ("alpha", "beta"): ((1.0, 1.0), (-0.7, 2.5))},
        reference=_gemm_reference,
        condition=_product_condition,
    )
)


# ---- syrk: alpha A Aᵀ or alpha Aᵀ A ------------------------------------------------------------
def _syrk_forward(xp, kern, a, *, transpose, alpha):
    return (_scale(alpha, xp.matmul(_op(xp, a, transpose), _op(xp, a, not transpose))),)


def _syrk_jvp(xp, kern, inputs, outputs, tangents, *, transpose, alpha):
    (a,), (da,) = inputs, tangents
    d = xp.matmul(_op(xp, da, transpose), _op(xp, a, not transpose))
    return (_scale(alpha, d + mT(xp, d)),)


def _syrk_vjp(xp, kern, inputs, outputs, cotangents, *, transpose, alpha):
    (a,), (g,) = inputs, cotangents
    gs = _scale(alpha, g + mT(xp, g))
    return (xp.matmul(a, gs) if transpose else xp.matmul(gs, a),)


def _syrk_reference(a, *, transpose, alpha):
    return (alpha * (a.T @ a if transpose else a @ a.T),)


syrk = register(
    Operator(
        name="syrk",
        args=(Arg("A", dims=("n", "k"), flip="transpose"),),
        outputs=(Output("out", dims=("n", "n")),),
        params={"transpose": False, "alpha": 1.0},
        forward=_syrk_forward,
        jvp=_syrk_jvp,
        vjp=_syrk_vjp,
        summary="Symmetric rank-k update ``alpha * A @ Aᵀ`` (or ``alpha * Aᵀ @ A``).",
        math="""\
Forward:  ``Out = α A Aᵀ`` (``transpose``: ``α Aᵀ A``).
JVP:      ``dOut = α (dA Aᵀ + A dAᵀ)``.
VJP:      ``Ā = α (Ḡ + Ḡᵀ) A`` (``transpose``: ``α A (Ḡ + Ḡᵀ)``).""",
        grid={"transpose": (False, True), "alpha": (1.0, 0.6)},
        reference=_syrk_reference,
    )
)


# ---- trmm / trsm: triangular multiply and solve -----------------------------------------------
def _triangular_check(shapes, params):
    a, b = shapes
    k = b[1] if params["rightside"] else b[0]
    if k != a[0]:
        side = "columns" if params["rightside"] else "rows"
        return f"A is {a[0]}x{a[1]} but B {tuple(b)} has {k} {side}"
    return None


def _trmm_forward(xp, kern, a, b, *, transpose, rightside, lower, alpha):
    opa = _op(xp, a, transpose)
    return (_scale(alpha, xp.matmul(b, opa) if rightside else xp.matmul(opa, b)),)


def _trmm_jvp(xp, kern, inputs, outputs, tangents, *, transpose, rightside, lower, alpha):
    (a, b), (da, db) = inputs, tangents
    opa, opda = _op(xp, a, transpose), _op(xp, da, transpose)
    if rightside:
        return (_scale(alpha, xp.matmul(db, opa) + xp.matmul(b, opda)),)
    return (_scale(alpha, xp.matmul(opda, b) + xp.matmul(opa, db)),)


def _trmm_vjp(xp, kern, inputs, outputs, cotangents, *, transpose, rightside, lower, alpha):
    (a, b), (g,) = inputs, cotangents
    opa = _op(xp, a, transpose)
    if rightside:
        g_opa, gb = xp.matmul(mT(xp, b), g), xp.matmul(g, mT(xp, opa))
    else:
        g_opa, gb = xp.matmul(g, mT(xp, b)), xp.matmul(mT(xp, opa), g)
    return _scale(alpha, _unop(xp, g_opa, transpose)), _scale(alpha, gb)


def _trmm_reference(a, b, *, transpose, rightside, lower, alpha):
    import numpy as np

    t = np.tril(a) if lower else np.triu(a)
    opa = t.T if transpose else t
    return (alpha * (b @ opa if rightside else opa @ b),)


trmm = register(
    Operator(
        name="trmm",
        args=(
            Arg("A", dims=("n", "n"), structure="triangular", domain="triangular"),
            Arg("B", dims=("n", "k"), flip="rightside"),
        ),
        outputs=(Output("out", dims=("n", "k"), flip="rightside"),),
        params={"transpose": False, "rightside": False, "lower": True, "alpha": 1.0},
        forward=_trmm_forward,
        jvp=_trmm_jvp,
        vjp=_trmm_vjp,
        summary="Triangular matrix product ``alpha * op(A) @ B`` (or ``alpha * B @ op(A)``).",
        math="""\
Forward:  ``Out = α op(A) B`` (``rightside``: ``α B op(A)``); only the ``lower``/upper
          triangle of ``A`` is read.
JVP:      ``dOut = α (op(dA) B + op(A) dB)``.
VJP:      ``op(A)‾ = α Ḡ Bᵀ``, ``B̄ = α op(A)ᵀ Ḡ`` (rightside: ``α Bᵀ Ḡ``, ``α Ḡ op(A)ᵀ``);
          ``Ā`` is masked to the triangle.""",
        grid={"transpose": (False, True), "rightside": (False, True), "lower": (True, False), "alpha": (1.0, -1.5)},
        reference=_trmm_reference,
    )
)


def _trsm_forward(xp, kern, a, b, *, transpose, rightside, lower, alpha):
    x = kern.solve_triangular(a, b, lower=lower, transpose=transpose, left=not rightside)
    return (_scale(alpha, x),)


def _trsm_jvp(xp, kern, inputs, outputs, tangents, *, transpose, rightside, lower, alpha):
    (a, _), (x,), (da, db) = inputs, outputs, tangents
    opda = _op(xp, da, transpose)
    rhs = _scale(alpha, db) - (xp.matmul(x, opda) if rightside else xp.matmul(opda, x))
    return (kern.solve_triangular(a, rhs, lower=lower, transpose=transpose, left=not rightside),)


def _trsm_vjp(xp, kern, inputs, outputs, cotangents, *, transpose, rightside, lower, alpha):
    (a, _), (x,), (g,) = inputs, outputs, cotangents
    # Y = op(A)⁻ᵀ Ḡ (rightside: Ḡ op(A)⁻ᵀ);  B̄ = α Y;  op(A)‾ = -Y Xᵀ (rightside: -Xᵀ Y).
    y = kern.solve_triangular(a, g, lower=lower, transpose=not transpose, left=not rightside)
    g_opa = -(xp.matmul(mT(xp, x), y) if rightside else xp.matmul(y, mT(xp, x)))
    return _unop(xp, g_opa, transpose), _scale(alpha, y)


def _trsm_reference(a, b, *, transpose, rightside, lower, alpha):
    import numpy as np
    import scipy.linalg

    t = np.tril(a) if lower else np.triu(a)
    if a.shape[0] == 0:
        return (alpha * b,)
    if rightside:  # X op(A) = B  <=>  op(A)ᵀ Xᵀ = Bᵀ
        return (alpha * scipy.linalg.solve_triangular(t, b.T, lower=lower, trans=0 if transpose else 1).T,)
    return (alpha * scipy.linalg.solve_triangular(t, b, lower=lower, trans=1 if transpose else 0),)


def _zero_diagonal(arrays, params):
    """A triangular first argument with a zero on its diagonal (singular)."""
    a = arrays[0].copy()
    a[..., -1, -1] = 0.0
    return (a, *arrays[1:])


trsm = register(
    Operator(
        name="trsm",
        args=(
            Arg("A", dims=("n", "n"), structure="triangular", domain="triangular"),
            Arg("B", dims=("n", "k"), flip="rightside"),
        ),
        outputs=(Output("out", dims=("n", "k"), flip="rightside"),),
        params={"transpose": False, "rightside": False, "lower": True, "alpha": 1.0},
        forward=_trsm_forward,
        jvp=_trsm_jvp,
        vjp=_trsm_vjp,
        failure="the triangular matrix A is singular (zero on its diagonal)",
        summary="Triangular solve ``alpha * op(A)⁻¹ @ B`` (or ``alpha * B @ op(A)⁻¹``).",
        math="""\
Forward:  ``X = α op(A)⁻¹ B`` (``rightside``: ``α B op(A)⁻¹``); only the ``lower``/upper
          triangle of ``A`` is read.
JVP:      ``dX = op(A)⁻¹ (α dB − op(dA) X)`` (rightside: ``(α dB − X op(dA)) op(A)⁻¹``).
VJP:      ``Y = op(A)⁻ᵀ Ḡ``, ``B̄ = α Y``, ``op(A)‾ = −Y Xᵀ``
          (rightside: ``Y = Ḡ op(A)⁻ᵀ``, ``op(A)‾ = −Xᵀ Y``); ``Ā`` masked to the triangle.""",
        grid={"transpose": (False, True), "rightside": (False, True), "lower": (True, False), "alpha": (1.0, -1.5)},
        reference=_trsm_reference,
        breaks=_zero_diagonal,
    )
)
