"""Numerical quality of the core rules, beyond finite differences.

- ``potrs``/``potri``: derivatives with respect to the Cholesky factor cost ``O(n² k)`` for
  ``k`` right-hand sides (no ``n × n`` by ``n × n`` product) and keep full accuracy at
  ``κ(A) = 1e8`` (checked against an extended-precision reference), NumPy and JAX;
- ``syevd``: the degeneracy threshold resolves what a float32 eigensolver resolves, and still
  makes exactly repeated eigenvalues exact and finite;
- ``det``: its derivative is the cofactor matrix, finite and exact at singular matrices,
  twice differentiable in PyTorch and JAX;
- ``gelqf``: a matrix without full row rank is a declared failure;
- the portable kernels turn only the library's linear-algebra errors into NaN entries.
"""

from __future__ import annotations

import itertools

import array_api_compat.numpy as xp_numpy
import numpy as np
import pytest

import xlinalg
from tests.cases import MatmulRecorder, recording_kernels
from xlinalg.core import get
from xlinalg.kernels.portable import Kernels

try:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import xlinalg.jax as xj
except ImportError:  # pragma: no cover
    jax = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX not installed")


def _spd(rng, n, kappa):
    """A symmetric positive definite matrix with condition number ``kappa``."""
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * np.logspace(0, -np.log10(kappa), n)) @ q.T
    return (a + a.T) / 2


def _rel(x, ref):
    return float(np.linalg.norm(np.asarray(x, np.float64) - ref) / np.linalg.norm(ref))


# ---- potrs / potri: cost -----------------------------------------------------------------------
@pytest.mark.parametrize("lower", [True, False])
def test_potrs_derivatives_form_no_square_products(rng, lower):
    """JVP and VJP of ``potrs`` with ``k = 1`` right-hand side: every ``matmul`` and every
    triangular solve has an ``n × 1`` operand, so the work is ``O(n²)``, not ``O(n³)``."""
    n = 32
    op = get("potrs")
    el = np.linalg.cholesky(_spd(rng, n, 1e3))
    f = el if lower else el.T
    b, g = rng.standard_normal((n, 1)), rng.standard_normal((n, 1))
    df = np.tril(rng.standard_normal((n, n))) if lower else np.triu(rng.standard_normal((n, n)))
    solves, rec = [], MatmulRecorder()
    kern = recording_kernels(solves)
    (x,) = op.forward(xp_numpy, kern, f, b, lower=lower)
    op.jvp(rec, kern, (f, b), (x,), (df, b), lower=lower)
    op.vjp(rec, kern, (f, b), (x,), (g,), lower=lower)
    assert rec.products and solves
    square = (n, n)
    assert [p for p in rec.products if p[0][-2:] == square and p[1][-2:] == square] == []
    assert [s for s in solves if s[1][-2:] == square] == []


def _jaxpr_equations(jaxpr):
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _jaxpr_equations(inner)


def _square_products(fn, *args, n):
    """The ``dot_general``/``triangular_solve`` equations of ``fn`` with two ``n × n`` operands."""
    out = []
    for eqn in _jaxpr_equations(jax.make_jaxpr(fn)(*args).jaxpr):
        if eqn.primitive.name not in ("dot_general", "triangular_solve"):
            continue
        shapes = [tuple(v.aval.shape)[-2:] for v in eqn.invars[:2]]
        if len(shapes) == 2 and all(s == (n, n) for s in shapes):
            out.append((eqn.primitive.name, shapes))
    return out


@needs_jax
@pytest.mark.parametrize("lower", [True, False])
def test_potrs_jax_grad_and_jvp_form_no_square_products(rng, lower):
    """``jax.grad`` (JAX's transpose of the JVP rule) and ``jax.jvp`` of ``potrs`` with
    respect to the factor, ``n = 64``, ``k = 1``: no product or solve of two ``n × n`` arrays."""
    n = 64
    el = np.linalg.cholesky(_spd(rng, n, 1e3))
    f = jnp.asarray(el if lower else el.T)
    y = jnp.asarray(rng.standard_normal((n, 1)))

    def loss(f):
        return (xj.potrs(f, y, lower=lower) * y).sum()

    def tangent(f, df):
        return jax.jvp(lambda f: xj.potrs(f, y, lower=lower), (f,), (df,))[1]

    assert _square_products(jax.grad(loss), f, n=n) == []
    assert _square_products(tangent, f, f, n=n) == []


# ---- potrs / potri: accuracy at κ(A) = 1e8 ----------------------------------------------------
def _mp_reference(el, g_potri, b, g_potrs):
    """Extended-precision ``L̄`` of ``potri`` and ``potrs`` for the (exact) float64 data."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    n = el.shape[0]

    def mp(a):
        return mpmath.matrix(a.tolist())

    def tril(m):
        return np.tril(np.array(m.tolist(), dtype=float))

    lm = mp(el)
    linv = lm**-1
    x = linv.T * linv
    ref_potri = tril(-(x * (mp(g_potri) + mp(g_potri).T) * linv.T))
    y = linv * mp(b)
    xs = linv.T * y
    z = linv * mp(g_potrs)
    bbar = linv.T * z
    ref_potrs = tril(-(bbar * y.T + xs * z.T))
    assert ref_potri.shape == (n, n)
    return ref_potri, ref_potrs


@pytest.fixture(scope="module")
def ill_conditioned():
    """A factor with ``κ(L Lᵀ) = 1e8``, cotangents and the reference gradients."""
    rng = np.random.default_rng(7)
    n, k = 16, 3
    el = np.tril(np.linalg.cholesky(_spd(rng, n, 1e8)))
    g_potri, b, g_potrs = rng.standard_normal((n, n)), rng.standard_normal((n, k)), rng.standard_normal((n, k))
    return el, g_potri, b, g_potrs, _mp_reference(el, g_potri, b, g_potrs)


#: Relative error allowed for ``F̄`` at ``κ(A) = 1e8`` (measured: ≈ 2e-15; the forms through
#: ``M = −X Ḡ X`` or ``M = −B̄ Xᵀ`` lose about ``√κ``: 4e-13 to 3e-12).
STABLE_RTOL = 5e-14


@pytest.mark.parametrize("lower", [True, False])
def test_potri_potrs_factor_gradients_are_stable_numpy(ill_conditioned, lower):
    el, g_potri, b, g_potrs, (ref_potri, ref_potrs) = ill_conditioned
    f = el if lower else el.T
    flip = (lambda m: m) if lower else (lambda m: m.T)
    _, pullback = xlinalg.vjp(xlinalg.potri, f, lower=lower)
    assert _rel(pullback(g_potri)[0], flip(ref_potri)) < STABLE_RTOL
    _, pullback = xlinalg.vjp(xlinalg.potrs, f, b, lower=lower)
    assert _rel(pullback(g_potrs)[0], flip(ref_potrs)) < STABLE_RTOL


@needs_jax
@pytest.mark.parametrize("lower", [True, False])
def test_potri_potrs_factor_gradients_are_stable_jax(ill_conditioned, lower):
    """JAX transposes the JVP rules: the transposes are the stable forms too."""
    el, g_potri, b, g_potrs, (ref_potri, ref_potrs) = ill_conditioned
    f = jnp.asarray(el if lower else el.T)
    flip = (lambda m: m) if lower else (lambda m: m.T)
    grad_potri = jax.jit(jax.grad(lambda f: jnp.sum(xj.potri(f, lower=lower) * g_potri)))(f)
    grad_potrs = jax.jit(jax.grad(lambda f: jnp.sum(xj.potrs(f, jnp.asarray(b), lower=lower) * g_potrs)))(f)
    assert _rel(grad_potri, flip(ref_potri)) < STABLE_RTOL
    assert _rel(grad_potrs, flip(ref_potrs)) < STABLE_RTOL


@pytest.mark.parametrize("lower", [True, False])
def test_potri_potrs_jvp_and_vjp_are_adjoint_at_high_condition(ill_conditioned, rng, lower):
    el, _, b, _, _ = ill_conditioned
    n = el.shape[0]
    f = el if lower else el.T
    tri = np.tril if lower else np.triu
    df, db = tri(rng.standard_normal((n, n))), rng.standard_normal(b.shape)
    for op, primals, tangents in ((xlinalg.potri, (f,), (df,)), (xlinalg.potrs, (f, b), (df, db))):
        (out,), (dout,) = ((y,) for y in xlinalg.jvp(op, primals, tangents, lower=lower))
        g = rng.standard_normal(out.shape)
        _, pullback = xlinalg.vjp(op, *primals, lower=lower)
        grads = pullback(g)
        lhs = float(np.sum(g * dout))
        rhs = sum(float(np.sum(gx * t)) for gx, t in zip(grads, tangents))
        assert abs(lhs - rhs) <= 1e-10 * abs(lhs)


# ---- syevd: the degeneracy threshold ------------------------------------------------------------
def _eigvec_grad_error(a32, gu, vjp32):
    """Relative error of the float32 gradient ``vjp32(a32, gu)`` against the float64 gradient
    at the same (float32) matrix, the float64 eigenvectors' signs matched to the float32 ones
    (the sign rule may flip a row whose two largest entries nearly tie)."""
    (u64, _), pullback = xlinalg.vjp(xlinalg.syevd, a32.astype(np.float64))
    u32, g32 = vjp32(a32, gu)
    signs = np.sign(np.sum(u64 * np.asarray(u32, np.float64), axis=-1))
    ref = pullback((gu * signs[:, None], None))[0]
    g32 = np.asarray(g32, np.float64)
    return _rel((g32 + g32.T) / 2, ref)


def _numpy_vjp32(a32, gu):
    (u, _), pullback = xlinalg.vjp(xlinalg.syevd, a32)
    return u, pullback((gu.astype(np.float32), None))[0]


@pytest.mark.parametrize("n", [32, 64, 128])
def test_syevd_float32_eigenvector_gradient_logspace_spectrum(n):
    """Spectrum ``logspace(0, −4, n)`` (``κ = 1e4``): its smallest gaps (``7.5e-6 · max|λ|`` at
    ``n = 128``, 63 ε) are resolved in float32 and must keep their ``1/(λ_j − λ_i)`` term
    (the former threshold ``16 n ε max|λ|`` dropped them: relative error 0.3 to 1)."""
    rng = np.random.default_rng(n)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * np.logspace(0, -4, n)) @ q.T
    a32 = ((a + a.T) / 2).astype(np.float32)
    assert _eigvec_grad_error(a32, rng.standard_normal((n, n)), _numpy_vjp32) < 1e-2


def _clustered_spectrum(n):
    """``κ = 1e4``: half spread over ``[1e-4, 0.9]``, half near 1 with gaps of
    ``0.9 · 16 n ε(float32)``, resolvable, but inside the former threshold ``16 n ε max|λ|``."""
    gap = 0.9 * 16 * n * np.finfo(np.float32).eps
    half = n // 2
    return np.r_[np.linspace(1e-4, 0.9, half), 1 - gap * np.arange(n - half)[::-1]]


@needs_jax
@pytest.mark.parametrize("n", [32, 64, 128])
def test_syevd_float32_eigenvector_gradient_jax(n):
    """With JAX's float32 eigensolver (NumPy's computes in float64 internally)."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * _clustered_spectrum(n)) @ q.T
    a32 = ((a + a.T) / 2).astype(np.float32)

    @jax.jit
    def u_and_grad(a, gu):
        return xj.syevd(a)[0], jax.grad(lambda a: jnp.sum(xj.syevd(a)[0] * gu))(a)

    def vjp32(a32, gu):
        return u_and_grad(jnp.asarray(a32), jnp.asarray(gu, jnp.float32))

    assert _eigvec_grad_error(a32, rng.standard_normal((n, n)), vjp32) < 1e-2


def _repeated(n, dtype, seed=3):
    """``A = Q diag(1, 1, 2, 3, …) Qᵀ`` (the eigenvalue 1 twice), with ``Q`` and ``λ``."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.r_[1.0, 1.0, np.arange(2.0, n)]
    a = (q * lam) @ q.T
    return ((a + a.T) / 2).astype(dtype), q, lam


def _projector_gradient(q, lam, m, w):
    """``∂/∂A Σ W ∘ (V_S V_Sᵀ)`` for the eigenspace ``S`` of the first ``m`` (equal) eigenvalues
    of ``A = Q diag(λ) Qᵀ``: ``Ā = T + Tᵀ``, ``T = V_O (K ∘ (V_Oᵀ sym(W) V_S)) V_Sᵀ``,
    ``K_ji = 1/(λ_i − λ_j)``."""
    ws = (w + w.T) / 2
    vs, vo = q[:, :m], q[:, m:]
    k = 1.0 / (lam[None, :m] - lam[m:, None])
    t = vo @ (k * (vo.T @ ws @ vs)) @ vs.T
    return t + t.T


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("n", [4, 16])
def test_syevd_repeated_eigenvalues_exact_and_finite(dtype, tol, n):
    a, q, lam = _repeated(n, dtype)
    rng = np.random.default_rng(n)
    # eigenvalue loss Σ c_i λ_i, equal weights on the repeated pair: Ā = Q diag(c) Qᵀ
    c = np.r_[0.7, 0.7, rng.standard_normal(n - 2)]
    (u, w), pullback = xlinalg.vjp(xlinalg.syevd, a)
    (g,) = pullback((None, c.astype(dtype)))
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, (q * c) @ q.T, atol=tol * 10)
    # projector onto the whole eigenspace of the repeated eigenvalue, through U
    wmat = rng.standard_normal((n, n))
    vs = np.asarray(u, np.float64)[:2].T
    gu = np.zeros((n, n))
    gu[:2] = (vs.T @ (wmat + wmat.T))  # ∂ Σ W ∘ (V_S V_Sᵀ) / ∂U[:2] with V_S = U[:2]ᵀ
    (g,) = pullback((gu.astype(dtype), None))
    assert np.isfinite(g).all()
    ref = _projector_gradient(q, lam, 2, wmat)
    assert _rel(g, ref) < tol * 10


@needs_jax
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-4), (np.float64, 1e-11)])
def test_syevd_repeated_eigenvalues_projector_jax(dtype, tol):
    """Through JAX's own eigensolver (float32 computed in float32), ``jax.grad``."""
    n = 16
    a, q, lam = _repeated(n, dtype)
    wmat = np.random.default_rng(1).standard_normal((n, n))

    def loss(a):
        vs = xj.syevd(a)[0][:2].T
        return jnp.sum(jnp.asarray(wmat, a.dtype) * (vs @ vs.T))

    g = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(a)), np.float64)
    assert np.isfinite(g).all()
    assert _rel((g + g.T) / 2, _projector_gradient(q, lam, 2, wmat)) < tol


def test_syevd_exactly_equal_computed_eigenvalues_are_finite():
    """Equal computed eigenvalues (a multiple of the identity): the eigenvalue gradient is
    exact, the eigenvector term is zero, nothing is NaN or inf."""
    for dtype in (np.float32, np.float64):
        a = 2.0 * np.eye(5, dtype=dtype)
        _, pullback = xlinalg.vjp(xlinalg.syevd, a)
        (g,) = pullback((np.ones((5, 5), dtype), np.arange(5, dtype=dtype)))
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g, np.diag(np.arange(5.0)), atol=1e-6)


# ---- det: the cofactor matrix ----------------------------------------------------------------
def _cofactors(a):
    """``C_ij = (−1)^(i+j) det(A without row i and column j)`` by minors."""
    n = a.shape[0]
    c = np.empty_like(a)
    for i, j in itertools.product(range(n), range(n)):
        c[i, j] = (-1) ** (i + j) * np.linalg.det(np.delete(np.delete(a, i, 0), j, 1))
    return c


def _singular_matrices(rng):
    """Rank ``n − 1``: small integers with a dependent row (``det`` exactly 0), and a product
    of ``n × (n−1)`` and ``(n−1) × n`` Gaussian matrices (``det`` rounding-sized)."""
    exact = rng.integers(-3, 4, (4, 4)).astype(float)
    exact[3] = exact[0] + 2 * exact[1]
    product = rng.standard_normal((5, 4)) @ rng.standard_normal((4, 5))
    zero_column = np.c_[np.zeros(4), rng.standard_normal((4, 3))]
    return [exact, product, zero_column]


def test_det_gradient_at_singular_matrices_is_the_cofactor_matrix(rng):
    for a in _singular_matrices(rng):
        cof = _cofactors(a)
        _, pullback = xlinalg.vjp(xlinalg.det, a)
        (g,) = pullback(np.ones(()))
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g, cof, atol=1e-12 * np.abs(cof).max())
        da = rng.standard_normal(a.shape)
        _, dd = xlinalg.jvp(xlinalg.det, (a,), (da,))
        assert abs(float(dd) - float(np.sum(cof * da))) <= 1e-12 * np.abs(cof).max() * np.abs(da).sum()


def test_det_gradient_at_regular_matrices_unchanged(rng):
    a = rng.standard_normal((3, 4, 4))
    _, pullback = xlinalg.vjp(xlinalg.det, a)
    g = rng.standard_normal(3)
    want = (g * np.linalg.det(a))[:, None, None] * np.swapaxes(np.linalg.inv(a), -1, -2)
    np.testing.assert_allclose(pullback(g)[0], want, rtol=1e-12, atol=1e-13)
    a32 = a.astype(np.float32)
    _, pullback = xlinalg.vjp(xlinalg.det, a32)
    (g32,) = pullback(g.astype(np.float32))
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, want, rtol=1e-4, atol=1e-5)


@needs_jax
def test_det_jax_singular_and_hessian(rng):
    grad = jax.jit(jax.grad(xj.det))
    for a in _singular_matrices(rng):
        cof = _cofactors(a)
        np.testing.assert_allclose(np.asarray(grad(jnp.asarray(a))), cof, atol=1e-12 * np.abs(cof).max())
    hessian, native = jax.jit(jax.hessian(xj.det)), jax.jit(jax.hessian(jnp.linalg.det))
    for x in (rng.standard_normal((3, 3)), np.eye(3)):
        np.testing.assert_allclose(hessian(jnp.asarray(x)), native(jnp.asarray(x)), atol=1e-12)


def test_det_torch_singular_and_double_backward(rng):
    torch = pytest.importorskip("torch")
    import xlinalg.torch as xt

    a = _singular_matrices(rng)[1]
    t = torch.tensor(a, requires_grad=True)
    xt.det(t).backward()
    cof = _cofactors(a)
    np.testing.assert_allclose(t.grad.numpy(), cof, atol=1e-12 * np.abs(cof).max())
    x = torch.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    assert torch.autograd.gradcheck(xt.det, (x,))
    assert torch.autograd.gradgradcheck(xt.det, (x,))


# ---- gelqf: rank failure -----------------------------------------------------------------------
def test_gelqf_without_full_row_rank_fails(rng):
    a = rng.standard_normal((3, 2, 3, 5))
    a[1, 0, 2] = 0.0  # a zero row: L has a zero on its diagonal
    with pytest.raises(xlinalg.LinAlgError) as info:
        xlinalg.gelqf(a)
    message = str(info.value)
    assert message.startswith("gelqf: A does not have full row rank (L has a zero on its diagonal) at batch index (1, 0)")
    assert "(3, 2, 3, 5)" in message and info.value.index == (1, 0)
    q, el = xlinalg.gelqf(np.delete(a, 1, axis=0))  # full-rank entries: unchanged
    np.testing.assert_allclose(el @ q, np.delete(a, 1, axis=0), atol=1e-13)


@needs_jax
def test_gelqf_without_full_row_rank_is_nan_under_jit(rng):
    a = rng.standard_normal((3, 3, 5))
    a[1, 2] = 0.0
    q, el = jax.jit(xj.gelqf)(jnp.asarray(a))
    assert np.isnan(np.asarray(q)[1]).all() and np.isnan(np.asarray(el)[1]).all()
    q0, el0 = xlinalg.gelqf(a[[0, 2]])
    np.testing.assert_allclose(np.asarray(el)[[0, 2]], el0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(q)[[0, 2]], q0, atol=1e-13)


# ---- the portable kernels' failure guard ---------------------------------------------------------
def test_guarded_catches_only_linear_algebra_errors():
    xp = pytest.importorskip("array_api_strict")
    kern = Kernels(xp)
    a = xp.asarray(np.stack([np.eye(3), -np.eye(3)]))

    def not_a_kernel(x):
        raise TypeError("a programming error")

    with pytest.raises(TypeError, match="a programming error"):
        kern._guarded(not_a_kernel, a)
    el = np.asarray(kern.cholesky(a))  # the second entry is not positive definite: NaN
    np.testing.assert_allclose(el[0], np.eye(3))
    assert np.isnan(el[1]).all()
    with pytest.raises(xlinalg.LinAlgError, match=r"potrf: the matrix is not positive definite at batch index \(1,\)"):
        xlinalg.potrf(a)
