"""The conventions (docs/conventions.md) that hold for every operator, checked on the libraries
without autograd (NumPy, array-api-strict) through the public functions and vjp/jvp."""

from __future__ import annotations

import numpy as np
import pytest

import xlinalg
from tests.cases import example, spd, to_numpy

OPS = xlinalg.OPERATORS


def run_all(xp, name, arrays, params):
    """Forward, pullback of ones and pushforward of ones, as NumPy."""
    arrays = tuple(xp.asarray(a) for a in arrays)
    out, pullback = xlinalg.vjp(name, *arrays, **params)
    outs = out if isinstance(out, tuple) else (out,)
    cts = tuple(xp.ones_like(y) for y in outs)
    grads = pullback(cts if isinstance(out, tuple) else cts[0])
    _, tangents = xlinalg.jvp(name, arrays, tuple(xp.ones_like(a) for a in arrays), **params)
    tangents = tangents if isinstance(tangents, tuple) else (tangents,)
    return [to_numpy(y) for y in outs], [to_numpy(g) for g in grads], [to_numpy(t) for t in tangents]


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("batch,n", [((0,), 3), ((2,), 0), ((0, 2), 0)])
def test_empty_batches_and_empty_matrices(xp, rng, name, batch, n):
    arrays, params = example(name, rng, batch, n)
    outs, grads, tangents = run_all(xp, name, arrays, params)
    for y, t in zip(outs, tangents):
        assert y.shape[: len(batch)] == batch and t.shape == y.shape
    for g, a in zip(grads, arrays):
        assert g.shape == a.shape


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept(xp, rng, name, dtype):
    arrays, params = example(name, rng, (2,), 4, dtype)
    outs, grads, tangents = run_all(xp, name, arrays, params)
    assert {str(v.dtype) for v in (*outs, *grads, *tangents)} == {dtype}


@pytest.mark.parametrize("name", OPS)
def test_inputs_are_not_modified(xp, rng, name):
    arrays, params = example(name, rng, (2,), 4)
    inputs = tuple(xp.asarray(a) for a in arrays)
    out, pullback = xlinalg.vjp(name, *inputs, **params)
    pullback(tuple(xp.ones_like(y) for y in out) if isinstance(out, tuple) else xp.ones_like(out))
    xlinalg.jvp(name, inputs, tuple(xp.ones_like(a) for a in inputs), **params)
    for before, after in zip(arrays, inputs):
        np.testing.assert_array_equal(to_numpy(after), before)


@pytest.mark.parametrize("lower", [True, False])
def test_symmetric_input_reads_one_triangle_and_gets_symmetric_gradient(xp, rng, lower):
    a = spd(rng, (3, 4, 4))
    garbage = a + 100.0 * (np.triu(np.ones((4, 4)), 1) if lower else np.tril(np.ones((4, 4)), -1))
    ref, got = xlinalg.potrf(xp.asarray(a), lower=lower), xlinalg.potrf(xp.asarray(garbage), lower=lower)
    np.testing.assert_array_equal(to_numpy(ref), to_numpy(got))
    _, pullback = xlinalg.vjp("potrf", xp.asarray(garbage), lower=lower)
    (g,) = pullback(xp.asarray(rng.standard_normal((3, 4, 4))))
    g = to_numpy(g)
    np.testing.assert_allclose(g, np.swapaxes(g, -1, -2), rtol=0, atol=1e-14)


@pytest.mark.parametrize("lower", [True, False])
def test_triangular_input_reads_one_triangle_and_gets_masked_gradient(xp, rng, lower):
    a = np.tril(rng.standard_normal((4, 4))) + 3 * np.eye(4)
    a = a if lower else a.T
    other = np.triu(np.ones((4, 4)), 1) if lower else np.tril(np.ones((4, 4)), -1)
    b = rng.standard_normal((4, 2))
    ref = xlinalg.trsm(xp.asarray(a), xp.asarray(b), lower=lower)
    got = xlinalg.trsm(xp.asarray(a + 7.0 * other), xp.asarray(b), lower=lower)
    np.testing.assert_array_equal(to_numpy(ref), to_numpy(got))
    _, pullback = xlinalg.vjp("trsm", xp.asarray(a + 7.0 * other), xp.asarray(b), lower=lower)
    ga, _ = pullback(xp.asarray(rng.standard_normal((4, 2))))
    assert np.all(to_numpy(ga)[other == 1] == 0.0)


def test_broadcast_gradients_are_summed_back(xp, rng):
    a, b = rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((1, 3, 4, 2))
    g = rng.standard_normal((2, 3, 3, 2))
    out, pullback = xlinalg.vjp("gemm2", xp.asarray(a), xp.asarray(b), alpha=2.0)
    ga, gb = (to_numpy(v) for v in pullback(xp.asarray(g)))
    assert to_numpy(out).shape == (2, 3, 3, 2) and ga.shape == a.shape and gb.shape == b.shape
    np.testing.assert_allclose(ga, 2.0 * np.sum(g @ np.swapaxes(b, -1, -2), axis=1, keepdims=True), rtol=1e-13)
    np.testing.assert_allclose(gb, 2.0 * np.sum(np.swapaxes(a, -1, -2) @ g, axis=0, keepdims=True), rtol=1e-13)


def _rotated(rng, eigenvalues):
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues),) * 2))
    return q @ np.diag(eigenvalues) @ q.T


def test_syevd_gradient_is_finite_at_degenerate_eigenvalues(xp, rng):
    """At A = diag(1, 1, 2), torch and JAX give NaN for sum(W * U^T exp(Λ) U); xlinalg not."""
    w = rng.standard_normal((3, 3))
    (u, lam), pullback = xlinalg.vjp("syevd", xp.asarray(np.diag([1.0, 1.0, 2.0])))
    u, lam = to_numpy(u), to_numpy(lam)
    # d/dU and d/dlam of sum(W * Uᵀ diag(exp λ) U)
    ws = w + w.T
    gu = np.diag(np.exp(lam)) @ u @ ws
    glam = np.einsum("ki,kj,ij->k", u, u, w) * np.exp(lam)
    (ga,) = pullback((xp.asarray(gu), xp.asarray(glam)))
    ga = to_numpy(ga)
    assert np.all(np.isfinite(ga)) and np.abs(ga).max() < 1e3 * np.abs(w).max()


def test_syevd_gradient_is_exact_for_eigenspace_losses(xp, rng):
    """A loss of a whole eigenspace (its projector) and of the eigenvalues (symmetric in a
    degenerate pair, else it is not differentiable): the gradient at a degenerate matrix
    equals finite differences, although the basis inside the eigenspace is arbitrary."""
    a = _rotated(rng, [1.0, 1.0, 2.0])
    w = rng.standard_normal((3, 3))
    c = np.array([0.3, 0.3, -1.2])

    def loss(m):
        u, lam = (to_numpy(v) for v in xlinalg.syevd(xp.asarray(m)))
        projector = u[:2].T @ u[:2]  # the degenerate eigenspace
        return np.sum(w * projector) + c @ lam

    (u, lam), pullback = xlinalg.vjp("syevd", xp.asarray(a))
    u = to_numpy(u)
    gp = w + w.T  # d loss / d projector, symmetrized
    gu = np.zeros((3, 3))
    gu[:2] = u[:2] @ gp
    (ga,) = pullback((xp.asarray(gu), xp.asarray(c)))
    v = rng.standard_normal((3, 3))
    v = v + v.T
    eps = 1e-6
    fd = (loss(a + eps * v) - loss(a - eps * v)) / (2 * eps)
    assert abs(np.sum(to_numpy(ga) * v) - fd) < 1e-7


def test_syevd_sign_and_order(xp, rng):
    a = spd(rng, (5, 6, 6))
    u, lam = (to_numpy(v) for v in xlinalg.syevd(xp.asarray(a)))
    assert np.all(np.diff(lam, axis=-1) > 0)
    first_max = np.argmax(np.abs(u), axis=-1)
    assert np.all(np.take_along_axis(u, first_max[..., None], axis=-1) > 0)
    np.testing.assert_allclose(np.swapaxes(u, -1, -2) @ (lam[..., None] * u), a, atol=1e-12)


def test_gelqf_is_the_unique_factorization(xp, rng):
    a = rng.standard_normal((4, 3, 5))
    q, el = (to_numpy(v) for v in xlinalg.gelqf(xp.asarray(a)))
    assert np.all(np.diagonal(el, axis1=-2, axis2=-1) >= 0)
    np.testing.assert_array_equal(el, np.tril(el))
    np.testing.assert_allclose(el @ q, a, atol=1e-13)
    np.testing.assert_allclose(q @ np.swapaxes(q, -1, -2), np.broadcast_to(np.eye(3), (4, 3, 3)), atol=1e-13)
