"""Derivatives of every operator through the JAX adapter: ``check_grads`` (second order, both
modes) for every parameter combination, and JAX's jvp/vjp against the core rules."""

from __future__ import annotations

import numpy as np
import pytest

from tests.jax_adapter.jax_cases import JAX_INSTALLED

if not JAX_INSTALLED:
    pytest.skip("jax is not installed", allow_module_level=True)
import jax
import jax.numpy as jnp
from jax.test_util import check_grads

import xlinalg
import xlinalg.jax as xj
from tests.jax_adapter.jax_cases import as_tuple, case_id, grid, inputs, structured, weights

GRID = grid()


@pytest.mark.parametrize("name, params", GRID, ids=[case_id(*c) for c in GRID])
def test_check_grads_second_order(name, params):
    rng = np.random.default_rng(0)
    arrays = [jnp.asarray(x) for x in inputs(name, params, rng, n=3)]
    f = structured(name, params, getattr(xj, name))
    check_grads(f, arrays, order=2, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)


DEFAULT = sorted(xlinalg.OPERATORS)


@pytest.mark.parametrize("name", DEFAULT)
def test_jvp_and_vjp_equal_core_rules(name):
    """JAX's forward mode runs the core JVP rule; its reverse mode is JAX's transpose of that
    rule, which must equal the core's own VJP rule (run on NumPy), including the sum over a
    broadcast batch axis."""
    rng = np.random.default_rng(1)
    params = {}
    arrays = list(inputs(name, params, rng, batch=(2,), n=4))
    if len(arrays) > 1:  # the first argument unbatched: broadcast against the others
        arrays[0] = arrays[0][0]
    tangents = [rng.standard_normal(x.shape) for x in arrays]
    out, jax_t = jax.jvp(lambda *a: as_tuple(getattr(xj, name)(*a, **params)), tuple(map(jnp.asarray, arrays)), tuple(map(jnp.asarray, tangents)))
    np_out, np_t = xlinalg.jvp(name, arrays, tangents, **params)
    for a, b in zip(out, as_tuple(np_out)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12, atol=1e-12)
    for a, b in zip(jax_t, as_tuple(np_t)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-11, atol=1e-11)

    cts = weights(rng, out)
    _, pullback = jax.vjp(lambda *a: as_tuple(getattr(xj, name)(*a, **params)), *map(jnp.asarray, arrays))
    jax_g = pullback(tuple(map(jnp.asarray, cts)))
    _, np_pullback = xlinalg.vjp(name, *arrays, **params)
    np_g = np_pullback(cts if len(cts) > 1 else cts[0])
    for a, b, x in zip(jax_g, np_g, arrays):
        assert a.shape == x.shape
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-11, atol=1e-11)


def _loss(name, params, w):
    f = structured(name, params, getattr(xj, name))

    def loss(*arrays):
        return sum(jnp.sum(wi * y) for wi, y in zip(w, as_tuple(f(*arrays))))

    return loss


@pytest.mark.parametrize("name", ["potrf", "syevd", "trsm", "inverse", "slogdet"])
def test_grad_jacfwd_jacrev_hessian(name):
    rng = np.random.default_rng(2)
    arrays = tuple(jnp.asarray(x) for x in inputs(name, {}, rng, n=3))
    w = tuple(jnp.asarray(v) for v in weights(rng, as_tuple(getattr(xj, name)(*arrays))))
    loss = _loss(name, {}, w)
    x0, rest = arrays[0], arrays[1:]
    f = lambda x: loss(x, *rest)  # noqa: E731
    g = jax.grad(f)(x0)
    np.testing.assert_allclose(jax.jacrev(f)(x0), g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jax.jacfwd(f)(x0), g, rtol=1e-10, atol=1e-12)
    h = jax.hessian(f)(x0)  # forward over reverse
    np.testing.assert_allclose(jax.jacrev(jax.jacfwd(f))(x0), h, rtol=1e-9, atol=1e-9)  # reverse over forward
    hm = np.asarray(h).reshape(x0.size, x0.size)
    np.testing.assert_allclose(hm, hm.T, rtol=1e-9, atol=1e-9)
    # central differences of the gradient along a direction reproduce the Hessian
    d = jnp.asarray(rng.standard_normal(x0.shape))
    eps = 1e-5
    fd = (jax.grad(f)(x0 + eps * d) - jax.grad(f)(x0 - eps * d)) / (2 * eps)
    np.testing.assert_allclose(jnp.tensordot(h, d, axes=d.ndim), fd, rtol=1e-5, atol=1e-6)
    if len(arrays) > 1:  # every argument at once, as a tuple
        grads = jax.grad(loss, argnums=tuple(range(len(arrays))))(*arrays)
        assert [gi.shape for gi in grads] == [x.shape for x in arrays]
        np.testing.assert_allclose(grads[0], g, rtol=1e-12, atol=1e-12)


def test_syevd_degenerate_gradients_are_finite():
    """The conventions (docs/conventions.md): sum(W * V exp(Λ) Vᵀ) at diag(1, 1, 2) — JAX's own eigh gives NaN, ours does
    not, in first and second order."""
    a = jnp.diag(jnp.array([1.0, 1.0, 2.0]))
    w = jnp.asarray(np.random.default_rng(3).standard_normal((3, 3)))

    def loss(a):
        u, lam = xj.syevd(a)
        return jnp.sum(w * (u.mT * jnp.exp(lam)) @ u)

    g = jax.grad(loss)(a)
    assert bool(jnp.all(jnp.isfinite(g)))
    assert bool(jnp.all(jnp.isfinite(jax.hessian(loss)(a))))
    # the eigenvalue part is exact: for W = I the loss is tr(exp(A)) with gradient exp(A)
    g_trace = jax.grad(lambda a: jnp.sum(jnp.exp(xj.syevd(a)[1])))(a)
    np.testing.assert_allclose(g_trace, jnp.diag(jnp.exp(jnp.array([1.0, 1.0, 2.0]))), rtol=1e-12)
