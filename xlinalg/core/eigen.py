"""Symmetric eigendecomposition: syevd.

``A = Uᵀ diag(λ) U`` with the rows of ``U`` the eigenvectors (MXNet's layout), ``λ``
ascending, each row's sign fixed so its largest-magnitude entry is positive (ties: the smaller
index). With ``V = Uᵀ`` (columns) the derivatives are those of Giles (2008):

``dλ = diag(Vᵀ dA V)``,  ``dV = V (F ∘ (Vᵀ dA V))``,  ``F_ij = 1/(λ_j − λ_i)`` for ``i ≠ j``.

Degenerate pairs: ``F_ij = 0`` where ``|λ_j − λ_i| ≤ DEGENERACY_RTOL · ε · max|λ|`` (``ε`` the
dtype's machine epsilon). The gradient then never becomes NaN or inf; it is exact for losses
depending on eigenvalues and on whole eigenspaces, not on a basis inside one.

The threshold is the eigensolver's resolution. A backward-stable solver returns the exact
eigenvalues ``λ̂`` of ``A + E`` with ``‖E‖₂ ≤ c · ε · ‖A‖₂ = c · ε · max|λ|``; by Weyl's
inequality ``|λ̂_i − λ_i| ≤ ‖E‖₂``, so the computed copies of one repeated eigenvalue lie within
``2c · ε · max|λ|`` of each other, and the eigenvectors of a pair that close are not determined
by the data (their error ``‖E‖/gap`` is of order one). Measured for NumPy, PyTorch and JAX
(LAPACK ``syevd``/``syev``), float32 and float64, ``n ≤ 1024``, multiplicities up to ``n/2``:
the spread of exactly repeated eigenvalues stays below ``36 · ε · max|λ|`` and mostly below
``20 · ε · max|λ|``, growing far slower than ``n`` (a worst-case bound ``c ∝ n`` would declare
resolvable pairs degenerate and drop their ``1/(λ_j − λ_i)`` term: in float32 that is a gap of
``6e-5 · max|λ|`` at ``n = 32``). Hence ``2c = 32``: a computed spread just above it only
costs an error of order ``ε · max|λ| / spread`` relative, while any pair resolved by the solver
keeps its term.
"""

from __future__ import annotations

from .matrix import device, diag_embed, diagonal, mT
from .operator import Arg, Operator, Output, register

#: Pairs of eigenvalues closer than this many ``ε · max|λ|`` count as degenerate: twice the
#: eigensolver's backward-error constant (see the module docstring).
DEGENERACY_RTOL = 32.0


def fix_signs(xp, v):
    """Flip each column of ``v`` so its largest-magnitude entry is positive (first on ties)."""
    n = v.shape[-2]
    if n == 0:
        return v
    idx = xp.argmax(xp.abs(v), axis=-2)  # first occurrence on ties
    rows = xp.arange(n, device=device(v))
    pick = xp.astype(rows[:, None] == idx[..., None, :], v.dtype)
    sign = 1.0 - 2.0 * xp.astype(xp.sum(v * pick, axis=-2) < 0, v.dtype)
    return v * sign[..., None, :]


def gap_inverse(xp, w):
    """``F_ij = 1/(λ_j − λ_i)`` off the diagonal, 0 on it and for degenerate pairs
    (``|λ_j − λ_i| ≤ DEGENERACY_RTOL · ε · max|λ|``)."""
    n = w.shape[-1]
    diff = w[..., None, :] - w[..., :, None]
    eps = xp.finfo(w.dtype).eps
    scale = xp.max(xp.abs(w), axis=-1, keepdims=True)[..., None] if n else 0.0
    degenerate = xp.abs(diff) <= DEGENERACY_RTOL * eps * scale
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


def _sign_rule(u):
    """+1/−1 per row of ``u`` making its largest-magnitude entry positive (first on ties)."""
    import numpy as np

    idx = np.argmax(np.abs(u), axis=-1)
    return np.where(np.take_along_axis(u, idx[..., None], -1)[..., 0] < 0, -1.0, 1.0)


def _reference(a):
    import numpy as np
    import scipy.linalg

    s = np.tril(a) + np.tril(a, -1).T
    if s.shape[0] == 0:
        return s, np.zeros(0)
    lam, v = scipy.linalg.eigh(s)
    return v.T * _sign_rule(v.T)[:, None], lam


def _invariants(inputs, outputs, tol):
    """``Uᵀ diag(λ) U = A`` (lower triangle read), ``U Uᵀ = I``, ascending ``λ``, sign rule."""
    import numpy as np

    u, lam = outputs
    if u.size == 0:
        return []
    x = np.asarray(inputs[0], np.float64)
    sym = np.tril(x) + np.swapaxes(np.tril(x, -1), -1, -2)
    scale = np.max(np.abs(sym)) or 1.0
    recon = np.swapaxes(u, -1, -2) @ (lam[..., :, None] * u)
    eye = np.eye(u.shape[-1])
    return [
        (np.max(np.abs(recon - sym)) / scale / tol, "Uᵀ diag(λ) U differs from A"),
        (np.max(np.abs(u @ np.swapaxes(u, -1, -2) - eye)) / tol, "U Uᵀ differs from I"),
        (np.max(np.maximum(-np.diff(lam, axis=-1), 0.0), initial=0.0) / scale / tol, "eigenvalues not ascending"),
        (np.inf if np.any(_sign_rule(u) < 0) else 0.0, "a row of U breaks the sign rule (largest-magnitude entry must be positive)"),
    ]


syevd = register(
    Operator(
        name="syevd",
        args=(Arg("A", dims=("n", "n"), structure="symmetric", domain="spectrum"),),
        outputs=(Output("U", dims=("n", "n")), Output("lam", dims=("n",))),
        forward=_forward,
        jvp=_jvp,
        vjp=_vjp,
        summary="Symmetric eigendecomposition ``A = Uᵀ diag(lam) U`` (rows of ``U``).",
        math="""\
Forward:  ``A = Uᵀ diag(λ) U``; rows of ``U`` orthonormal eigenvectors, ``λ`` ascending,
          sign: each row's largest-magnitude entry positive.
JVP:      ``V = Uᵀ``, ``S = Vᵀ dA V``: ``dλ = diag(S)``, ``dU = (V (F ∘ S))ᵀ``,
          ``F_ij = 1/(λ_j − λ_i)``; 0 on the diagonal and for degenerate pairs,
          ``|λ_j − λ_i| ≤ 32 ε max|λ|`` (twice the eigensolver's backward error ``‖E‖₂``,
          within which computed copies of a repeated eigenvalue fall, by Weyl's inequality).
VJP:      ``Ā = sym(V (diag(λ̄) + F ∘ (U Ūᵀ)) U)``.""",
        reference=_reference,
        invariants=_invariants,
    )
)
