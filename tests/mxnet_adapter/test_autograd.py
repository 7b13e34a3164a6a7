"""Imperative autograd: outputs and input gradients of xlinalg.mxnet equal the core rules
(:func:`xlinalg.vjp` on NumPy), with ``grad_req`` "write" and "add", in float32 and float64;
inputs are never modified."""

from __future__ import annotations

import pytest

from tests.mxnet_adapter import _helpers as h  # skips this module when MXNet is not installed

mx = h.mx

import numpy as np

import xlinalg
import xlinalg.mxnet as la

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
RTOL = {"float64": 1e-12, "float32": 1e-5}


def core_reference(op, arrays, params, heads):
    """Outputs and input cotangents from the core rules on NumPy."""
    outputs, pullback = xlinalg.vjp(op, *arrays, **params)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    cots = [g.reshape(y.shape) for g, y in zip(heads, outputs)]
    grads = pullback(tuple(cots) if len(cots) > 1 else cots[0])
    return outputs, grads


def _cases():
    for op in h.OPERATORS:
        combos = list(h.param_combinations(op))
        for params in (combos[0], combos[-1]) if len(combos) > 1 else combos:
            yield pytest.param(op, params, id=f"{op}-" + "-".join(f"{k}={v}" for k, v in params.items()))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op, params", list(_cases()))
def test_write_matches_core(op, params, dtype, rng):
    arrays = h.inputs(op, params, rng, dtype=dtype)
    originals = [a.copy() for a in arrays]
    outs, grads, heads = h.run(mx, getattr(la, op), arrays, params)
    ref_outs, ref_grads = core_reference(op, arrays, params, heads)
    for a, o in zip(arrays, originals):
        np.testing.assert_array_equal(a, o)
    for y, r in zip(outs, ref_outs):
        assert y.dtype == np.dtype(dtype)
        assert h.rel_err(y, r.reshape(y.shape)) <= RTOL[dtype]
    for g, r, a in zip(grads, ref_grads, arrays):
        assert g.dtype == np.dtype(dtype) and g.shape == a.shape
        assert h.rel_err(g, r) <= RTOL[dtype]


@pytest.mark.parametrize("op", h.OPERATORS)
def test_grad_req_add_accumulates(op, rng):
    """Two backward passes under "add" give twice the "write" gradient, on top of what the
    buffer held (MXNet 1.9.1's own syevd, gelqf and inverse lose it)."""
    params = next(h.param_combinations(op))
    arrays = h.inputs(op, params, rng)
    _, once, heads = h.run(mx, getattr(la, op), arrays, params)
    xs = [h.nd(a, mx, "add") for a in arrays]
    start = [rng.standard_normal(a.shape) for a in arrays]
    for x, s in zip(xs, start):
        x.grad[:] = s
    for _ in range(2):
        with mx.autograd.record():
            outs = h.as_tuple(getattr(la, op)(*xs, **params))
        mx.autograd.backward(list(outs), [mx.nd.array(g, dtype=g.dtype) for g in heads])
    for x, s, g in zip(xs, start, once):
        assert h.rel_err(x.grad.asnumpy(), s + 2 * g) <= 1e-12


def test_only_some_outputs_used(rng):
    """A loss of one output of a multi-output operator: the other gets a zero cotangent."""
    arrays = h.inputs("syevd", {}, rng)
    x = h.nd(arrays[0], mx, "write")
    with mx.autograd.record():
        u, lam = la.syevd(x)
        loss = (lam * lam).sum()
    loss.backward()
    _, ref = core_reference("syevd", arrays, {}, [np.zeros(u.shape), 2 * lam.asnumpy()])
    assert h.rel_err(x.grad.asnumpy(), ref[0]) <= 1e-12


def test_not_recording_returns_plain_arrays(rng):
    arrays = h.inputs("potrf", {}, rng)
    y = la.potrf(h.nd(arrays[0], mx))
    assert isinstance(y, mx.nd.NDArray) and y.dtype == np.float64
    np.testing.assert_allclose(y.asnumpy(), xlinalg.potrf(arrays[0]), rtol=1e-14)


def test_gaussian_process_log_likelihood(rng):
    """The README's model: log N(y | 0, K) with K = syrk(X) + s I via potrf, trsm,
    sumlogdiag, gemm2; gradient w.r.t. X against the closed form."""
    n, d = 6, 3
    xnp = rng.standard_normal((n, d))
    ynp = rng.standard_normal((n, 1))
    x = h.nd(xnp, mx, "write")
    y = mx.nd.array(ynp, dtype="float64")
    with mx.autograd.record():
        k = la.syrk(x, alpha=0.5) + mx.nd.array(np.eye(n), dtype="float64")
        chol = la.potrf(k)
        z = la.trsm(chol, y)
        nll = 0.5 * la.gemm2(z, z, transpose_a=True).sum() + la.sumlogdiag(chol).sum()
        solved = la.potrs(chol, y)
    nll.backward()
    knp = 0.5 * xnp @ xnp.T + np.eye(n)
    kinv = np.linalg.inv(knp)
    alpha = kinv @ ynp
    expected_nll = 0.5 * float(ynp.T @ alpha) + 0.5 * np.linalg.slogdet(knp)[1]
    assert abs(nll.asscalar() - expected_nll) <= 1e-12 * abs(expected_nll)
    np.testing.assert_allclose(solved.asnumpy(), alpha, rtol=1e-12)
    gk = 0.5 * (kinv - alpha @ alpha.T)  # d nll / dK
    np.testing.assert_allclose(x.grad.asnumpy(), 0.5 * (gk + gk.T) @ xnp, rtol=1e-10)
