"""The blocked JVP and VJP of ``potrf`` (large orders, where no compiled kernel takes the call:
GPU arrays above the GPU kernels' orders, the pure rules on the CPU).

They must equal the formulas ``dL = L Φ(L⁻¹ dA L⁻ᵀ)`` and ``Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹)`` for any
block size (blocks that divide the order or not, one block, batches), run in every Array API
namespace (nothing is updated in place: JAX arrays are immutable), and be what ``potrf`` runs
from order 256 on: no product of two ``n × n`` arrays and no triangular solve of order ``n``.
"""

from __future__ import annotations

import array_api_compat.numpy as xp_numpy
import numpy as np
import pytest

from tests.cases import MatmulRecorder, recording_kernels
from xlinalg.core import cholesky, get
from xlinalg.core.matrix import sym
from xlinalg.kernels import kernels_for

CASES = [(1, 1), (10, 3), (10, 4), (10, 10), (37, 8), (64, 16), (300, 128), (300, 299)]


def _problem(rng, n, lead=(), dtype=np.float64):
    a = rng.standard_normal((*lead, n, n))
    a = a @ np.swapaxes(a, -1, -2) + n * np.eye(n)
    el = np.linalg.cholesky(a)
    g = rng.standard_normal((*lead, n, n))  # both triangles: only the lower one may be read
    da = rng.standard_normal((*lead, n, n))
    da = da + np.swapaxes(da, -1, -2)
    return el.astype(dtype), g.astype(dtype), da.astype(dtype)


def _rel(x, ref):
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    return float(np.abs(x - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("lead", [(), (2,)], ids=["one", "batch"])
@pytest.mark.parametrize(("n", "block"), CASES)
def test_blocked_rules_equal_the_formulas(rng, n, block, lead):
    el, g, da = _problem(rng, n, lead)
    kern = kernels_for(xp_numpy)
    reverse = cholesky._cholesky_reverse(xp_numpy, kern, el, np.tril(g))
    blocked = cholesky._cholesky_reverse_blocked(xp_numpy, kern, el, g, block)
    assert _rel(sym(xp_numpy, blocked), sym(xp_numpy, reverse)) < 1e-13
    tangent = cholesky._cholesky_tangent(xp_numpy, kern, el, da)
    tangent_blocked = cholesky._cholesky_tangent_blocked(xp_numpy, kern, el, da, block)
    assert _rel(tangent_blocked, tangent) < 1e-13
    assert np.array_equal(np.triu(tangent_blocked, 1), np.zeros_like(tangent_blocked))


def _namespaces():
    out = []
    try:
        import array_api_compat.torch as xp_torch
        import torch

        out.append(pytest.param(xp_torch, torch.from_numpy, id="torch"))
    except ImportError:  # pragma: no cover
        pass
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        out.append(pytest.param(jnp, jnp.asarray, id="jax"))
        out.append(pytest.param(jnp, jnp.asarray, id="jax-jit"))
    except ImportError:  # pragma: no cover
        pass
    return out


@pytest.mark.parametrize(("xp", "convert"), _namespaces())
def test_blocked_rules_run_in_every_namespace(rng, xp, convert, request):
    el, g, da = _problem(rng, 23, (2,))
    kern = kernels_for(xp)
    reverse_blocked = lambda el, g: cholesky._cholesky_reverse_blocked(xp, kern, el, g, 5)  # noqa: E731
    tangent_blocked = lambda el, da: cholesky._cholesky_tangent_blocked(xp, kern, el, da, 5)  # noqa: E731
    if request.node.callspec.id == "jax-jit":
        import jax

        reverse_blocked, tangent_blocked = jax.jit(reverse_blocked), jax.jit(tangent_blocked)
    reverse = cholesky._cholesky_reverse(xp_numpy, kernels_for(xp_numpy), el, np.tril(g))
    assert _rel(sym(xp_numpy, np.asarray(reverse_blocked(convert(el), convert(g)))), sym(xp_numpy, reverse)) < 1e-13
    tangent = cholesky._cholesky_tangent(xp_numpy, kernels_for(xp_numpy), el, da)
    assert _rel(np.asarray(tangent_blocked(convert(el), convert(da))), tangent) < 1e-13


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lower", [True, False])
def test_potrf_derivatives_are_blocked_from_order_256(rng, monkeypatch, lower, dtype):
    """At order 300 (blocks of 128, 128 and 44) the JVP and VJP solve only with diagonal blocks
    and form no ``n × n`` by ``n × n`` product, and equal the formulas (float32: to its
    precision; the float64 formulas as reference)."""
    n = 300
    op = get("potrf")
    el, g, da = _problem(rng, n, dtype=dtype)
    f = el if lower else np.swapaxes(el, -1, -2)
    gf = g if lower else np.swapaxes(g, -1, -2)
    solves, rec = [], MatmulRecorder()
    kern = recording_kernels(solves)
    (dl,) = op.jvp(rec, kern, (f,), (f,), (da,), lower=lower)
    (ga,) = op.vjp(rec, kern, (f,), (f,), (gf,), lower=lower)
    assert solves and max(a[-1] for a, _ in solves) == cholesky.cholesky_block(n) == 128
    assert [p for p in rec.products if p == ((n, n), (n, n))] == []
    assert dl.dtype == ga.dtype == dtype

    monkeypatch.setattr(cholesky, "cholesky_block", lambda n: 0)
    f64 = f.astype(np.float64)
    kern = kernels_for(xp_numpy)
    (dl_ref,) = op.jvp(xp_numpy, kern, (f64,), (f64,), (da.astype(np.float64),), lower=lower)
    (ga_ref,) = op.vjp(xp_numpy, kern, (f64,), (f64,), (gf.astype(np.float64),), lower=lower)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    assert _rel(dl, dl_ref) < tol
    assert _rel(sym(xp_numpy, ga), sym(xp_numpy, ga_ref)) < tol
    # the adjoint identity: ⟨Ā, dA⟩ = ⟨L̄, dL⟩ (L̄'s named triangle)
    mask = np.tril(np.ones((n, n))) if lower else np.triu(np.ones((n, n)))
    lhs = np.sum(sym(xp_numpy, ga).astype(np.float64) * da)
    rhs = np.sum((gf * mask).astype(np.float64) * dl)
    assert abs(lhs - rhs) <= tol * abs(rhs) * 10


def test_the_formulas_run_below_order_256(rng):
    n = 255
    op = get("potrf")
    el, g, da = _problem(rng, n)
    solves = []
    kern = recording_kernels(solves)
    op.jvp(xp_numpy, kern, (el,), (el,), (da,), lower=True)
    op.vjp(xp_numpy, kern, (el,), (el,), (g,), lower=True)
    assert solves and {a[-1] for a, _ in solves} == {n}


def test_second_derivatives_differentiate_the_blocked_rules(rng, monkeypatch):
    """PyTorch's double backward and JAX's grad of grad differentiate the pure VJP, blocked from
    order 256: the same second derivatives as through the formulas."""
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import xlinalg.jax as xj
    import xlinalg.torch as xt

    n = 260
    el, g, _ = _problem(rng, n)
    a = el @ el.T

    def torch_hvp():
        at = torch.from_numpy(a).requires_grad_()
        (ga,) = torch.autograd.grad((xt.potrf(at) * torch.from_numpy(g)).sum(), at, create_graph=True)
        (h,) = torch.autograd.grad((ga * ga).sum(), at)
        return h.numpy()

    def jax_hvp():
        def first(a):
            return jax.grad(lambda a: (xj.potrf(a) * g).sum())(a)

        return np.asarray(jax.grad(lambda a: (first(a) ** 2).sum())(jnp.asarray(a)))

    blocked = torch_hvp(), jax_hvp()
    monkeypatch.setattr(cholesky, "cholesky_block", lambda n: 0)
    formulas = torch_hvp(), jax_hvp()
    for got, ref in zip(blocked, formulas):
        assert _rel(got, ref) < 1e-12
