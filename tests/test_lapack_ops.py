"""The compiled entries of syevd, inverse, det, slogdet, gelqf and sumlogdiag at inputs the generic
test of tests/test_lapack.py does not draw: degenerate spectra and the degeneracy threshold,
singular matrices (det's cofactor gradient, slogdet's and inverse's failures, the exact zero
pivots of equal rows), rank-deficient LQ, non-finite inputs, float32 eigenvectors (computed in
float64), the LU factors det and slogdet keep for their reverse, and diagonals spanning the
floating-point range or holding zeros, negatives, subnormals and non-finite numbers.

Every test runs the compiled rule (:mod:`xlinalg.lapack.rules`) and compares it with the pure
rule of the operator's spec or with an exact reference.
"""

from __future__ import annotations

import numpy as np
import pytest

import xlinalg
from xlinalg import lapack
from xlinalg.core import apply, operators, samples
from xlinalg.core.eigen import DEGENERACY_RTOL
from xlinalg.lapack import rules

pytestmark = pytest.mark.skipif(lapack.library() is None, reason="compiled kernel layer not active")

DTYPES = ["float64", "float32"]


def _compiled(name, arrays, cotangents=None):
    """``(call, outputs, status, grads)`` of the compiled rules; ``cotangents`` of the outputs
    (default: standard normal)."""
    op = operators()[name]
    call = apply.prepare(op, list(arrays), {})
    outputs, status = call.kern.compiled(op, "forward", call.inputs)(call.inputs, params=call.params)
    if cotangents is None:
        rng = np.random.default_rng(1)
        cotangents = tuple(rng.standard_normal(y.shape).astype(y.dtype) for y in outputs)
    grads, _ = call.kern.compiled(op, "vjp", call.inputs)(call.inputs, tuple(outputs), cotangents, params=call.params)
    return call, outputs, status, grads, cotangents


def _pure_vjp(call, outputs, cotangents):
    """The pure rule's VJP at the given outputs (projected as apply.vjp does)."""
    with np.errstate(all="ignore"):
        grads = call.op.vjp(call.xp, call.kern, apply.read(call), tuple(outputs), tuple(cotangents))
    return apply.project(call, grads)


def _pure_forward(call):
    read = apply.read(call)
    with np.errstate(all="ignore"):
        return apply.check_failure(call, read, call.op.forward(call.xp, call.kern, *read), eager=False)


def _err(got, want, scale):
    return float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)))) / scale


# ---- syevd ----------------------------------------------------------------------------------------
SPECTRA = {
    "pairs": [1.0, 1.0, 1.0, 2.0, 3.0, 3.0],
    "zero": [0.0] * 6,
    "scalar": [1.5] * 6,
    "triple": [-1.0, 2.0, 2.0, 2.0, 5.0, 7.0],
    "clusters40": [1.0] * 10 + list(np.linspace(2.0, 3.0, 20)) + [4.0] * 10,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spectrum", list(SPECTRA))
def test_syevd_degenerate_spectrum(spectrum, dtype):
    """Repeated eigenvalues: a valid decomposition, and the VJP of the pure rule (degenerate
    pairs dropped) at the same outputs, finite."""
    lam = np.asarray(SPECTRA[spectrum])
    n = lam.size
    q = samples.orthogonal(np.random.default_rng(n), (), n)
    a = ((q * lam) @ q.T).astype(dtype)
    call, (u, w), _, (ga,), cot = _compiled("syevd", [a])
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(w, np.sort(lam), atol=50 * n * eps)
    u64 = u.astype(np.float64)
    assert _err(u64 @ u64.T, np.eye(n), 1.0) < 50 * n * eps
    assert _err(u64.T @ (w[:, None] * u64), a, 1.0) < 50 * n * eps
    want = _pure_vjp(call, (u, w), cot)[0]
    assert np.isfinite(ga).all()
    assert _err(ga, want, max(np.max(np.abs(want)), 1.0)) < 50 * n * eps


@pytest.mark.parametrize("dtype", DTYPES)
def test_syevd_degeneracy_threshold_is_the_pure_rules(dtype):
    """Gaps just inside and just outside ``DEGENERACY_RTOL · ε · max|λ|``: the pure rule drops
    the first pair's ``1/(λ_j − λ_i)`` and keeps the second's (of order 1/ε); so does the kernel."""
    n = 6
    eps = np.finfo(dtype).eps
    step = DEGENERACY_RTOL * eps * 4.0  # the threshold: max|λ| = 4
    w = np.array([-1.0, 1.0, 1.0 + 0.75 * step, 2.0, 4.0 - 1.5 * step, 4.0], dtype=dtype)
    u = samples.orthogonal(np.random.default_rng(0), (), n).T.astype(dtype)
    rng = np.random.default_rng(2)
    gu, gw = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal(n).astype(dtype)
    a = (u.T.astype(np.float64) @ (w[:, None] * u)).astype(dtype)
    call = apply.prepare(operators()["syevd"], [a], {})
    (ga,) = rules.RULES["syevd"]["vjp"](call.inputs, (u, w), (gu, gw), {}, 1)
    want = _pure_vjp(call, (u, w), (gu, gw))[0]
    scale = float(np.max(np.abs(want)))
    assert scale > 1e-4 / eps  # the kept 1/gap term dominates
    assert _err(ga, want, scale) < 100 * eps


@pytest.mark.parametrize("n", [32, 128])
def test_syevd_float32_is_computed_in_float64(n):
    """float32 eigenvectors are those of the float64 solver rounded (as NumPy computes them):
    at the spectrum logspace(0, −4, n) a float32 solver errs by up to 2e-2 (n = 128)."""
    q = samples.orthogonal(np.random.default_rng(n), (), n)
    a = ((q * np.logspace(0, -4, n)) @ q.T).astype(np.float32)
    (u32, w32), _ = rules.RULES["syevd"]["forward"]((a,), {}, 1)
    (u64, w64), _ = rules.RULES["syevd"]["forward"]((a.astype(np.float64),), {}, 1)
    signs = np.sign(np.sum(u32 * u64, axis=-1))  # a near tie may flip a row's sign
    assert _err(u32 * signs[:, None], u64, 1.0) < 4 * np.finfo(np.float32).eps
    assert _err(w32, w64, 1.0) < 4 * np.finfo(np.float32).eps


def test_syevd_non_finite_read_triangle_is_nan_unread_is_ignored():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 5, 5))
    a = a + np.swapaxes(a, -1, -2)
    clean = xlinalg.syevd(a)
    a[1, 3, 1] = np.nan  # lower triangle: read
    a[2, 1, 3] = np.inf  # upper triangle: not read
    u, w = xlinalg.syevd(a)
    assert np.isnan(u[1]).all() and np.isnan(w[1]).all()
    for i in (0, 2):
        np.testing.assert_array_equal(u[i], clean[0][i])
        np.testing.assert_array_equal(w[i], clean[1][i])


# ---- det, slogdet, inverse at singular matrices ---------------------------------------------------
def _cofactor(a):
    """``adj(A)ᵀ`` in float64 from the SVD ``A = U S Vᵀ``: ``det(U) det(V) U adj(S) Vᵀ``."""
    u, s, vt = np.linalg.svd(np.asarray(a, np.float64))
    adj = np.array([np.prod(np.delete(s, i)) for i in range(s.size)])
    return np.linalg.det(u) * np.linalg.det(vt) * (u * adj) @ vt


def _singular(kind, n, rng):
    b = samples.well_conditioned(rng, (), n - 1, n)
    if kind == "zero_row":
        return np.vstack([b[: n // 2], np.zeros(n), b[n // 2:]])
    if kind == "equal_rows":
        return np.vstack([b, b[:1]])
    a = samples.well_conditioned(rng, (), n, n)
    u, s, vt = np.linalg.svd(a)
    s[-1 if kind == "rank_n-1" else -2:] = 0.0
    return (u * s) @ vt


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, 60])
@pytest.mark.parametrize("kind", ["zero_row", "equal_rows", "rank_n-1", "rank_n-2", "zero"])
def test_det_gradient_at_singular_matrices_is_the_cofactor_matrix(kind, n, dtype):
    """``∂ det A / ∂A = adj(A)ᵀ``, finite and exact to rounding at singular ``A`` (exact zero
    pivots included: zero and equal rows), as the pure rule defines it; 0 at rank n − 2."""
    rng = np.random.default_rng(n)
    a = (np.zeros((n, n)) if kind == "zero" else _singular(kind, n, rng)).astype(dtype)
    g = np.asarray(0.7, dtype)
    call, (d,), _, (ga,), _ = _compiled("det", [a], (g,))
    (want,) = _pure_vjp(call, (d,), (g,))
    eps = np.finfo(dtype).eps
    assert np.isfinite(ga).all()
    ref = 0.7 * _cofactor(a)
    if kind in ("rank_n-2", "zero"):  # C = 0: rounding on the scale ‖A‖^(n−1) of cofactors
        scale = max(np.linalg.norm(a.astype(np.float64), 2) ** (n - 1), 1.0)
    else:
        scale = float(np.max(np.abs(ref)))
    assert _err(ga, ref, scale) < 4 * n * eps
    assert _err(want, ref, scale) < 4 * n * eps  # the pure rule: the same quantity
    assert abs(float(d)) <= 4 * n * eps * scale


@pytest.mark.parametrize("dtype", DTYPES)
def test_det_gradient_of_a_zero_scalar(dtype):
    a = np.zeros((2, 1, 1), dtype)
    g = np.array([0.5, -2.0], dtype)
    _, (d,), _, (ga,), _ = _compiled("det", [a], (g,))
    np.testing.assert_array_equal(d, [0.0, 0.0])
    np.testing.assert_array_equal(ga[:, 0, 0], g)  # d det/dA = 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, 60])
def test_slogdet_at_singular_matrices(n, dtype):
    """A zero pivot: sign 0, log|det| −inf and a NaN gradient, as the pure rule (its inverse)."""
    a = _singular("zero_row", n, np.random.default_rng(n)).astype(dtype)
    zero = np.asarray(0.0, dtype)
    call, (sign, logabsdet), _, (ga,), _ = _compiled("slogdet", [a], (zero, np.asarray(1.0, dtype)))
    assert float(sign) == 0.0 and float(logabsdet) == -np.inf
    assert np.isnan(ga).all()
    assert np.isnan(_pure_vjp(call, (sign, logabsdet), (zero, np.asarray(1.0, dtype)))[0]).all()


def test_inverse_of_equal_rows_fails_like_the_pure_rule():
    """A is factored with row interchanges of A itself (not of the buffer read column-major,
    Aᵀ), as NumPy and PyTorch do: two equal rows give an exact zero pivot, hence a failure."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 6, 6))
    a[1, 4] = a[1, 2]
    call, (x,), status, _, _ = _compiled("inverse", [a])
    assert status.tolist() == [0, 1, 0]
    assert np.isnan(x[1]).all() and np.isfinite(x[[0, 2]]).all()
    pure = _pure_forward(call)[0]
    assert np.isnan(pure[1]).all()
    with pytest.raises(xlinalg.LinAlgError, match=r"inverse: the matrix is singular at batch index \(1,\)"):
        xlinalg.inverse(a)


@pytest.mark.parametrize("name", ["det", "slogdet"])
def test_determinants_of_non_finite_input_are_nan(name):
    a = np.stack([np.eye(4) * 2.0] * 2)
    a[1, 2, 0] = np.nan
    _, outputs, _, (ga,), _ = _compiled(name, [a])
    for y in outputs:
        assert np.isnan(y[1]) and np.isfinite(y[0])
    assert np.isnan(ga[1]).all() and np.isfinite(ga[0]).all()


# ---- gelqf ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [4, 40])
@pytest.mark.parametrize("row", [0, 2])
def test_gelqf_rank_deficient_entry_fails(m, row):
    rng = np.random.default_rng(m)
    a = rng.standard_normal((3, m, m + 2))
    a[1, row] = 0.0
    call, (q, el), status, _, _ = _compiled("gelqf", [a])
    assert status.tolist() == [0, 1, 0]
    assert np.isnan(q[1]).all() and np.isnan(el[1]).all()
    assert np.isfinite(q[[0, 2]]).all() and np.isfinite(el[[0, 2]]).all()
    pure_q, pure_l = _pure_forward(call)
    assert np.isnan(pure_q[1]).all() and np.isnan(pure_l[1]).all()
    with pytest.raises(xlinalg.LinAlgError, match=r"gelqf: A does not have full row rank .* at batch index \(1,\)"):
        xlinalg.gelqf(a)


def test_gelqf_non_finite_input_fails():
    a = np.random.default_rng(6).standard_normal((2, 3, 5))
    a[0, 1, 4] = np.inf
    with pytest.raises(xlinalg.LinAlgError, match=r"gelqf: input contains NaN or inf at batch index \(0,\)"):
        xlinalg.gelqf(a)


# ---- sumlogdiag -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [7, 1500])
def test_sumlogdiag_of_diagonals_spanning_the_range(n, dtype):
    """Diagonals from near the smallest normal number to near the largest, over more than one
    block of 512 factors: the sum of the logarithms to the rounding of summing them (reference in
    extended precision)."""
    rng = np.random.default_rng(20)
    top = np.log(np.finfo(dtype).max) * 0.99
    d = np.exp(rng.uniform(-top, top, (2, n))).astype(dtype)
    a = np.zeros((2, n, n), dtype) + rng.uniform(-1, 1, (2, n, n)).astype(dtype)
    a[:, np.arange(n), np.arange(n)] = d
    _, (got,), _, _, _ = _compiled("sumlogdiag", (a,))
    want = np.log(d.astype(np.longdouble)).sum(-1)
    bound = 2 * np.finfo(dtype).eps * (np.abs(np.log(d.astype(np.float64))).sum(-1) + n)
    assert np.all(np.abs(got.astype(np.longdouble) - want) <= bound)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", [0.0, -2.0, "subnormal", np.nan, np.inf])
def test_sumlogdiag_of_unusual_diagonal_entries_is_the_sum_of_logarithms(entry, dtype):
    """A zero (−inf), a negative or NaN (NaN), an infinity (inf) and a subnormal number (finite)
    on the diagonal give what the pure rule's sum of logarithms gives."""
    rng = np.random.default_rng(21)
    a = rng.uniform(0.5, 2.0, (3, 5, 5)).astype(dtype)
    a[1, 2, 2] = np.finfo(dtype).smallest_subnormal * 3 if entry == "subnormal" else entry
    call, (got,), _, _, _ = _compiled("sumlogdiag", (a,))
    (want,) = _pure_forward(call)
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps)
