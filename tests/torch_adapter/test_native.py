"""Agreement with PyTorch's own functions: values and gradients of xlinalg's potrf, trsm,
potri, potrs, syevd, inverse, det and slogdet equal those of the corresponding
``torch.linalg`` / ``torch.cholesky_*`` functions where the conventions coincide. Where they
differ, the test states the difference instead of hiding it."""

from __future__ import annotations

import numpy as np
import pytest

import xlinalg.torch as xt
from tests.torch_adapter._helpers import inputs, tensors, torch

TOL = {"rtol": 1e-10, "atol": 1e-12}


def _grads(fn, xs, rng):
    """Outputs and gradients of a random-weighted sum of ``fn(*xs)``'s outputs."""
    leaves = [x.clone().requires_grad_() for x in xs]
    outs = fn(*leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    weights = [torch.tensor(np.random.default_rng(7).standard_normal(tuple(y.shape))) for y in outs]
    loss = sum((y * w).sum() for y, w in zip(outs, weights))
    return [y.detach() for y in outs], torch.autograd.grad(loss, leaves, allow_unused=True, materialize_grads=True)


def _agree(ours, native, xs, rng, out_tol=TOL):
    y1, g1 = _grads(ours, xs, rng)
    y2, g2 = _grads(native, xs, rng)
    for a, b in zip(y1, y2):
        torch.testing.assert_close(a, b, **out_tol)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("lower", [True, False])
def test_potrf_vs_cholesky(lower, rng):
    (a,) = tensors(inputs("potrf", {}, rng))  # symmetric: the conventions coincide
    _agree(lambda a: xt.potrf(a, lower=lower), lambda a: torch.linalg.cholesky(a, upper=not lower), (a,), rng)
    _agree(lambda a: xt.cholesky(a, upper=not lower), lambda a: torch.linalg.cholesky(a, upper=not lower), (a,), rng)


def test_potrf_reads_one_triangle_torch_cholesky_too(rng):
    """Both read only one triangle and return the symmetric gradient, also for a
    non-symmetric input (garbage above the diagonal)."""
    (a,) = tensors(inputs("potrf", {}, rng))
    a = a + torch.triu(torch.tensor(rng.standard_normal((2, 3, 3))), 1)
    _agree(xt.potrf, torch.linalg.cholesky, (a,), rng)


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("rightside", [False, True])
@pytest.mark.parametrize("transpose", [False, True])
def test_trsm_vs_solve_triangular(lower, rightside, transpose, rng):
    params = {"lower": lower, "rightside": rightside, "transpose": transpose}
    a, b = tensors(inputs("trsm", params, rng))  # dense: the other triangle is noise

    def native(a, b):
        t = a.tril() if lower else a.triu()
        t = t.mT if transpose else t
        return 1.5 * torch.linalg.solve_triangular(t, b, upper=(lower == transpose), left=not rightside)

    _agree(lambda a, b: xt.trsm(a, b, alpha=1.5, **params), native, (a, b), rng)


def test_solve_triangular_alias_reads_one_triangle_as_torch_does(rng):
    """``torch.linalg.solve_triangular`` reads one triangle and masks its gradient: the same
    convention as trsm, even on a dense input."""
    a, b = tensors(inputs("trsm", {}, rng))
    for upper in (False, True):
        _agree(
            lambda a, b: xt.solve_triangular(a, b, upper=upper),
            lambda a, b: torch.linalg.solve_triangular(a, b, upper=upper),
            (a, b),
            rng,
        )


@pytest.mark.parametrize("lower", [True, False])
def test_potri_vs_cholesky_inverse(lower, rng):
    """Values agree. Gradients agree on the factor's triangle; off it torch.cholesky_inverse
    returns non-zero entries (it differentiates as if the whole input were the factor
    although its forward reads one triangle), potri masks them (docs/conventions.md)."""
    (f,) = tensors(inputs("potri", {"lower": lower}, rng))
    tri = (lambda x: x.tril()) if lower else (lambda x: x.triu())
    f = tri(f)
    (x_ours,), (g_ours,) = _grads(lambda f: xt.potri(f, lower=lower), (f,), rng)
    (x_torch,), (g_torch,) = _grads(lambda f: torch.cholesky_inverse(f, upper=not lower), (f,), rng)
    torch.testing.assert_close(x_ours, x_torch, **TOL)
    torch.testing.assert_close(g_ours, tri(g_torch), **TOL)
    assert torch.count_nonzero(g_ours - tri(g_ours)) == 0
    assert torch.count_nonzero(g_torch - tri(g_torch)) > 0


@pytest.mark.parametrize("lower", [True, False])
def test_potrs_vs_cholesky_solve(lower, rng):
    f, b = tensors(inputs("potrs", {"lower": lower}, rng))
    f = f.tril() if lower else f.triu()
    _, (g_ours, gb_ours) = _grads(lambda f, b: xt.potrs(f, b, lower=lower), (f, b), rng)
    _, (g_torch, gb_torch) = _grads(lambda f, b: torch.cholesky_solve(b, f, upper=not lower), (f, b), rng)
    torch.testing.assert_close(gb_ours, gb_torch, **TOL)
    tri = (lambda x: x.tril()) if lower else (lambda x: x.triu())
    torch.testing.assert_close(g_ours, tri(g_torch), **TOL)  # equal on the triangle read
    # torch.cholesky_solve's factor gradient has entries off the triangle it reads; potrs's not
    assert torch.count_nonzero(g_ours - tri(g_ours)) == 0
    assert torch.count_nonzero(g_torch - tri(g_torch)) > 0


def _eigh_fixed_sign(a):
    """torch.linalg.eigh with syevd's layout and sign convention (signs fixed as constants)."""
    w, v = torch.linalg.eigh(a)
    with torch.no_grad():
        idx = v.abs().argmax(dim=-2, keepdim=True)
        sign = torch.sign(torch.gather(v, -2, idx))
    return (v * sign).mT, w


def test_syevd_vs_eigh(rng):
    (a,) = tensors(inputs("syevd", {}, rng))  # symmetric, well separated eigenvalues
    _agree(xt.syevd, _eigh_fixed_sign, (a,), rng)
    _agree(lambda a: tuple(xt.eigh(a)), _eigh_cols, (a,), rng)


def _eigh_cols(a):
    u, w = _eigh_fixed_sign(a)
    return w, u.mT


def test_syevd_gradient_is_symmetric_eigh_is_not(rng):
    """torch.linalg.eigh returns the unsymmetrized V (diag(w̄) + F ∘ VᵀV̄) Vᵀ when the loss
    depends on the eigenvectors; syevd returns its symmetric part (docs/conventions.md). Both agree on
    symmetric directions, i.e. sym(torch's gradient) equals syevd's."""
    (a,) = tensors(inputs("syevd", {}, rng))
    _, (g_ours,) = _grads(xt.syevd, (a,), rng)
    _, (g_torch,) = _grads(_eigh_fixed_sign, (a,), rng)
    torch.testing.assert_close(g_ours, (g_torch + g_torch.mT) / 2, **TOL)
    torch.testing.assert_close(g_ours, g_ours.mT, rtol=0, atol=0)


def test_syevd_degenerate_gradient_is_finite_where_eigh_is_nan():
    """At A = diag(1, 1, 2) the loss sum(W ∘ V exp(Λ) Vᵀ) has NaN gradients with
    torch.linalg.eigh; syevd's are finite. They equal the exact gradient sym(W) ∘ D (D the
    divided differences of exp) except inside the degenerate block, where the g′ term
    (e · sym(W)_01) is dropped: exact matrix-function gradients need g′ (docs/conventions.md)."""
    a = torch.diag(torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64))
    w = torch.tensor(np.random.default_rng(0).standard_normal((3, 3)))

    def loss_ours(a):
        u, lam = xt.syevd(a)
        return (w * (u.mT @ torch.diag_embed(lam.exp()) @ u)).sum()

    def loss_torch(a):
        lam, v = torch.linalg.eigh(a)
        return (w * (v @ torch.diag_embed(lam.exp()) @ v.mT)).sum()

    a1 = a.clone().requires_grad_()
    (g_ours,) = torch.autograd.grad(loss_ours(a1), a1)
    a2 = a.clone().requires_grad_()
    (g_torch,) = torch.autograd.grad(loss_torch(a2), a2)
    assert torch.isfinite(g_ours).all()
    assert not torch.isfinite(g_torch).all()
    lam = torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64)
    li, lj = lam[:, None], lam[None, :]
    same = (li - lj).abs() < 1e-12
    dd = torch.where(same, li.exp(), (li.exp() - lj.exp()) / torch.where(same, torch.ones_like(li), li - lj))
    exact = (w + w.T) / 2 * dd
    block = torch.zeros(3, 3, dtype=torch.bool)
    block[0, 1] = block[1, 0] = True
    torch.testing.assert_close(g_ours[~block], exact[~block], **TOL)
    torch.testing.assert_close(g_ours[block], torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-12)


def test_inverse_det_slogdet(rng):
    (a,) = tensors(inputs("inverse", {}, rng))
    _agree(xt.inverse, torch.linalg.inv, (a,), rng)
    _agree(xt.inv, torch.linalg.inv, (a,), rng)
    _agree(xt.det, torch.linalg.det, (a,), rng)
    _agree(xt.slogdet, lambda a: tuple(torch.linalg.slogdet(a)), (a,), rng)
    neg = a.clone()
    neg[:, 0] *= -1  # negative determinants
    _agree(xt.det, torch.linalg.det, (neg,), rng)
    _agree(xt.slogdet, lambda a: tuple(torch.linalg.slogdet(a)), (neg,), rng)
