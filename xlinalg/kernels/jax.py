"""JAX kernels: ``jax.lax.linalg`` primitives and ``jax.numpy.linalg``.

Every kernel is a JAX primitive (or a composition of them) that JAX can differentiate,
transpose and batch, so the core's JVP rules evaluated on these kernels can be linearized and
transposed by JAX: reverse mode, higher orders and ``vmap`` follow from the forward-mode rules.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from .portable import Kernels


class JaxKernels(Kernels):
    """Kernels over ``jax.numpy``: failures come out NaN/inf, nothing raises. JAX has no
    linear-algebra error class of its own (``error_base`` stays ``None``)."""

    name = "jax"

    def cholesky(self, a):
        # The core passes a symmetric matrix already (read from one triangle); the primitive
        # reads the lower triangle and fills failing batch entries with NaN.
        return lax.linalg.cholesky(a, symmetrize_input=False)

    def eigh(self, a):
        v, w = lax.linalg.eigh(a, lower=True, symmetrize_input=False)
        return w, v

    def qr(self, a):
        q, r = lax.linalg.qr(a, full_matrices=False)
        return q, r

    def inv(self, a):
        return jnp.linalg.inv(a)

    def det(self, a):
        return jnp.linalg.det(a)

    def slogdet(self, a):
        sign, logabsdet = jnp.linalg.slogdet(a)
        return sign, logabsdet

    def solve_triangular(self, a, b, *, lower, transpose=False, left=True):
        batch = jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if a.shape[:-2] != batch:
            a = jnp.broadcast_to(a, (*batch, *a.shape[-2:]))
        if b.shape[:-2] != batch:
            b = jnp.broadcast_to(b, (*batch, *b.shape[-2:]))
        return lax.linalg.triangular_solve(a, b, left_side=left, lower=lower, transpose_a=transpose)

    def is_traced(self, x) -> bool:
        return isinstance(x, jax.core.Tracer)
