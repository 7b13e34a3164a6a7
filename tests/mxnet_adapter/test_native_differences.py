"""Where xlinalg.mxnet deliberately differs from MXNet 1.9.1's own ``mx.nd.linalg``: each
difference pinned on MXNet's side too, so a change in MXNet shows up here (docs/mxnet.md)."""

from __future__ import annotations

import pytest

from tests.mxnet_adapter import _helpers as h  # skips this module when MXNet is not installed

mx = h.mx

import numpy as np

import xlinalg
import xlinalg.mxnet as la

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _grad_twice_under_add(fn, a, heads):
    x = h.nd(a, mx, "add")
    for _ in range(2):
        with mx.autograd.record():
            outs = h.as_tuple(fn(x))
        mx.autograd.backward(list(outs), [mx.nd.array(g, dtype=g.dtype) for g in heads])
    return x.grad.asnumpy()


@pytest.mark.parametrize("op", ["syevd", "gelqf", "inverse"])
def test_grad_req_add(op, rng):
    """MXNet's own syevd, gelqf and inverse lose (or garble) the gradient under grad_req="add";
    xlinalg's accumulate."""
    params = {}
    a = h.inputs(op, params, rng, garbage=False)[0]
    _, once, heads = h.run(mx, getattr(la, op), [a], params)
    _, native_once, native_heads = h.run(mx, getattr(mx.nd.linalg, op), [a], params, heads if op != "gelqf" else None)
    np.testing.assert_allclose(_grad_twice_under_add(getattr(la, op), a, heads), 2 * once[0], rtol=1e-12)
    native_twice = _grad_twice_under_add(getattr(mx.nd.linalg, op), a, native_heads)
    assert not np.allclose(native_twice, 2 * native_once[0], rtol=1e-6)


def test_degenerate_eigenvalues():
    """At A = diag(1, 1, 2) MXNet's syevd gradient has entries of 1e100; xlinalg drops the
    degenerate pair's eigenvector term (docs/conventions.md) and stays O(1)."""
    w = np.arange(9.0).reshape(3, 3)

    def grad(fn):
        x = h.nd(np.diag([1.0, 1.0, 2.0]), mx, "write")
        with mx.autograd.record():
            u, lam = fn(x)
            loss = (u * mx.nd.array(w, dtype="float64")).sum() + lam.sum()
        loss.backward()
        return x.grad.asnumpy()

    assert np.max(np.abs(grad(mx.nd.linalg.syevd))) >= 1e90
    ours = grad(la.syevd)
    assert np.all(np.isfinite(ours)) and np.max(np.abs(ours)) < 10


def test_gelqf_sign_convention(rng):
    """MXNet returns LAPACK's signs (diag(L) of either sign); xlinalg makes diag(L) >= 0."""
    a = rng.standard_normal((20, 3, 5))
    x = mx.nd.array(a, dtype="float64")
    q, el = la.gelqf(x)
    q_n, el_n = mx.nd.linalg.gelqf(x)
    assert (np.diagonal(el.asnumpy(), axis1=-2, axis2=-1) >= 0).all()
    assert (np.diagonal(el_n.asnumpy(), axis1=-2, axis2=-1) < 0).any()
    d = np.sign(np.diagonal(el_n.asnumpy(), axis1=-2, axis2=-1))
    np.testing.assert_allclose(q.asnumpy(), d[..., :, None] * q_n.asnumpy(), atol=1e-12)


def test_failure_reported_at_the_call_not_at_sync():
    bad = mx.nd.array(-np.eye(3), dtype="float64")
    y = mx.nd.linalg.potrf(bad)  # MXNet: returns, fails at the next sync point
    with pytest.raises(mx.base.MXNetError):
        y.wait_to_read()
    with pytest.raises(xlinalg.LinAlgError):
        la.potrf(bad)


def test_batch_broadcasting():
    a, b = mx.nd.ones((2, 1, 3, 3), dtype="float64"), mx.nd.ones((1, 4, 3, 3), dtype="float64")
    with pytest.raises(mx.base.MXNetError):
        mx.nd.linalg.gemm2(a, b).wait_to_read()
    assert la.gemm2(a, b).shape == (2, 4, 3, 3)
