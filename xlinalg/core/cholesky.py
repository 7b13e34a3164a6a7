"""Cholesky family: potrf, potri, potrs, sumlogdiag.

``lower=True``: ``A = L Lᵀ`` with ``L`` lower triangular; ``lower=False``: ``A = Uᵀ U`` with
``U = Lᵀ`` upper triangular. Rules are written for the lower factor; the upper case transposes
(``U = Lᵀ`` so ``dU = dLᵀ`` and ``L̄ = Ūᵀ``). Derivatives as in Murray (2016), "Differentiation
of the Cholesky decomposition", with ``Φ(X) = tril(X) − diag(X)/2``.

``potri`` and ``potrs`` differentiate the triangular solves they are computed with, never
``A = L Lᵀ`` itself: with ``Y = L⁻¹ B``, ``X = L⁻ᵀ Y = A⁻¹ B``, ``Z = L⁻¹ Ḡ`` and ``B̄ = L⁻ᵀ Z``,

``potrs``: ``dX = L⁻ᵀ (L⁻¹ (dB − dL Y) − dLᵀ X)``, ``L̄ = −tril(B̄ Yᵀ + X Zᵀ)``;
``potri``: ``dX = −(P + Pᵀ)`` with ``P = X dL L⁻¹``, ``L̄ = −tril(X (Ḡ + Ḡᵀ) L⁻ᵀ)``.

Each VJP is the adjoint of its JVP (JAX transposes the JVP into exactly that VJP). They equal
``dX = −A⁻¹ dA X`` (``dA = dL Lᵀ + L dLᵀ``) and ``L̄ = tril((M + Mᵀ) L)``, ``M = −B̄ Xᵀ``
(``potri``: ``M = −X Ḡ X``) in exact arithmetic, but never form ``dA`` or ``M``: ``potrs``
needs only ``n × k`` intermediates and ``O(n² k)`` work (``dA X`` costs ``O(n³)``), and
``(M + Mᵀ) L`` cancels: ``M`` is of order ``κ(A)`` where the stable forms are of order
``√κ(A)``, losing about ``√κ(A)`` in relative accuracy.
"""

from __future__ import annotations

from .matrix import device, diag_embed, diagonal, identity_like, mT, phi
from .operator import Arg, Operator, Output, register


def _as_lower(xp, f, lower):
    return f if lower else mT(xp, f)


# ---- potrf ------------------------------------------------------------------------------------
def _potrf_forward(xp, kern, a, *, lower):
    return (_as_lower(xp, kern.cholesky(a), lower),)


def cholesky_block(n: int) -> int:
    """Columns per step of the blocked JVP and VJP of ``potrf`` at order ``n``; 0: the formulas.

    The formulas cost about 4n³ flops each (a product and two triangular solves of order n); the
    blocked rules about 2n³/3, in products of order ``n × block``, plus the formulas on the
    diagonal blocks (6·block²/n² of that). Measured on the CPU (NumPy and PyTorch, one thread),
    the blocked VJP is faster from order 256 on, by 1.3–2.8× at 256–1024; blocks of 128 were
    best to order 1024, of 256 at 2048 (fewer steps, each a few framework calls)."""
    return 0 if n < 256 else 128 if n < 2048 else 256


def _potrf_jvp(xp, kern, inputs, outputs, tangents, *, lower):
    (f,), (da,) = outputs, tangents
    el = _as_lower(xp, f, lower)
    block = cholesky_block(el.shape[-1])
    dl = _cholesky_tangent_blocked(xp, kern, el, da, block) if block else _cholesky_tangent(xp, kern, el, da)
    return (_as_lower(xp, dl, lower),)


def _cholesky_tangent(xp, kern, el, da):
    """``dL = L Φ(L⁻¹ dA L⁻ᵀ)`` for a symmetric ``dA``."""
    s = kern.solve_triangular(el, da, lower=True)
    s = kern.solve_triangular(el, s, lower=True, transpose=True, left=False)
    return xp.matmul(el, phi(xp, s))


def _cholesky_tangent_blocked(xp, kern, el, da, block):
    """``dL`` by the forward's block columns, in products of order ``n × block``.

    For the columns ``j:k`` with ``R = L[j:k, :j]``, ``D = L[j:k, j:k]``, ``B = L[k:, :j]``,
    ``C = L[k:, j:k]`` and the forward ``D = chol(A_DD − R Rᵀ)``, ``C = (A_CD − B Rᵀ) D⁻ᵀ``:
    ``dD = `` the formula on ``(D, dA_DD − dR Rᵀ − R dRᵀ)``,
    ``dC = (dA_CD − dB Rᵀ − B dRᵀ − C dDᵀ) D⁻ᵀ``, from the columns ``dL[:, :j]`` before them.
    """
    n, lead = el.shape[-1], el.shape[:-2]
    done = None  # dL[:, :j]
    for j in range(0, n, block):
        k = min(n, j + block)
        d, da_dd, da_cd = el[..., j:k, j:k], da[..., j:k, j:k], da[..., k:, j:k]
        if j > 0:
            r, dr = el[..., j:k, :j], done[..., j:k, :]
            x = xp.matmul(dr, mT(xp, r))
            da_dd = da_dd - x - mT(xp, x)
            if k < n:
                da_cd = da_cd - xp.matmul(done[..., k:, :], mT(xp, r)) - xp.matmul(el[..., k:, :j], mT(xp, dr))
        column = [_cholesky_tangent(xp, kern, d, da_dd)]
        if k < n:
            dc = da_cd - xp.matmul(el[..., k:, j:k], mT(xp, column[0]))
            column.append(kern.solve_triangular(d, dc, lower=True, transpose=True, left=False))
        if j > 0:
            column.insert(0, xp.zeros((*lead, j, k - j), dtype=el.dtype, device=device(el)))
        column = xp.concat(column, axis=-2)
        done = column if done is None else xp.concat([done, column], axis=-1)
    return done


def _potrf_vjp(xp, kern, inputs, outputs, cotangents, *, lower):
    (f,), (g,) = outputs, cotangents
    el, gl = _as_lower(xp, f, lower), _as_lower(xp, g, lower)
    # The result's symmetric part is Ā (the structure projection makes it symmetric)
    block = cholesky_block(el.shape[-1])
    return (_cholesky_reverse_blocked(xp, kern, el, gl, block) if block else _cholesky_reverse(xp, kern, el, gl),)


def _cholesky_reverse(xp, kern, el, gl):
    """``L⁻ᵀ Φ(Lᵀ L̄) L⁻¹``, whose symmetric part is ``Ā`` (only L̄'s lower triangle is read)."""
    p = phi(xp, xp.matmul(mT(xp, el), gl))
    p = kern.solve_triangular(el, p, lower=True, transpose=True)
    return kern.solve_triangular(el, p, lower=True, left=False)


def _cholesky_reverse_blocked(xp, kern, el, gl, block):
    """Murray's blocked reverse: a matrix ``T`` with ``sym(T) = Ā``, in products of order ``n × block``.

    The forward's block columns in reverse order. For the columns ``j:k`` with ``R = L[j:k, :j]``,
    ``D = L[j:k, j:k]``, ``B = L[k:, :j]``, ``C = L[k:, j:k]`` and the forward
    ``D = chol(A_DD − R Rᵀ)``, ``C = (A_CD − B Rᵀ) D⁻ᵀ``:
    ``Ā_CD = C̄ D⁻¹``;  ``D̄ −= Ā_CDᵀ C``;  ``Ā_DD = `` the formula on ``(D, D̄)``;
    ``R̄ −= (Ā_DD + Ā_DDᵀ) R + Ā_CDᵀ B``;  ``B̄ −= Ā_CD R``.
    ``T``'s block column ``j:k`` is ``[0; Ā_DD; Ā_CD]``: its symmetric part halves ``Ā_CD`` into
    both triangles, as ``A``'s lower triangle is read once per pair of symmetric entries.
    Nothing is updated in place: ``w`` holds ``L̄[:, :k]`` for the columns not yet reversed, of
    which only the lower triangle is read.
    """
    n, lead = el.shape[-1], el.shape[:-2]
    w = gl
    columns = []
    k = n
    while k > 0:
        j = max(0, k - block)
        d = el[..., j:k, j:k]
        db = w[..., j:k, j:k]
        if k < n:
            a_cd = kern.solve_triangular(d, w[..., k:, j:k], lower=True, left=False)
            db = db - xp.matmul(mT(xp, a_cd), el[..., k:, j:k])
        a_dd = _cholesky_reverse(xp, kern, d, db)
        if j > 0:
            r = el[..., j:k, :j]
            update = xp.matmul(a_dd + mT(xp, a_dd), r)
            if k < n:
                update = xp.concat([update + xp.matmul(mT(xp, a_cd), el[..., k:, :j]), xp.matmul(a_cd, r)], axis=-2)
            w = xp.concat([w[..., :j, :j], w[..., j:, :j] - update], axis=-2)
        column = [a_dd] if k == n else [a_dd, a_cd]
        if j > 0:
            column.insert(0, xp.zeros((*lead, j, k - j), dtype=el.dtype, device=device(el)))
        columns.append(xp.concat(column, axis=-2))
        k = j
    return xp.concat(columns[::-1], axis=-1)


def _potrf_reference(a, *, lower):
    import numpy as np
    import scipy.linalg

    t = np.tril(a) if lower else np.triu(a)
    s = t + t.T - np.diag(np.diag(a))
    return (scipy.linalg.cholesky(s, lower=lower) if s.shape[0] else s,)


def _indefinite(arrays, params):
    """A symmetric matrix with a negative eigenvalue."""
    import numpy as np

    a = arrays[0].copy()
    a[..., -1, -1] = -1.0 - np.abs(a).sum()
    return (a,)


potrf = register(
    Operator(
        name="potrf",
        args=(Arg("A", dims=("n", "n"), structure="symmetric", domain="spd"),),
        outputs=(Output("out", dims=("n", "n")),),
        params={"lower": True},
        forward=_potrf_forward,
        jvp=_potrf_jvp,
        vjp=_potrf_vjp,
        failure="the matrix is not positive definite",
        summary="Cholesky factorization of a symmetric positive definite matrix.",
        math="""\
Forward:  ``A = L Lᵀ`` (``lower``) or ``A = Uᵀ U``; the other triangle of the result is zero.
JVP:      ``dL = L Φ(L⁻¹ dA L⁻ᵀ)``,  ``Φ(X) = tril(X) − diag(X)/2``.
VJP:      ``Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹)``,  ``sym(X) = (X + Xᵀ)/2``.
From order 256 both run by blocks of the forward's columns (Murray 2016): about 2n³/3 flops in
products instead of 4n³ in a product and two triangular solves of order ``n``.""",
        grid={"lower": (True, False)},
        reference=_potrf_reference,
        breaks=_indefinite,
    )
)


# ---- potri ------------------------------------------------------------------------------------
def _cholesky_inverse(xp, kern, f, lower):
    el = _as_lower(xp, f, lower)
    linv = kern.solve_triangular(el, identity_like(xp, el), lower=True)
    return xp.matmul(mT(xp, linv), linv)


def _potri_forward(xp, kern, f, *, lower):
    return (_cholesky_inverse(xp, kern, f, lower),)


def _potri_jvp(xp, kern, inputs, outputs, tangents, *, lower):
    (f,), (x,), (df,) = inputs, outputs, tangents
    el, dl = _as_lower(xp, f, lower), _as_lower(xp, df, lower)
    # dX = −X dA X = −(P + Pᵀ) with P = X dL L⁻¹ (as X L = L⁻ᵀ): no product with dA formed
    p = kern.solve_triangular(el, xp.matmul(x, dl), lower=True, left=False)
    return (-(p + mT(xp, p)),)


def _potri_vjp(xp, kern, inputs, outputs, cotangents, *, lower):
    (f,), (x,), (g,) = inputs, outputs, cotangents
    el = _as_lower(xp, f, lower)
    # L̄ = −X (Ḡ + Ḡᵀ) L⁻ᵀ, the adjoint of the JVP above (masked to the triangle by the caller)
    s = xp.matmul(x, g + mT(xp, g))
    gl = -kern.solve_triangular(el, s, lower=True, transpose=True, left=False)
    return (_as_lower(xp, gl, lower),)


def _spd_from_factor(f, lower):
    import numpy as np

    t = np.tril(f) if lower else np.triu(f)
    return t @ t.T if lower else t.T @ t


def _potri_reference(f, *, lower):
    import numpy as np

    a = _spd_from_factor(f, lower)
    return (np.linalg.inv(a) if a.shape[0] else a,)


def _singular_factor(arrays, params):
    """A factor with a zero on its diagonal."""
    f = arrays[0].copy()
    f[..., -1, -1] = 0.0
    return (f, *arrays[1:])


potri = register(
    Operator(
        name="potri",
        args=(Arg("F", dims=("n", "n"), structure="triangular", domain="factor"),),
        outputs=(Output("out", dims=("n", "n")),),
        params={"lower": True},
        forward=_potri_forward,
        jvp=_potri_jvp,
        vjp=_potri_vjp,
        failure="the Cholesky factor is singular (zero on its diagonal)",
        summary="Inverse ``A⁻¹`` of ``A = F Fᵀ`` (or ``Fᵀ F``) from its Cholesky factor ``F``.",
        math="""\
Forward:  ``X = (F Fᵀ)⁻¹`` (``lower``) or ``(Fᵀ F)⁻¹``; the full symmetric matrix.
JVP:      ``dX = −X dA X = −(P + Pᵀ)``,  ``P = X dL L⁻¹``  (``L = F``; upper: ``L = Fᵀ``,
          ``dL = dFᵀ``).
VJP:      ``L̄ = −tril(X (Ḡ + Ḡᵀ) L⁻ᵀ)`` (upper: ``F̄ = L̄ᵀ``); the stable form of
          ``tril((M + Mᵀ) L)``, ``M = −X Ḡ X``.""",
        grid={"lower": (True, False)},
        reference=_potri_reference,
        breaks=_singular_factor,
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
    el, dl = _as_lower(xp, f, lower), _as_lower(xp, df, lower)
    # The derivative of the two solves Y = L⁻¹ B, X = L⁻ᵀ Y:
    # dY = L⁻¹ (dB − dL Y),  dX = L⁻ᵀ (dY − dLᵀ X); only n × k intermediates.
    y = kern.solve_triangular(el, b, lower=True)
    dy = kern.solve_triangular(el, db - xp.matmul(dl, y), lower=True)
    return (kern.solve_triangular(el, dy - xp.matmul(mT(xp, dl), x), lower=True, transpose=True),)


def _potrs_vjp(xp, kern, inputs, outputs, cotangents, *, lower):
    (f, b), (x,), (g,) = inputs, outputs, cotangents
    el = _as_lower(xp, f, lower)
    # The adjoint of the JVP: Z = L⁻¹ Ḡ, B̄ = L⁻ᵀ Z, L̄ = −(B̄ Yᵀ + X Zᵀ) (masked by the caller)
    y = kern.solve_triangular(el, b, lower=True)
    z = kern.solve_triangular(el, g, lower=True)
    gb = kern.solve_triangular(el, z, lower=True, transpose=True)
    gl = -(xp.matmul(gb, mT(xp, y)) + xp.matmul(x, mT(xp, z)))
    return _as_lower(xp, gl, lower), gb


def _potrs_check(shapes, params):
    f, b = shapes
    if b[0] != f[0]:
        return f"F is {f[0]}x{f[1]} but B {tuple(b)} has {b[0]} rows"
    return None


def _potrs_reference(f, b, *, lower):
    import numpy as np

    a = _spd_from_factor(f, lower)
    return (np.linalg.solve(a, b) if a.shape[0] else b,)


potrs = register(
    Operator(
        name="potrs",
        args=(Arg("F", dims=("n", "n"), structure="triangular", domain="factor"), Arg("B", dims=("n", "k"))),
        outputs=(Output("out", dims=("n", "k")),),
        params={"lower": True},
        forward=_potrs_forward,
        jvp=_potrs_jvp,
        vjp=_potrs_vjp,
        failure="the Cholesky factor is singular (zero on its diagonal)",
        summary="Solve ``A X = B`` given the Cholesky factor ``F`` of ``A``.",
        math="""\
Forward:  ``X = A⁻¹ B``,  ``A = F Fᵀ`` (``lower``) or ``Fᵀ F``: two triangular solves.
JVP:      ``Y = L⁻¹ B``:  ``dX = L⁻ᵀ (L⁻¹ (dB − dL Y) − dLᵀ X)`` ``= A⁻¹ (dB − dA X)``
          (``L = F``; upper: ``L = Fᵀ``, ``dL = dFᵀ``); ``O(n² k)``, no ``n × n`` product.
VJP:      ``Z = L⁻¹ Ḡ``,  ``B̄ = L⁻ᵀ Z = A⁻¹ Ḡ``,  ``L̄ = −tril(B̄ Yᵀ + X Zᵀ)`` (upper:
          ``F̄ = L̄ᵀ``); the stable form of ``tril((M + Mᵀ) L)``, ``M = −B̄ Xᵀ``.""",
        grid={"lower": (True, False)},
        reference=_potrs_reference,
        breaks=_singular_factor,
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


def _sumlogdiag_reference(a):
    import numpy as np

    return (np.sum(np.log(np.diag(a))),)


sumlogdiag = register(
    Operator(
        name="sumlogdiag",
        args=(Arg("A", dims=("n", "n"), domain="positive_diagonal"),),
        outputs=(Output("out", dims=()),),
        forward=_sumlogdiag_forward,
        jvp=_sumlogdiag_jvp,
        vjp=_sumlogdiag_vjp,
        summary="Sum of the logarithms of the diagonal, ``Σ log A_ii``.",
        math="""\
Forward:  ``s = Σᵢ log A_ii`` (for the Cholesky factor ``L`` of ``A``: ``log det A = 2 s``).
JVP:      ``ds = Σᵢ dA_ii / A_ii``.
VJP:      ``Ā = diag(ḡ / A_ii)``.""",
        reference=_sumlogdiag_reference,
    )
)
