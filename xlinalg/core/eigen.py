"""Symmetric eigendecomposition: syevd.

``A = Uᵀ diag(λ) U`` with the rows of ``U`` the eigenvectors (MXNet's layout), ``λ``
ascending, each row's sign fixed so its largest-magnitude entry is positive (ties: the smaller
index). With ``V = Uᵀ`` (columns) the derivatives are those of Giles (2008):

``dλ = diag(Vᵀ dA V)``,  ``dV = V (F ∘ (Vᵀ dA V))``,  ``F_ij = 1/(λ_j − λ_i)`` for ``i ≠ j``.

Degenerate pairs: ``F_ij = 0`` where ``|λ_j − λ_i| ≤ DEGENERACY_RTOL · n · ε · max|λ|``
(``ε`` the dtype's machine epsilon). The gradient then never becomes NaN or inf; it is exact
for losses depending on eigenvalues and on whole eigenspaces, not on a basis inside one.
"""

from __future__ import annotations

from .matrix import diag_embed, diagonal, mT
from .operator import Arg, Operator, Output, register

#: Pairs of eigenvalues closer than this many ``n · ε · max|λ|`` count as degenerate.
DEGENERACY_RTOL = 16.0


def fix_signs(xp, v):
    """Flip each column of ``v`` so its largest-magnitude entry is positive (first on ties)."""
    n = v.shape[-2]
    if n == 0:
        return v
    idx = xp.argmax(xp.abs(v), axis=-2)  # first occurrence on ties
    rows = xp.arange(n, device=_device(v))
    pick = xp.astype(rows[:, None] == idx[..., None, :], v.dtype)
    sign = 1.0 - 2.0 * xp.astype(xp.sum(v * pick, axis=-2) < 0, v.dtype)
    return v * sign[..., None, :]


def gap_inverse(xp, w):
    """``F_ij = 1/(λ_j − λ_i)`` off the diagonal, 0 on it and for degenerate pairs."""
    n = w.shape[-1]
    diff = w[..., None, :] - w[..., :, None]
    eps = xp.finfo(w.dtype).eps
    scale = xp.max(xp.abs(w), axis=-1, keepdims=True)[..., None] if n else 0.0
    degenerate = xp.abs(diff) <= DEGENERACY_RTOL * max(n, 1) * eps * scale
    # 1/inf = 0, and no NaN in any derivative of it (unlike 1/diff masked afterwards)
    return 1.0 / xp.where(degenerate, xp.inf, diff)


def _forward(xp, kern, a):
    w, v = kern.eigh(a)
    return mT(xp, fix_signs(xp, v)), w


def _jvp(xp, kern, inputs, outputs, tangents):
    (u, w), (da,) = outputs, tangents
    v = mT(xp, u)
    s = xp.matmul(u, xp.matmul(da, v))  # Vᵀ dA V
    dv = xp.matmul(v, gap_inverse(xp, w) * s)
    return mT(xp, dv), diagonal(xp, s)


def _vjp(xp, kern, inputs, outputs, cotangents):
    (u, w), (gu, gw) = outputs, cotangents
    v = mT(xp, u)
    inner = diag_embed(xp, gw) + gap_inverse(xp, w) * xp.matmul(u, mT(xp, gu))  # Vᵀ V̄
    return (xp.matmul(v, xp.matmul(inner, u)),)


def _device(x):
    import array_api_compat

    return array_api_compat.device(x)


syevd = register(
    Operator(
        name="syevd",
        args=(Arg("A", square=True, structure="symmetric"),),
        outputs=(Output("U"), Output("lam", ndim=1)),
        forward=_forward,
        jvp=_jvp,
        vjp=_vjp,
        summary="Symmetric eigendecomposition ``A = Uᵀ diag(lam) U`` (rows of ``U``).",
        math="""\
Forward:  ``A = Uᵀ diag(λ) U``; rows of ``U`` orthonormal eigenvectors, ``λ`` ascending,
          sign: each row's largest-magnitude entry positive.
JVP:      ``V = Uᵀ``, ``S = Vᵀ dA V``: ``dλ = diag(S)``, ``dU = (V (F ∘ S))ᵀ``,
          ``F_ij = 1/(λ_j − λ_i)`` (0 on the diagonal and for degenerate pairs).
VJP:      ``Ā = sym(V (diag(λ̄) + F ∘ (U Ūᵀ)) U)``.""",
    )
)
