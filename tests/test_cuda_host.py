"""The GPU layer's per-matrix entries (``xlinalg/cuda/src/per_matrix.h``) as the CPU library
compiles them, ``xl_hd_<name>_<f32|f64>``, against the CPU entries ``xl_<name>_<f32|f64>`` of
the same library and float64 references.

Every test fills the outputs with a sentinel first (a different one for each side), puts NaN in
the triangle an entry does not read, and uses batches with failing entries (not positive
definite, singular, NaN in the read triangle). Checks:

* outputs and status equal to the CPU entry's: NaN at the same places, the rest within
  ``TOL[dtype]`` times the largest magnitude of the CPU output (float64 1e-12, float32 1e-5; the
  test matrices have condition numbers below 10);
* forward outputs against NumPy in float64 (same tolerance);
* gradients by the adjoint identity ⟨Ḡ, dY⟩ = Σ ⟨Ā, dA⟩ with dY the float64 directional
  derivative along random dA (of each argument's structure) in closed form, within ``TOL[dtype]``
  times Σ |terms|.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import cuda_host
from xlinalg import lapack

pytestmark = pytest.mark.skipif(lapack.library() is None, reason="compiled kernel layer not active")

DTYPES = ["float64", "float32"]
TOL = {"float64": 1e-12, "float32": 1e-5}
ORDERS = [1, 2, 7, 16, 32]
FLAGS = list(range(8))  # bit 0 transpose, bit 1 rightside, bit 2 lower
MAX_ORDER = 32  # xl::hd::kMaxOrder


# ---- data -----------------------------------------------------------------------------------------
def _t(x):
    return np.swapaxes(x, -1, -2)


def _spd(rng, batch, n):
    """Symmetric positive definite, eigenvalues in [1, 4]."""
    q, _ = np.linalg.qr(rng.standard_normal((batch, n, n)))
    return (q * rng.uniform(1.0, 4.0, (batch, 1, n))) @ _t(q)


def _factor(rng, batch, n, lower):
    """A Cholesky factor, L (``lower``) or U = Lᵀ (condition number below 2)."""
    l = np.linalg.cholesky(_spd(rng, batch, n))
    return l if lower else _t(l).copy()


def _triangular(rng, batch, n, lower):
    """A triangular matrix with diagonal entries of both signs."""
    return _factor(rng, batch, n, lower) * rng.choice([-1.0, 1.0], (batch, n, 1))


def _unread(n, lower):
    """The mask of the triangle not read (strict)."""
    ones = np.ones((n, n), bool)
    return np.triu(ones, 1) if lower else np.tril(ones, -1)


def _garbage(m, lower):
    """``m`` with NaN in its unread triangle."""
    m = np.array(m)
    m[..., _unread(m.shape[-1], lower)] = np.nan
    return m


def _corner(n, lower):
    """An element of the read triangle, off the diagonal where n > 1."""
    return (n - 1, 0) if lower else (0, n - 1)


def _masked(m, lower):
    """``m`` with zeros in the unread triangle."""
    return np.where(_unread(m.shape[-1], lower), 0.0, m)


def _phi(x):
    """The lower triangle with the diagonal halved."""
    return np.tril(x) - 0.5 * np.eye(x.shape[-1]) * x


# ---- calls and comparisons ------------------------------------------------------------------------
SENTINEL = {False: 7777.0, True: -5555.0}


def _run(name, dtype, outs, cpu, values):
    arrays = {p: np.full(shape, 99, np.int32) if p == "status" else np.full(shape, SENTINEL[cpu], dtype) for p, shape in outs.items()}
    inputs = {p: np.ascontiguousarray(v, dtype) if isinstance(v, np.ndarray) else v for p, v in values.items()}
    cuda_host.call(name, dtype, cpu=cpu, **inputs, **arrays)
    return arrays


def _both(name, dtype, outs, **values):
    """The outputs ``outs`` ({name: shape}) of ``xl_hd_<name>`` and of ``xl_<name>``."""
    return _run(name, dtype, outs, False, values), _run(name, dtype, outs, True, values)


def _close(got, want, dtype):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    if nan.all():
        return
    scale = max(float(np.max(np.abs(want[~nan]))), 1e-300)
    err = float(np.max(np.abs(got[~nan] - want[~nan])))
    assert err <= TOL[dtype] * scale, f"relative error {err / scale:.3g}"


def _same(hd, cpu, dtype):
    for p in hd:
        if p == "status":
            np.testing.assert_array_equal(hd[p], cpu[p])
        else:
            _close(hd[p], cpu[p], dtype)


def _adjoint(cotangent_pairs, gradient_pairs, dtype):
    """⟨Ḡ, dY⟩ = Σ ⟨Ā, dA⟩ per batch entry, ``pairs`` of (batch, ...) arrays."""

    def dot(pairs):
        total = absolute = 0.0
        for x, y in pairs:
            prod = np.asarray(x, np.float64) * np.asarray(y, np.float64)
            axes = tuple(range(1, prod.ndim))
            total = total + prod.sum(axis=axes)
            absolute = absolute + np.abs(prod).sum(axis=axes)
        return total, absolute

    lhs, lhs_abs = dot(cotangent_pairs)
    rhs, rhs_abs = dot(gradient_pairs)
    assert np.all(np.abs(lhs - rhs) <= TOL[dtype] * (lhs_abs + rhs_abs + 1e-300)), (lhs, rhs)


def _f64(x):
    return np.asarray(x, np.float64)


# ---- potrf ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", ORDERS)
@pytest.mark.parametrize("lower", [1, 0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_potrf(dtype, lower, n):
    rng = np.random.default_rng(10 * n + lower)
    batch = 6
    a = _spd(rng, batch, n)
    a[1, n - 1, n - 1] = -1.0  # not positive definite (at the last pivot)
    a[3][_corner(n, lower)] = np.nan
    a[4][_corner(n, lower)] = np.inf
    a = a.astype(dtype)
    hd, cpu = _both("potrf", dtype, {"out": (batch, n, n), "status": (batch,)}, lower=lower, batch=batch, n=n, a=_garbage(a, lower))
    np.testing.assert_array_equal(hd["status"], [0, 1, 0, 1, 1, 0])
    _same(hd, cpu, dtype)
    ok = [0, 2, 5]
    ref = np.linalg.cholesky(_f64(a[ok]))
    _close(hd["out"][ok], ref if lower else _t(ref), dtype)


@pytest.mark.parametrize("n", ORDERS)
@pytest.mark.parametrize("lower", [1, 0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_potrf_vjp(dtype, lower, n):
    rng = np.random.default_rng(20 * n + lower)
    batch = 3
    f = _factor(rng, batch, n, lower).astype(dtype)
    g = rng.standard_normal((batch, n, n)).astype(dtype)
    hd, cpu = _both("potrf_vjp", dtype, {"ga": (batch, n, n)}, lower=lower, batch=batch, n=n, f=_garbage(f, lower), g=_garbage(g, lower))
    _same(hd, cpu, dtype)
    ga = hd["ga"]
    np.testing.assert_array_equal(ga, _t(ga))
    # dL = L Φ(L⁻¹ dA L⁻ᵀ) along a symmetric dA
    l = _f64(f) if lower else _t(_f64(f))
    da = rng.standard_normal((batch, n, n))
    da = da + _t(da)
    li = np.linalg.inv(l)
    dl = l @ _phi(li @ da @ _t(li))
    _adjoint([(_masked(g, lower), dl if lower else _t(dl))], [(ga, da)], dtype)


# ---- potrs ----------------------------------------------------------------------------------------
def _potrs_inputs(rng, batch, n, k, lower, dtype):
    f = _factor(rng, batch, n, lower)
    b = rng.standard_normal((batch, n, k))
    return f.astype(dtype), b.astype(dtype)


@pytest.mark.parametrize("n", ORDERS)
@pytest.mark.parametrize("lower", [1, 0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_potrs(dtype, lower, n):
    rng = np.random.default_rng(30 * n + lower)
    batch = 5
    for k in (0, 1, 3):
        f, b = _potrs_inputs(rng, batch, n, k, lower, dtype)
        f[1, n // 2, n // 2] = 0.0  # singular
        f[3][_corner(n, lower)] = np.nan
        outs = {"out": (batch, n, k), "status": (batch,)}
        hd, cpu = _both("potrs", dtype, outs, lower=lower, batch=batch, n=n, k=k, f=_garbage(f, lower), b=b)
        np.testing.assert_array_equal(hd["status"], [0, 1, 0, 1, 0] if k else [0, 0, 0, 1, 0])
        _same(hd, cpu, dtype)
        ok = [0, 2, 4]
        l = _f64(f[ok]) if lower else _t(_f64(f[ok]))
        _close(hd["out"][ok], np.linalg.solve(l @ _t(l), _f64(b[ok])), dtype)


@pytest.mark.parametrize("n", ORDERS)
@pytest.mark.parametrize("lower", [1, 0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_potrs_vjp(dtype, lower, n):
    rng = np.random.default_rng(40 * n + lower)
    batch = 3
    for k in (0, 1, 3):
        f, b = _potrs_inputs(rng, batch, n, k, lower, dtype)
        x = _run("potrs", dtype, {"out": (batch, n, k), "status": (batch,)}, True, dict(lower=lower, batch=batch, n=n, k=k, f=f, b=b))["out"]
        g = rng.standard_normal((batch, n, k)).astype(dtype)
        outs = {"gf": (batch, n, n), "gb": (batch, n, k)}
        hd, cpu = _both("potrs_vjp", dtype, outs, lower=lower, batch=batch, n=n, k=k, f=_garbage(f, lower), b=b, x=x, g=g)
        _same(hd, cpu, dtype)
        assert np.all(hd["gf"][:, _unread(n, lower)] == 0)
        # X = A⁻¹ B, A = L Lᵀ: dX = A⁻¹ (dB − dA X), dA = dL Lᵀ + L dLᵀ
        l = _f64(f) if lower else _t(_f64(f))
        df = _masked(rng.standard_normal((batch, n, n)), lower)
        db = rng.standard_normal((batch, n, k))
        dl = df if lower else _t(df)
        dx = np.linalg.solve(l @ _t(l), db - (dl @ _t(l) + l @ _t(dl)) @ _f64(x))
        _adjoint([(g, dx)], [(hd["gf"], df), (hd["gb"], db)], dtype)


# ---- potri ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", ORDERS)
@pytest.mark.parametrize("lower", [1, 0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_potri(dtype, lower, n):
    rng = np.random.default_rng(50 * n + lower)
    batch = 5
    f = _factor(rng, batch, n, lower).astype(dtype)
    f[1, n // 2, n // 2] = 0.0  # singular
    f[3][_corner(n, lower)] = np.nan
    hd, cpu = _both("potri", dtype, {"out": (batch, n, n), "status": (batch,)}, lower=lower, batch=batch, n=n, f=_garbage(f, lower))
    np.testing.assert_array_equal(hd["status"], [0, 1, 0, 1, 0])
    _same(hd, cpu, dtype)
    ok = [0, 2, 4]
    np.testing.assert_array_equal(hd["out"][ok], _t(hd["out"][ok]))
    l = _f64(f[ok]) if lower else _t(_f64(f[ok]))
    _close(hd["out"][ok], np.linalg.inv(l @ _t(l)), dtype)


@pytest.mark.parametrize("n", ORDERS)
@pytest.mark.parametrize("lower", [1, 0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_potri_vjp(dtype, lower, n):
    rng = np.random.default_rng(60 * n + lower)
    batch = 3
    f = _factor(rng, batch, n, lower).astype(dtype)
    x = _run("potri", dtype, {"out": (batch, n, n), "status": (batch,)}, True, dict(lower=lower, batch=batch, n=n, f=f))["out"]
    g = rng.standard_normal((batch, n, n)).astype(dtype)
    hd, cpu = _both("potri_vjp", dtype, {"gf": (batch, n, n)}, lower=lower, batch=batch, n=n, f=_garbage(f, lower), x=x, g=g)
    _same(hd, cpu, dtype)
    assert np.all(hd["gf"][:, _unread(n, lower)] == 0)
    # X = A⁻¹: dX = −X dA X, dA = dL Lᵀ + L dLᵀ
    l = _f64(f) if lower else _t(_f64(f))
    df = _masked(rng.standard_normal((batch, n, n)), lower)
    dl = df if lower else _t(df)
    dx = -_f64(x) @ (dl @ _t(l) + l @ _t(dl)) @ _f64(x)
    _adjoint([(g, dx)], [(hd["gf"], df)], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_beyond_max_order(dtype):
    """The entries with order-sized scratch write NaN beyond kMaxOrder."""
    n, k, batch = MAX_ORDER + 1, 2, 1
    rng = np.random.default_rng(0)
    f, b = _potrs_inputs(rng, batch, n, k, True, dtype)
    args = dict(lower=1, batch=batch, n=n, k=k, f=f, b=b, x=b, g=b)
    out = _run("potrs_vjp", dtype, {"gf": (batch, n, n), "gb": (batch, n, k)}, False, args)
    assert np.isnan(out["gf"]).all() and np.isnan(out["gb"]).all()
    out = _run("potri_vjp", dtype, {"gf": (batch, n, n)}, False, dict(lower=1, batch=batch, n=n, f=f, x=f, g=f))
    assert np.isnan(out["gf"]).all()


# ---- sumlogdiag -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", ORDERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sumlogdiag(dtype, n):
    rng = np.random.default_rng(70 * n)
    batch = 3
    a = _factor(rng, batch, n, True).astype(dtype)
    a[:, ~np.eye(n, dtype=bool)] = np.nan  # only the diagonal is read
    diag = _f64(np.diagonal(a, axis1=-2, axis2=-1))
    hd, cpu = _both("sumlogdiag", dtype, {"out": (batch,)}, batch=batch, n=n, a=a)
    _same(hd, cpu, dtype)
    _close(hd["out"], np.log(diag).sum(-1), dtype)
    g = rng.standard_normal(batch).astype(dtype)
    hd, cpu = _both("sumlogdiag_vjp", dtype, {"ga": (batch, n, n)}, batch=batch, n=n, a=a, g=g)
    _same(hd, cpu, dtype)
    want = np.zeros((batch, n, n))
    want[:, np.arange(n), np.arange(n)] = _f64(g)[:, None] / diag
    _close(hd["ga"], want, dtype)


# ---- trsm, trmm -----------------------------------------------------------------------------------
def _triangular_case(rng, batch, n, k, flags, dtype):
    """(rows, cols, a, b): a triangular A (its unread triangle zero) and a B of the shape of ``flags``."""
    right, lower = bool(flags & 2), bool(flags & 4)
    rows, cols = (k, n) if right else (n, k)
    a = _triangular(rng, batch, n, lower).astype(dtype)
    b = rng.standard_normal((batch, rows, cols)).astype(dtype)
    return rows, cols, a, b


def _op(a, flags):
    a = _f64(a)
    return _t(a) if flags & 1 else a


def _trsm_ref(a, b, flags, alpha):
    op = _op(a, flags)
    if flags & 2:  # α B op(A)⁻¹ = (α op(A)⁻ᵀ Bᵀ)ᵀ
        return alpha * _t(np.linalg.solve(_t(op), _t(_f64(b))))
    return alpha * np.linalg.solve(op, _f64(b))


def _trmm_ref(a, b, flags, alpha):
    op = _op(a, flags)
    return alpha * (_f64(b) @ op if flags & 2 else op @ _f64(b))


@pytest.mark.parametrize("n", ORDERS)
@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_trsm(dtype, flags, n):
    rng = np.random.default_rng(100 * n + flags)
    batch, lower = 5, bool(flags & 4)
    for k in (0, 1, 5):
        for alpha in (1.0, -0.7):
            rows, cols, a, b = _triangular_case(rng, batch, n, k, flags, dtype)
            a[1, n // 2, n // 2] = 0.0  # singular
            a[3][_corner(n, lower)] = np.nan
            outs = {"out": (batch, rows, cols), "status": (batch,)}
            hd, cpu = _both("trsm", dtype, outs, flags=flags, alpha=alpha, batch=batch, rows=rows, cols=cols, a=_garbage(a, lower), b=b)
            np.testing.assert_array_equal(hd["status"], [0, 1, 0, 1, 0] if k else [0, 0, 0, 1, 0])
            _same(hd, cpu, dtype)
            ok = [0, 2, 4]
            _close(hd["out"][ok], _trsm_ref(a[ok], b[ok], flags, alpha), dtype)


@pytest.mark.parametrize("n", ORDERS)
@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_trsm_vjp(dtype, flags, n):
    rng = np.random.default_rng(200 * n + flags)
    batch, lower = 3, bool(flags & 4)
    for k in (0, 1, 5):
        for alpha in (1.0, -0.7):
            rows, cols, a, b = _triangular_case(rng, batch, n, k, flags, dtype)
            params = dict(flags=flags, alpha=alpha, batch=batch, rows=rows, cols=cols)
            x = _run("trsm", dtype, {"out": b.shape, "status": (batch,)}, True, dict(params, a=a, b=b))["out"]
            g = rng.standard_normal(b.shape).astype(dtype)
            hd, cpu = _both("trsm_vjp", dtype, {"ga": a.shape, "gb": b.shape}, **params, a=_garbage(a, lower), x=x, g=g)
            _same(hd, cpu, dtype)
            assert np.all(hd["ga"][:, _unread(n, lower)] == 0)
            # X = α op(A)⁻¹ B: dX = op(A)⁻¹ (α dB − op(dA) X); from the right (α dB − X op(dA)) op(A)⁻¹
            da = _masked(rng.standard_normal(a.shape), lower)
            db = rng.standard_normal(b.shape)
            op, dop, xf = _op(a, flags), _op(da, flags), _f64(x)
            if flags & 2:
                dx = _t(np.linalg.solve(_t(op), _t(alpha * db - xf @ dop)))
            else:
                dx = np.linalg.solve(op, alpha * db - dop @ xf)
            _adjoint([(g, dx)], [(hd["ga"], da), (hd["gb"], db)], dtype)


@pytest.mark.parametrize("n", ORDERS)
@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_trmm(dtype, flags, n):
    rng = np.random.default_rng(300 * n + flags)
    batch, lower = 3, bool(flags & 4)
    for k in (0, 1, 5):
        for alpha in (1.0, -0.7):
            rows, cols, a, b = _triangular_case(rng, batch, n, k, flags, dtype)
            params = dict(flags=flags, alpha=alpha, batch=batch, rows=rows, cols=cols)
            hd, cpu = _both("trmm", dtype, {"out": b.shape}, **params, a=_garbage(a, lower), b=b)
            _same(hd, cpu, dtype)
            _close(hd["out"], _trmm_ref(a, b, flags, alpha), dtype)


@pytest.mark.parametrize("n", ORDERS)
@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_trmm_vjp(dtype, flags, n):
    rng = np.random.default_rng(400 * n + flags)
    batch, lower = 3, bool(flags & 4)
    for k in (0, 1, 5):
        for alpha in (1.0, -0.7):
            rows, cols, a, b = _triangular_case(rng, batch, n, k, flags, dtype)
            params = dict(flags=flags, alpha=alpha, batch=batch, rows=rows, cols=cols)
            g = rng.standard_normal(b.shape).astype(dtype)
            hd, cpu = _both("trmm_vjp", dtype, {"ga": a.shape, "gb": b.shape}, **params, a=_garbage(a, lower), b=b, g=g)
            _same(hd, cpu, dtype)
            assert np.all(hd["ga"][:, _unread(n, lower)] == 0)
            # X = α op(A) B: dX = α (op(dA) B + op(A) dB); from the right α (dB op(A) + B op(dA))
            da = _masked(rng.standard_normal(a.shape), lower)
            db = rng.standard_normal(b.shape)
            op, dop, bf = _op(a, flags), _op(da, flags), _f64(b)
            dx = alpha * (db @ op + bf @ dop if flags & 2 else dop @ bf + op @ db)
            _adjoint([(g, dx)], [(hd["ga"], da), (hd["gb"], db)], dtype)


@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_triangular_alpha_zero(dtype, flags):
    """α = 0: zeros without reading A or B, as reference BLAS gives (a singular A, NaN in A's
    read triangle and in B do not matter)."""
    rng = np.random.default_rng(flags)
    n, k, batch, lower = 4, 3, 2, bool(flags & 4)
    rows, cols, a, b = _triangular_case(rng, batch, n, k, flags, dtype)
    a[0, 1, 1] = 0.0
    a[1][_corner(n, lower)] = np.nan
    b[1, 0, 0] = np.nan
    params = dict(flags=flags, alpha=0.0, batch=batch, rows=rows, cols=cols, a=_garbage(a, lower))
    hd, cpu = _both("trsm", dtype, {"out": b.shape, "status": (batch,)}, **params, b=b)
    _same(hd, cpu, dtype)
    assert np.all(hd["out"] == 0) and np.all(hd["status"] == 0)
    hd, cpu = _both("trmm", dtype, {"out": b.shape}, **params, b=b)
    _same(hd, cpu, dtype)
    assert np.all(hd["out"] == 0)
    # the CPU's gemm (OpenBLAS) may carry a NaN of B or Ḡ through α = 0: compared at finite ones
    outs = {"ga": a.shape, "gb": b.shape}
    hd = _run("trmm_vjp", dtype, outs, False, dict(params, b=b, g=b))
    assert np.all(hd["ga"] == 0) and np.all(hd["gb"] == 0)
    b = np.nan_to_num(b)
    hd, cpu = _both("trmm_vjp", dtype, outs, **params, b=b, g=b)
    _same(hd, cpu, dtype)
    assert np.all(hd["ga"] == 0) and np.all(hd["gb"] == 0)
