"""``jax-native`` and ``jax-native-jit``: JAX's own functions in place of xlinalg's operators,
differentiated by JAX's transformations exactly as :mod:`.jax` differentiates the adapter
(``jax-native`` calls eagerly and differentiates through compiled programs;
``jax-native-jit`` runs everything under ``jax.jit``).

Each operator maps to the function ``docs/mapping.md`` names (``jnp.linalg.cholesky``,
``jax.scipy.linalg.cho_solve``, ``jax.scipy.linalg.solve_triangular``, ``jnp.linalg.eigh``,
``jnp.linalg.qr`` of the transpose, matrix products for gemm/gemm2/syrk and ``jnp.tril @``
for trmm, ``tril_indices`` for the packed triangles) with layout conversions only
(:mod:`.native`). ``makediag`` has no JAX function (``jnp.diag`` takes one vector) and is
declared unsupported.

Declared: JAX's error contract — ``TypeError`` or ``ValueError`` for bad shapes (JAX raises
either), numerical failures as NaN (JAX's functions never raise on values) — and the known
failures in ``known_failures/jax-native.toml`` (``jax-native-jit.toml`` under ``jax.jit``).
"""

from __future__ import annotations

from pathlib import Path

from ..declarations import ErrorContract
from .jax import JaxBackend
from .native import packed_indices, packed_order

KNOWN_FAILURES = Path(__file__).parent / "known_failures"


def _jnp():
    import jax.numpy as jnp

    return jnp


def _jsl():
    import jax.scipy.linalg as jsl

    return jsl


def _mT(x):
    return _jnp().swapaxes(x, -1, -2)


def potrf(A, *, lower=True):
    return (_jnp().linalg.cholesky(A, upper=not lower),)


def potri(F, *, lower=True):
    jnp = _jnp()
    eye = jnp.broadcast_to(jnp.eye(F.shape[-1], dtype=F.dtype), F.shape)
    return (_jsl().cho_solve((F, lower), eye),)


def potrs(F, B, *, lower=True):
    return (_jsl().cho_solve((F, lower), B),)


def trsm(A, B, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    solve = _jsl().solve_triangular
    if rightside:  # X op(A) = B  is  op(A)ᵀ Xᵀ = Bᵀ
        return (alpha * _mT(solve(A, _mT(B), trans=0 if transpose else 1, lower=lower)),)
    return (alpha * solve(A, B, trans=1 if transpose else 0, lower=lower),)


def trmm(A, B, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    jnp = _jnp()
    t = jnp.tril(A) if lower else jnp.triu(A)
    t = _mT(t) if transpose else t
    return (alpha * (B @ t if rightside else t @ B),)


def syrk(A, *, transpose=False, alpha=1.0):
    return (alpha * (_mT(A) @ A if transpose else A @ _mT(A)),)


def gemm2(A, B, *, transpose_a=False, transpose_b=False, alpha=1.0):
    return (alpha * ((_mT(A) if transpose_a else A) @ (_mT(B) if transpose_b else B)),)


def gemm(A, B, C, *, transpose_a=False, transpose_b=False, alpha=1.0, beta=1.0):
    return (gemm2(A, B, transpose_a=transpose_a, transpose_b=transpose_b, alpha=alpha)[0] + beta * C,)


def sumlogdiag(A):
    jnp = _jnp()
    return (jnp.log(jnp.diagonal(A, 0, -2, -1)).sum(-1),)


def syevd(A):
    w, v = _jnp().linalg.eigh(A)
    return _mT(v), w  # eigenvectors in rows


def inverse(A):
    return (_jnp().linalg.inv(A),)


def det(A):
    return (_jnp().linalg.det(A),)


def slogdet(A):
    sign, logabsdet = _jnp().linalg.slogdet(A)
    return sign, logabsdet


def extractdiag(A, *, offset=0):
    return (_jnp().diagonal(A, offset, -2, -1),)


def extracttrian(A, *, offset=0, lower=True):
    rows, cols, transposed = packed_indices(A.shape[-1], offset, lower)
    return ((_mT(A) if transposed else A)[..., rows, cols],)


def maketrian(a, *, offset=0, lower=True):
    n = packed_order(a.shape[-1], offset)
    rows, cols, transposed = packed_indices(n, offset, lower)
    out = _jnp().zeros((*a.shape[:-1], n, n), a.dtype).at[..., rows, cols].set(a)
    return (_mT(out) if transposed else out,)


def gelqf(A):
    q, r = _jnp().linalg.qr(_mT(A))  # A = L Q is Aᵀ = Qᵀ Lᵀ
    return _mT(q), _mT(r)


FUNCTIONS = {
    f.__name__: f for f in (potrf, potri, potrs, trsm, trmm, syrk, gemm2, gemm, sumlogdiag, syevd, inverse, det, slogdet, extractdiag, extracttrian, maketrian, gelqf)
}

#: JAX's error contract: shape errors are TypeError or ValueError, unsupported dtypes (float16 in
#: LAPACK) NotImplementedError, numerical failures NaN
CONTRACT = ErrorContract(value_error=(ValueError, TypeError, IndexError), type_error=(TypeError, NotImplementedError), failures="nan", index="none", messages=False)


class JaxNativeBackend(JaxBackend):
    """JAX's functions (:data:`FUNCTIONS`) under JAX's transformations."""

    unsupported = {"makediag": "JAX has no batched diagonal embedding (jnp.diag takes one vector)"}
    error_contract = CONTRACT

    def __init__(self, jit: bool = False):
        super().__init__(jit=jit, name="jax-native-jit" if jit else "jax-native")
        self.capabilities = self.capabilities - {"errors"}
        jitted = ", under jax.jit" if jit else " (the call eager, the derivatives under jax.jit)"
        self.sources = {
            **self.sources,
            "vjp": "jax.vjp" + jitted,
            "jvp": "jax.jvp" + jitted,
            "second_order": "jax.grad of a jax.vjp pullback" + jitted,
            "vmap": "jax.vmap" + jitted,
            "errors": "none: JAX's functions return NaN",
        }
        self.known_failures = KNOWN_FAILURES / f"{self.name}.toml"
        self._cache, self._bundles = {}, {}  # compiled programs of these functions, not the adapter's

    def _fn(self, op, params):
        f = FUNCTIONS[op]
        return lambda *xs: f(*xs, **params)


BACKEND = JaxNativeBackend()
JIT_BACKEND = JaxNativeBackend(jit=True)
