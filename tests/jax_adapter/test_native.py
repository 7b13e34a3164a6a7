"""Agreement with JAX's own linear algebra where the conventions coincide, and the pinned-down
difference where they do not (docs/jax.md, "Differences from JAX's own functions")."""

from __future__ import annotations

import numpy as np
import pytest

from tests.jax_adapter.jax_cases import JAX_INSTALLED

if not JAX_INSTALLED:
    pytest.skip("jax is not installed", allow_module_level=True)
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax import lax

import xlinalg.jax as xj
from tests.jax_adapter.jax_cases import spd

RTOL = 1e-11


def _close(a, b, rtol=RTOL):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=rtol)


def _rng():
    return np.random.default_rng(20)


def _agree(ours, native, args, rng, argnums=0, hessian=False):
    """Equal values, gradients of a random weighted sum, and JVPs along random tangents."""
    _close(ours(*args), native(*args))
    w = jnp.asarray(rng.standard_normal(np.shape(native(*args))))
    loss = lambda f: lambda *a: jnp.sum(w * f(*a))  # noqa: E731
    _close(jax.grad(loss(ours), argnums)(*args), jax.grad(loss(native), argnums)(*args))
    tangents = tuple(jnp.asarray(rng.standard_normal(x.shape)) for x in args)
    _close(jax.jvp(ours, args, tangents)[1], jax.jvp(native, args, tangents)[1])
    if hessian:
        h = lambda f: jax.jit(jax.hessian(loss(f)))  # noqa: E731
        _close(h(ours)(*args), h(native)(*args), rtol=1e-9)


@pytest.mark.parametrize("lower", [True, False])
def test_potrf_equals_jnp_cholesky_which_symmetrizes(lower):
    rng = _rng()
    a = jnp.asarray(spd(rng, (2, 4, 4)))
    _agree(lambda a: xj.potrf(a, lower=lower), lambda a: jnp.linalg.cholesky(a, upper=not lower), (a,), rng, hessian=lower)


def test_potrf_gradient_is_lax_cholesky_gradient_symmetrized():
    """``lax.linalg.cholesky(symmetrize_input=False)`` (what ``jnp.linalg.cholesky`` calls after
    symmetrizing) reads the lower triangle like ``potrf`` but returns the unsymmetric gradient
    ``L⁻ᵀ Φ(Lᵀ L̄) L⁻¹``; the conventions want the symmetric one. Symmetrizing it gives ours."""
    rng = _rng()
    a = jnp.asarray(spd(rng, (4, 4)))
    w = jnp.asarray(rng.standard_normal((4, 4)))
    ours = jax.grad(lambda a: jnp.sum(w * xj.potrf(a)))(a)
    raw = jax.grad(lambda a: jnp.sum(w * lax.linalg.cholesky(a, symmetrize_input=False)))(a)
    assert float(jnp.max(jnp.abs(raw - raw.T))) > 1e-2  # JAX's is not symmetric ...
    _close(ours, ours.T, rtol=1e-14)  # ... ours is
    _close(ours, (raw + raw.T) / 2)  # and it is JAX's, symmetrized
    # the values: potrf reads one triangle, jnp.linalg.cholesky averages both
    junk = a + 0.1 * jnp.triu(jnp.asarray(rng.standard_normal((4, 4))), 1)
    _close(xj.potrf(junk), lax.linalg.cholesky(junk, symmetrize_input=False))
    _close(xj.potrf(junk), jnp.linalg.cholesky(jnp.tril(junk) + jnp.tril(junk, -1).T))
    assert float(jnp.max(jnp.abs(xj.potrf(junk) - jnp.linalg.cholesky(junk)))) > 1e-3


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
def test_trsm_equals_scipy_solve_triangular(lower, transpose):
    rng = _rng()
    t = rng.standard_normal((2, 4, 4)) + 3 * np.eye(4)
    a = jnp.asarray(np.tril(t) if lower else np.triu(t))
    b = jnp.asarray(rng.standard_normal((2, 4, 3)))
    ours = lambda a, b: xj.trsm(a, b, lower=lower, transpose=transpose, alpha=1.0)  # noqa: E731
    native = lambda a, b: jsl.solve_triangular(a, b, lower=lower, trans=int(transpose))  # noqa: E731
    _agree(ours, native, (a, b), rng, argnums=(0, 1))


def test_syevd_equals_jnp_eigh_up_to_eigenvector_signs():
    rng = _rng()
    a = jnp.asarray(spd(rng, (2, 4, 4)))
    u, lam = xj.syevd(a)
    lam_j, v_j = jnp.linalg.eigh(a)
    _close(lam, lam_j)
    _close(jnp.abs(u @ v_j), jnp.broadcast_to(jnp.eye(4), (2, 4, 4)))  # same vectors up to sign
    # losses that do not depend on the signs: eigenvalues, and a function of the projectors
    w = jnp.asarray(rng.standard_normal((4, 4)))
    loss_vals = lambda f: lambda a: jnp.sum(jnp.sin(f(a)))  # noqa: E731
    loss_proj = lambda f: lambda a: jnp.sum(w * (f(a)[1] * jnp.cos(f(a)[0])[..., None, :]) @ f(a)[1].mT)  # noqa: E731
    ours_vals, native_vals = (lambda a: xj.syevd(a)[1]), (lambda a: jnp.linalg.eigh(a)[0])
    ours_pair = lambda a: (xj.syevd(a)[1], xj.syevd(a)[0].mT)  # noqa: E731
    for ours, native in ((loss_vals(ours_vals), loss_vals(native_vals)), (loss_proj(ours_pair), loss_proj(jnp.linalg.eigh))):
        _close(ours(a), native(a))
        _close(jax.grad(ours)(a), jax.grad(native)(a), rtol=1e-10)
        t = jnp.asarray(rng.standard_normal(a.shape))
        _close(jax.jvp(ours, (a,), (t,))[1], jax.jvp(native, (a,), (t,))[1], rtol=1e-10)


def test_syevd_differs_from_jnp_eigh_at_degenerate_eigenvalues():
    """The conventions (docs/conventions.md): at A = diag(1, 1, 2) JAX's eigh gradient of sum(W ∘ V exp(Λ) Vᵀ) is NaN;
    syevd's is finite (degenerate pairs drop out of the eigenvector term)."""
    a = jnp.diag(jnp.array([1.0, 1.0, 2.0]))
    w = jnp.asarray(_rng().standard_normal((3, 3)))
    loss_native = lambda a: jnp.sum(w * (jnp.linalg.eigh(a)[1] * jnp.exp(jnp.linalg.eigh(a)[0])) @ jnp.linalg.eigh(a)[1].T)  # noqa: E731
    loss_ours = lambda a: jnp.sum(w * (xj.eigh(a)[1] * jnp.exp(xj.eigh(a)[0])) @ xj.eigh(a)[1].T)  # noqa: E731
    _close(loss_ours(a), loss_native(a))
    assert bool(jnp.any(jnp.isnan(jax.grad(loss_native)(a))))
    assert bool(jnp.all(jnp.isfinite(jax.grad(loss_ours)(a))))


def test_inverse_det_slogdet_equal_jnp_linalg():
    rng = _rng()
    a = jnp.asarray(rng.standard_normal((2, 4, 4)) + 3 * np.eye(4))
    _agree(xj.inverse, jnp.linalg.inv, (a,), rng, hessian=True)
    _agree(xj.det, jnp.linalg.det, (a,), rng, hessian=True)
    _agree(lambda a: xj.slogdet(a)[1], lambda a: jnp.linalg.slogdet(a)[1], (a,), rng, hessian=True)
    neg = a.at[0, 0].multiply(-1.0)
    _close(xj.slogdet(neg)[0], jnp.linalg.slogdet(neg)[0], rtol=0)
