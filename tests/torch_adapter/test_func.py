"""``torch.func`` transforms of every operator: vmap, grad, jacrev, jacfwd, hessian."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xlinalg
import xlinalg.torch as xt
from tests.torch_adapter._helpers import OPS, inputs, structured, tensors, torch

TOL = {"rtol": 1e-10, "atol": 1e-10}


def _weighted_loss(f, rng, xs):
    """A scalar loss with fixed random weights on every output of ``f``."""
    weights = [torch.tensor(rng.standard_normal(tuple(y.shape))) for y in f(*xs)]

    def loss(*args):
        return sum((y * w).sum() for y, w in zip(f(*args), weights))

    return loss


@pytest.mark.parametrize("name, params", OPS)
def test_vmap_equals_loop(name, params, rng):
    xs = tensors(inputs(name, params, rng, batch=(3, 2)))
    f = structured(name, params)
    got = torch.func.vmap(f)(*xs)
    for i in range(3):
        for y, want in zip(got, f(*(x[i] for x in xs))):
            torch.testing.assert_close(y[i], want, **TOL)


def test_vmap_with_unbatched_argument(rng):
    a, b = tensors(inputs("trsm", {}, rng, batch=()))
    bs = torch.tensor(rng.standard_normal((5, 3, 2)))
    got = torch.func.vmap(lambda b: xt.trsm(a, b), in_dims=0)(bs)
    torch.testing.assert_close(got, xt.trsm(a, bs), **TOL)
    got = torch.func.vmap(xt.trsm, in_dims=(None, 0))(a, bs)
    torch.testing.assert_close(got, xt.trsm(a, bs), **TOL)


def test_vmap_failure_is_nan_not_an_error():
    a = torch.eye(3, dtype=torch.float64).repeat(4, 1, 1)
    a[2, 1, 1] = -1.0
    out = torch.func.vmap(xt.potrf)(a)
    assert torch.isnan(out[2]).all()
    assert torch.isfinite(out[[0, 1, 3]]).all()
    with pytest.raises(xlinalg.LinAlgError, match=r"batch index \(2,\)"):
        xt.potrf(a)


@pytest.mark.parametrize("name, params", OPS)
def test_grad_equals_autograd(name, params, rng):
    xs = tensors(inputs(name, params, rng, batch=(2,)))
    loss = _weighted_loss(structured(name, params), rng, xs)
    argnums = tuple(range(len(xs)))
    got = torch.func.grad(loss, argnums=argnums)(*xs)
    leaves = [x.clone().requires_grad_() for x in xs]
    want = torch.autograd.grad(loss(*leaves), leaves)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, **TOL)


@pytest.mark.parametrize("name, params", OPS)
def test_jacrev_jacfwd_agree_with_autograd_jacobian(name, params, rng):
    xs = tensors(inputs(name, params, rng, batch=()))
    f = structured(name, params)
    argnums = tuple(range(len(xs)))
    rev = torch.func.jacrev(f, argnums=argnums)(*xs)
    fwd = torch.func.jacfwd(f, argnums=argnums)(*xs)
    ref = torch.autograd.functional.jacobian(f, xs)  # backward, one output entry at a time
    for k in range(len(ref)):
        for i in range(len(xs)):
            torch.testing.assert_close(rev[k][i], ref[k][i], **TOL)
            torch.testing.assert_close(fwd[k][i], ref[k][i], **TOL)


@pytest.mark.parametrize("name, params", OPS)
def test_hessian(name, params, rng):
    xs = tensors(inputs(name, params, rng, batch=()))
    loss = _weighted_loss(structured(name, params), rng, xs)
    h = torch.func.hessian(loss, argnums=0)(*xs)  # forward over reverse
    ref = torch.autograd.functional.hessian(lambda x: loss(x, *xs[1:]), xs[0])  # reverse over reverse
    torch.testing.assert_close(h, ref, **TOL)
    m = int(math.prod(xs[0].shape))
    flat = h.reshape(m, m)
    torch.testing.assert_close(flat, flat.T, **TOL)


def test_hessian_of_logdet_is_known():
    """d²/dA² log det A [E, F] = −tr(A⁻¹ E A⁻¹ F) through potrf + sumlogdiag."""
    rng = np.random.default_rng(3)
    m = rng.standard_normal((3, 3))
    a = torch.tensor(m @ m.T + 3 * np.eye(3))

    def logdet(x):
        return 2 * xt.sumlogdiag(xt.potrf((x + x.mT) / 2))

    h = torch.func.hessian(logdet)(a)
    ainv = torch.linalg.inv(a)
    e, f = torch.tensor(rng.standard_normal((3, 3))), torch.tensor(rng.standard_normal((3, 3)))
    es, fs = (e + e.T) / 2, (f + f.T) / 2
    want = -torch.trace(ainv @ es @ ainv @ fs)
    got = torch.einsum("ij,ijkl,kl->", e, h, f)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
