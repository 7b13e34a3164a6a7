"""A Gaussian-process negative log likelihood written with xlinalg.jax (potrf, potrs, trsm,
sumlogdiag, syrk, gemm2) under jax.grad and jax.jit, against the same model in plain JAX."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.jax_adapter.jax_cases import JAX_INSTALLED

if not JAX_INSTALLED:
    pytest.skip("jax is not installed", allow_module_level=True)
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

import xlinalg
import xlinalg.jax as xj


def _data():
    rng = np.random.default_rng(30)
    x = jnp.asarray(rng.uniform(-2, 2, (12, 2)))
    y = jnp.asarray(rng.standard_normal((12, 1)))
    return x, y


def _kernel(theta, x, gram):
    """Squared-exponential kernel plus noise; ``gram(Z)`` is ``Z Zᵀ``."""
    log_len, log_var, log_noise = theta[0], theta[1], theta[2]
    z = x / jnp.exp(log_len)
    g = gram(z)
    sq = jnp.diag(g)[:, None] + jnp.diag(g)[None, :] - 2 * g
    return jnp.exp(log_var) * jnp.exp(-0.5 * sq) + (jnp.exp(log_noise) + 1e-6) * jnp.eye(x.shape[0])


def nll_potrs(theta, x, y):
    k = _kernel(theta, x, lambda z: xj.syrk(z))
    el = xj.potrf(k)
    alpha = xj.potrs(el, y)
    fit = xj.gemm2(y, alpha, transpose_a=True, alpha=0.5)[0, 0]
    return fit + xj.sumlogdiag(el) + 0.5 * y.shape[0] * math.log(2 * math.pi)


def nll_trsm(theta, x, y):
    """The same through the public dispatch (xlinalg.<op> on JAX arrays) and trsm."""
    k = _kernel(theta, x, lambda z: xlinalg.gemm2(z, z, transpose_b=True))
    el = xlinalg.potrf(k)
    v = xlinalg.trsm(el, y)
    fit = 0.5 * xlinalg.syrk(v, transpose=True)[0, 0]
    return fit + xlinalg.sumlogdiag(el) + 0.5 * y.shape[0] * math.log(2 * math.pi)


def nll_native(theta, x, y):
    k = _kernel(theta, x, lambda z: z @ z.T)
    el = jnp.linalg.cholesky(k)
    v = jsl.solve_triangular(el, y, lower=True)
    return 0.5 * jnp.sum(v**2) + jnp.sum(jnp.log(jnp.diag(el))) + 0.5 * y.shape[0] * math.log(2 * math.pi)


@pytest.mark.parametrize("nll", [nll_potrs, nll_trsm])
def test_gp_value_and_grad_under_jit(nll):
    x, y = _data()
    theta = jnp.array([0.1, 0.3, -1.0])
    expected_value, expected_grad = jax.jit(jax.value_and_grad(nll_native))(theta, x, y)
    # eagerly once (the first eager call compiles every small op: slow), then under jit
    for fn in ((jax.value_and_grad(nll),) if nll is nll_trsm else ()) + (jax.jit(jax.value_and_grad(nll)),):
        value, grad = fn(theta, x, y)
        np.testing.assert_allclose(value, expected_value, rtol=1e-11)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-11)
    h = jax.jit(jax.hessian(nll))(theta, x, y)
    np.testing.assert_allclose(h, jax.jit(jax.hessian(nll_native))(theta, x, y), rtol=1e-8, atol=1e-10)
    # gradient with respect to the data too, batched over several outputs y with vmap
    ys = jnp.stack([y, 2 * y, -y])
    gy = jax.jit(jax.vmap(jax.grad(nll, argnums=2), in_axes=(None, None, 0)))(theta, x, ys)
    expected_gy = jax.jit(jax.vmap(jax.grad(nll_native, argnums=2), in_axes=(None, None, 0)))(theta, x, ys)
    np.testing.assert_allclose(gy, expected_gy, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gy[0], jax.grad(nll_native, argnums=2)(theta, x, y), rtol=1e-9, atol=1e-12)
