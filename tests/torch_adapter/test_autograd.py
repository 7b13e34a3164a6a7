"""Reverse mode, double backward and forward mode of every operator and parameter
combination against finite differences (``torch.autograd.gradcheck``/``gradgradcheck``)."""

from __future__ import annotations

import numpy as np
import pytest

import xlinalg
import xlinalg.torch as xt
from tests.torch_adapter._helpers import CASES, OPS, inputs, structured, tensors, torch
from xlinalg.lapack import torch_node

#: Tighter than gradcheck's defaults (rtol 1e-3): central differences in float64 with
#: eps 1e-6 are accurate to about 1e-9 on these well-conditioned inputs, and a relative error
#: of 1e-3 in a rule must not pass.
GRADCHECK = {"eps": 1e-6, "atol": 1e-7, "rtol": 1e-6}


@pytest.mark.parametrize("name, params", CASES)
def test_gradcheck_reverse_and_forward(name, params, rng):
    xs = tensors(inputs(name, params, rng), requires_grad=True)
    f = structured(name, params)
    assert torch.autograd.gradcheck(f, xs, check_forward_ad=True, **GRADCHECK)


@pytest.mark.parametrize("name, params", CASES)
def test_gradgradcheck(name, params, rng):
    xs = tensors(inputs(name, params, rng), requires_grad=True)
    assert torch.autograd.gradgradcheck(structured(name, params), xs, **GRADCHECK)


@pytest.mark.parametrize("name, params", OPS)
def test_values_match_numpy(name, params, rng):
    arrays = inputs(name, params, rng)
    want = getattr(xlinalg, name)(*arrays, **params)
    got = getattr(xt, name)(*tensors(arrays), **params)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    for w, g in zip(want, got):
        assert isinstance(g, torch.Tensor) and g.dtype == torch.float64
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, params", OPS)
def test_float32_keeps_dtype(name, params, rng):
    xs = tensors(inputs(name, params, rng, dtype="float32"), requires_grad=True)
    outs = structured(name, params)(*xs)
    assert all(y.dtype == torch.float32 for y in outs)
    loss = sum((y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum() for y in outs)
    grads = torch.autograd.grad(loss, xs)
    assert all(g.dtype == torch.float32 and g.shape == x.shape for g, x in zip(grads, xs))


@pytest.mark.parametrize("name, params", OPS)
def test_inputs_not_modified(name, params, rng):
    xs = tensors(inputs(name, params, rng), requires_grad=True)
    before = [x.detach().clone() for x in xs]
    outs = getattr(xt, name)(*xs, **params)
    outs = outs if isinstance(outs, tuple) else (outs,)
    torch.autograd.grad(sum(y.sum() for y in outs), xs, create_graph=True)
    for x, b in zip(xs, before):
        assert torch.equal(x.detach(), b)


def test_unused_outputs_and_inputs_without_grad(rng):
    (a,) = tensors(inputs("syevd", {}, rng), requires_grad=True)
    _, lam = xt.syevd(a)
    (g,) = torch.autograd.grad(lam.sum(), a)  # U unused: zero cotangent
    want = torch.eye(3, dtype=a.dtype).expand(2, 3, 3)  # d tr(A) / dA
    torch.testing.assert_close(g, want, rtol=1e-12, atol=1e-12)

    (q_in,) = tensors(inputs("gelqf", {}, rng), requires_grad=True)
    _, el = xt.gelqf(q_in)  # Q unused
    (g,) = torch.autograd.grad(el.sum(), q_in)
    assert torch.isfinite(g).all()

    (s_in,) = tensors(inputs("slogdet", {}, rng), requires_grad=True)
    sign, logabsdet = xt.slogdet(s_in)
    (g,) = torch.autograd.grad(logabsdet.sum(), s_in, retain_graph=True)
    torch.testing.assert_close(g, torch.linalg.inv(s_in.detach()).mT, rtol=1e-12, atol=1e-12)
    (g_sign,) = torch.autograd.grad(sign.sum(), s_in)  # the sign is piecewise constant
    assert torch.count_nonzero(g_sign) == 0

    a_np, b_np = inputs("trsm", {}, rng)
    a = torch.tensor(a_np)  # no grad
    b = torch.tensor(b_np, requires_grad=True)
    x = xt.trsm(a, b, alpha=2.0)
    (gb,) = torch.autograd.grad(x.sum(), b, retain_graph=True)
    want = 2.0 * torch.linalg.solve_triangular(a.tril().mT, torch.ones_like(b), upper=True)
    torch.testing.assert_close(gb, want, rtol=1e-12, atol=1e-12)
    x.sum().backward()
    assert b.grad is not None and a.grad is None


def test_backward_accumulates_into_leaf_grad(rng):
    (a,) = tensors(inputs("potrf", {}, rng), requires_grad=True)
    xt.potrf(a).sum().backward()
    first = a.grad.clone()
    xt.potrf(a).sum().backward()
    torch.testing.assert_close(a.grad, 2 * first)


def test_broadcast_inputs_get_summed_gradients(rng):
    a_np, _ = inputs("trsm", {}, rng, batch=())
    b_np = rng.standard_normal((4, 3, 2))
    a = torch.tensor(a_np, requires_grad=True)
    b = torch.tensor(b_np, requires_grad=True)
    w = torch.tensor(rng.standard_normal((4, 3, 2)))
    (ga,) = torch.autograd.grad((xt.trsm(a, b) * w).sum(), a)
    assert ga.shape == (3, 3)
    a_rep = a.detach().expand(4, 3, 3).clone().requires_grad_()
    (ga_rep,) = torch.autograd.grad((xt.trsm(a_rep, b) * w).sum(), a_rep)
    torch.testing.assert_close(ga, ga_rep.sum(0), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a, b: xt.trsm(a.tril(), b), (a, b), **GRADCHECK)


@pytest.mark.parametrize("name", ["potrf", "syevd"])
def test_symmetric_gradient_convention(name, rng):
    """Only one triangle is read and the gradient is sym(·): a symmetric perturbation
    E_ij + E_ji (i ≠ j) changes the loss by 2 g_ij, a diagonal one E_ii by g_ii."""
    (a_np,) = inputs(name, {}, rng, batch=())
    n = a_np.shape[-1]
    w = [torch.tensor(rng.standard_normal(s)) for s in ((n, n), (n,))]
    noise = torch.tensor(np.triu(rng.standard_normal((n, n)), 1))

    def loss(a):
        outs = getattr(xt, name)(a)
        outs = outs if isinstance(outs, tuple) else (outs,)
        return sum((y * wi).sum() for y, wi in zip(outs, w))

    a = torch.tensor(a_np, requires_grad=True)
    (g,) = torch.autograd.grad(loss(a), a)
    torch.testing.assert_close(g, g.mT, rtol=0, atol=0)
    # the strict upper triangle is not read
    a_noisy = torch.tensor(a_np, requires_grad=True)
    torch.testing.assert_close(loss(a_noisy + noise), loss(a), rtol=1e-12, atol=0)
    eps = 1e-6
    for i in range(n):
        for j in range(i + 1):
            e = torch.zeros(n, n, dtype=a.dtype)
            e[i, j] = e[j, i] = 1.0
            with torch.no_grad():
                fd = (loss(a + eps * e) - loss(a - eps * e)) / (2 * eps)
            want = g[i, j] if i == j else 2 * g[i, j]
            assert abs(fd - want) < 1e-6 * max(1.0, abs(float(want)))
    # the raw Jacobian with respect to an upper entry alone is zero, not g_ij
    e = torch.zeros(n, n, dtype=a.dtype)
    e[0, n - 1] = 1.0
    with torch.no_grad():
        assert loss(a + eps * e) == loss(a)


def test_double_backward_through_gp_loss(rng):
    """Hessian-vector product of a loss built from several operators, against finite
    differences of the gradient."""
    (a_np,) = inputs("potrf", {}, rng, batch=())
    b_np = rng.standard_normal((3, 2))

    def loss(a, b):
        el = xt.potrf((a + a.mT) / 2)
        return (b * xt.potrs(el, b)).sum() + 2 * xt.sumlogdiag(el)

    a = torch.tensor(a_np, requires_grad=True)
    b = torch.tensor(b_np, requires_grad=True)
    assert torch.autograd.gradgradcheck(loss, (a, b), **GRADCHECK)


def test_public_functions_dispatch_to_the_adapter(rng):
    (a,) = tensors(inputs("potrf", {}, rng), requires_grad=True)
    out = xlinalg.potrf(a)
    node = "PotrfBackward" if torch_node.library() is not None else "PotrfFunctionBackward"
    assert isinstance(out, torch.Tensor) and out.grad_fn.name() == node
    assert xlinalg.potrf.operator is xt.potrf.operator
    u, lam = xlinalg.syevd(tensors(inputs("syevd", {}, rng))[0])
    assert isinstance(u, torch.Tensor) and isinstance(lam, torch.Tensor)
    w, v = xlinalg.eigh(tensors(inputs("syevd", {}, rng))[0])
    assert isinstance(v, torch.Tensor)


def test_gp_demo_operators_through_public_functions(rng):
    """The README demo's operators on tensors that require grad: Bayesian linear regression
    marginal likelihood with K = syrk(X) + s I, L = potrf(K), α by potrs and by two trsm."""
    x = torch.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    y = torch.tensor(rng.standard_normal((6, 1)), requires_grad=True)
    log_s = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)

    def nll(x, y, log_s):
        k = xlinalg.syrk(x, alpha=0.5) + torch.exp(log_s) * torch.eye(6, dtype=x.dtype)
        el = xlinalg.potrf(k)
        alpha = xlinalg.potrs(el, y)
        alpha2 = xlinalg.trsm(el, xlinalg.trsm(el, y), transpose=True)
        fit = xlinalg.gemm2(y, alpha, transpose_a=True) + xlinalg.gemm2(y, alpha2, transpose_a=True)
        return 0.25 * fit.sum() + xlinalg.sumlogdiag(el)

    assert torch.autograd.gradcheck(nll, (x, y, log_s), **GRADCHECK)
    assert torch.autograd.gradgradcheck(nll, (x, y, log_s), **GRADCHECK)
    k = 0.5 * x.detach() @ x.detach().T + np.exp(-1.0) * torch.eye(6, dtype=torch.float64)
    want = 0.5 * (y.detach().T @ torch.linalg.solve(k, y.detach())).sum() + 0.5 * torch.logdet(k)
    torch.testing.assert_close(nll(x, y, log_s), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name, params", OPS)
def test_forward_mode_without_requires_grad(name, params, rng):
    """Dual tensors that do not require grad, under ``torch.no_grad``: no graph is recorded, yet
    forward mode still needs the operator's ``jvp`` (the call cannot skip its autograd node)."""
    import torch.autograd.forward_ad as fwad

    raw = tensors(inputs(name, params, rng))
    tangents = tensors(tuple(rng.standard_normal(x.shape) for x in raw))
    f = structured(name, params)
    xs_req = tuple(x.clone().requires_grad_() for x in raw)
    _, want = torch.autograd.functional.jvp(f, xs_req, tangents)
    with torch.no_grad(), fwad.dual_level():
        outs = f(*(fwad.make_dual(x, t) for x, t in zip(raw, tangents)))
        got = [fwad.unpack_dual(y).tangent for y in outs]
    for g, w in zip(got, want):
        assert g is not None
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


def test_calls_without_autograd_record_no_node(rng):
    """Outside autograd (no input requiring grad, or ``torch.no_grad``) the outputs are plain
    tensors of their own, whatever the kernel layer."""
    a, b = tensors(inputs("trsm", {}, rng))
    b_req = b.clone().requires_grad_()
    for x in (xt.trsm(a, b), torch.no_grad()(xt.trsm)(a, b_req)):
        assert x.grad_fn is None and not x.requires_grad
        assert not x._is_view() and x.untyped_storage().data_ptr() not in {a.untyped_storage().data_ptr(), b.untyped_storage().data_ptr()}
    assert xt.trsm(a, b_req).grad_fn is not None
