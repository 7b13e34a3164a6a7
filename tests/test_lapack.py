"""The compiled CPU kernel layer (xlinalg.lapack): every compiled rule agrees with the pure
Array-API rule it replaces, on every flag combination, both dtypes, orders on both sides of the
unblocked/blocked switches and empty inputs; failures, the switch and the build fallback.

Tests that need the layer skip where it is not built or is switched off
(``XLINALG_KERNELS=python``); the rest of the suite runs through it whenever it is on.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xlinalg
from tests.cases import pure_rules
from xlinalg import lapack
from xlinalg.core import apply, operators, samples
from xlinalg.lapack.rules import RULES, SAVING

ROOT = Path(__file__).resolve().parents[1]
needs_layer = pytest.mark.skipif(lapack.library() is None, reason="compiled kernel layer not active")


def _assert_as_alone(got, alone, n: int, own_kernel: bool, err_msg: str):
    """A batch entry ``got`` (of a matrix of order ``n``) against the same matrix computed
    ``alone``: bit for bit where the layer's own kernels ran (``own_kernel``: they round the
    same wherever a matrix sits), to rounding (n units in the last place of its largest entry)
    where LAPACK and the BLAS did: an OpenBLAS may round by where the matrix sits in memory
    (seen with its generic kernels on a CPU it does not know)."""
    if own_kernel:
        np.testing.assert_array_equal(got, alone, err_msg=err_msg)
        return
    finite = np.abs(alone)[np.isfinite(alone)]
    scale = finite.max() if finite.size else 1.0
    np.testing.assert_allclose(got, alone, rtol=0, atol=n * np.finfo(alone.dtype).eps * scale, err_msg=err_msg)


#: orders: empty, 1, unblocked small (≤ 24), LAPACK forward, blocked reverse (> 64, with a
#: remainder block) and two full blocks plus a remainder
ORDERS = [(0, (2,)), (1, ()), (3, (4,)), (8, (3, 2)), (30, (2,)), (150, ()), (200, (2,))]
CASES = [
    pytest.param(name, params, id=f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items())}")
    for name in RULES
    for params in operators()[name].param_grid()
]


@needs_layer
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,params", CASES)
def test_compiled_rules_match_pure_rules(name, params, dtype):
    _check_against_pure_rules(name, params, dtype, ORDERS)


#: the forward and the reverse of one operator on two matrices of order 0, in every parameter set
_EMPTY_FIRST = """
import sys
import numpy as np
from xlinalg.core import apply, operators, samples
name, dtype = sys.argv[1:]
op = operators()[name]
for params in op.param_grid():
    arrays, _ = samples.draw(op, np.random.default_rng(0), [(2,)], 0, params)
    call = apply.prepare(op, [a.astype(dtype) for a in arrays], params)
    outputs, _ = call.kern.compiled(op, "forward", call.inputs)(call.inputs, params=call.params)
    cotangents = tuple(np.ones(y.shape, dtype) for y in outputs)
    call.kern.compiled(op, "vjp", call.inputs)(call.inputs, tuple(outputs), cotangents, params=call.params)
"""


@needs_layer
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(RULES))
def test_empty_matrices_as_the_first_calls_of_a_process(name, dtype):
    """Matrices of order 0 touch no memory: each operator's compiled forward and reverse as the
    first calls of a fresh process, before any scratch buffer exists, where a read or write
    outside the empty arrays faults (in the suite's own processes it could land unnoticed in
    an earlier call's buffer)."""
    env = {**os.environ, "XLINALG_KERNELS": "compiled"}
    run = subprocess.run([sys.executable, "-c", _EMPTY_FIRST, name, dtype], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, f"{name} {dtype}: exit status {run.returncode}\n{run.stderr[-2000:]}"


#: orders of triangular solves past the first split into halves (src/blas.hpp: kSolveBlock = 128):
#: one split with odd halves, two levels, three levels with uneven halves
SOLVE_ORDERS = [(129, ()), (300, ()), (517, ())]


@needs_layer
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,params", [case for case in CASES if case.values[0] in ("trsm", "potrs")])
def test_triangular_solves_by_halves_match_pure_rules(name, params, dtype):
    _check_against_pure_rules(name, params, dtype, SOLVE_ORDERS)


def _check_against_pure_rules(name, params, dtype, orders):
    """The compiled forward and VJP of ``name`` against the pure rules at each ``(order, batch)``."""
    op = operators()[name]
    rng = np.random.default_rng(7)
    eps = np.finfo(dtype).eps
    for n, batch in orders:
        arrays, kappa = samples.draw(op, rng, [batch], n, params)  # garbage in unread triangles
        arrays = [a.astype(dtype) for a in arrays]
        before = [a.copy() for a in arrays]
        call = apply.prepare(op, arrays, params)
        forward = call.kern.compiled(op, "forward", call.inputs)
        vjp = call.kern.compiled(op, "vjp", call.inputs)
        outputs, status = forward(call.inputs, params=call.params)
        cotangents = tuple(rng.standard_normal(y.shape).astype(dtype) for y in outputs)
        grads, _ = vjp(call.inputs, tuple(outputs), cotangents, params=call.params)
        want_outputs, want_grads = pure_rules(call, cotangents)
        assert status is None or not status.any()
        tol = 20 * max(n, 1) * eps * kappa
        for got, want in zip((*outputs, *grads), (*want_outputs, *want_grads)):
            assert got.shape == want.shape and got.dtype == want.dtype
            scale = max(float(np.max(np.abs(want))), 1.0) if want.size else 1.0
            err = float(np.max(np.abs(got - want))) / scale if want.size else 0.0
            assert err <= tol, f"{name} {params} n={n} {dtype}: relative error {err:.2e} > {tol:.2e}"
        for a, b in zip(arrays, before):
            np.testing.assert_array_equal(a, b)  # inputs untouched


def _unfit(g):
    """Arrays that cannot take the cotangent ``g``: another dtype, Fortran order, read-only."""
    other = np.full(g.shape, 7, np.float32 if g.dtype == np.float64 else np.float64)
    fortran = np.asfortranarray(np.full(g.shape[::-1], 7, g.dtype).T) if g.ndim >= 2 and min(g.shape[-2:]) > 1 else None
    readonly = np.full(g.shape, 7, g.dtype)
    readonly.flags.writeable = False
    return [x for x in (other, fortran, readonly) if x is not None]


@needs_layer
@pytest.mark.parametrize("saving", [False, True])
@pytest.mark.parametrize("name", sorted(RULES))
def test_reverse_writes_the_cotangents_into_out_where_they_fit(name, saving):
    """``out`` of a compiled reverse: a fitting array *is* the cotangent, written with exactly
    the values of a reverse without ``out``; an unfit one (dtype, order, read-only) is left
    alone and the cotangent is a new array."""
    if saving and name not in SAVING:
        pytest.skip("no saving rules")
    op = operators()[name]
    params = op.param_grid()[-1]
    rng = np.random.default_rng(11)
    arrays, _ = samples.draw(op, rng, [(2,)], 9, params)
    call = apply.prepare(op, arrays, params)
    kind = call.kern.compiled_saving if saving else call.kern.compiled
    outputs, *rest = kind(op, "forward", call.inputs)(call.inputs, params=call.params)
    groups = (call.inputs, outputs, tuple(rng.standard_normal(y.shape) for y in outputs))
    groups = (rest[1], *groups) if saving else groups
    reverse = kind(op, "vjp", call.inputs)
    want, _ = reverse(*groups, params=call.params)
    out = [np.full(g.shape, np.nan, g.dtype) for g in want]
    got, _ = reverse(*groups, params=call.params, out=out)
    for g, o, w in zip(got, out, want):
        assert g is o
        np.testing.assert_array_equal(g, w)
    for i, w in enumerate(want):
        for unfit in _unfit(w):
            before = unfit.copy()
            got, _ = reverse(*groups, params=call.params, out=[unfit if j == i else None for j in range(len(want))])
            assert got[i] is not unfit
            np.testing.assert_array_equal(got[i], w)
            np.testing.assert_array_equal(unfit, before)


@needs_layer
def test_vjp_out_of_a_broadcast_input_gets_the_summed_cotangent():
    """:func:`apply.vjp` with ``out``: an input broadcast over the batch has its cotangent summed
    into a new array (the kernel's does not fit ``out``), the others are written into theirs."""
    op = operators()["trsm"]
    rng = np.random.default_rng(2)
    (a, b), _ = samples.draw(op, rng, [(3,)], 6, {})
    a = a[:1]  # broadcast against b's batch of 3
    call = apply.prepare(op, [a, b], {})
    (x,) = apply.forward(call)
    g = rng.standard_normal(x.shape)
    want = apply.vjp(call, (x,), (g,))
    out = [np.zeros_like(a), np.zeros_like(b)]
    got = apply.vjp(call, (x,), (g,), out=out)
    assert got[0] is not out[0] and got[1] is out[1]
    assert not out[0].any()
    for u, w in zip(got, want):
        np.testing.assert_array_equal(u, w)


@needs_layer
@pytest.mark.parametrize("name", [n for n in RULES if operators()[n].failure])
@pytest.mark.parametrize("n", [3, 40])
def test_failing_entries_are_nan_and_flagged(name, n):
    op = operators()[name]
    rng = np.random.default_rng(3)
    params = op.param_grid()[0]
    arrays, _ = samples.draw(op, rng, [(3,)], n, params)
    broken = op.breaks(tuple(a[1:2] for a in arrays), params)
    arrays = [np.concatenate([a[:1], b, a[2:]]) for a, b in zip(arrays, broken)]
    call = apply.prepare(op, arrays, params)
    outputs, status = call.kern.compiled(op, "forward", call.inputs)(call.inputs, params=call.params)
    assert status.tolist() == [0, 1, 0]
    assert np.all(np.isnan(outputs[0][1])) and np.all(np.isfinite(outputs[0][[0, 2]]))
    with pytest.raises(xlinalg.LinAlgError, match=r"batch index \(1,\)") as info:
        getattr(xlinalg, name)(*arrays, **params)
    assert op.failure in str(info.value)


@needs_layer
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("n", [1, 5, 8, 40, 41])
def test_small_factors_are_each_matrix_factored_alone(n, lower, dtype):
    """Small orders factor several matrices side by side (src/cholesky.hpp: potrf_lanes, up to
    order 40; 41 is past it): each entry of a batch (three groups, the last partial) gets the
    factor it gets alone, bit for bit (past order 40, where the BLAS runs: to rounding), close to
    NumPy's, its unread triangle zero; failing entries (not positive definite, NaN or inf in the
    read triangle, its diagonal included) are NaN and flagged, in any lane, and the entries beside
    them are untouched; two threads give one thread's results."""
    forward = RULES["potrf"]["forward"]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((21, n, n))
    a = (x @ np.swapaxes(x, -1, -2) / n + np.eye(n)).astype(dtype)
    read = (lambda m: m) if lower else (lambda m: np.swapaxes(m, -1, -2))  # the read triangle as lower
    a[0] = -np.eye(n, dtype=dtype)
    read(a[7])[n - 1, 0] = np.nan
    read(a[8])[n - 1, 0] = np.inf if n > 1 else -1.0
    read(a[15])[0, 0] = np.inf
    read(a[20])[n - 1, n - 1] = -5.0
    failing = [0, 7, 8, 15, 20]
    params = {"lower": lower}
    (got,), status = forward((a,), params, 1)
    assert status.tolist() == [int(i in failing) for i in range(21)]
    assert np.isnan(got[failing]).all()
    tol = 1e-12 if dtype == "float64" else 1e-5
    for i in sorted(set(range(21)) - set(failing)):
        (alone,), _ = forward((a[i : i + 1],), params, 1)
        _assert_as_alone(got[i], alone[0], n, n <= 40, f"entry {i}")
        want = np.linalg.cholesky(read(a[i]).astype(np.float64))
        np.testing.assert_allclose(read(got[i]), want, rtol=tol, atol=tol, err_msg=f"entry {i}")
        assert not np.triu(read(got[i]), 1).any()
    many = np.concatenate([a] * 50)  # enough work for two threads
    (one,), s1 = forward((many,), params, 1)
    (two,), s2 = forward((many,), params, 2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(s1, s2)


@needs_layer
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("n", [1, 5, 8, 40, 41])
def test_small_factor_gradients_are_each_matrix_differentiated_alone(n, lower, dtype):
    """Small orders run the Cholesky reverse on several matrices side by side
    (src/cholesky.hpp: potrf_vjp_lanes, up to order 40; 41 is past it): each entry of a batch
    (three groups, the last partial) gets the gradient it gets alone, bit for bit (past order 40,
    the blocked reverse's BLAS calls: to rounding), close to
    sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹) in float64 (only the named triangles of L and L̄ read); a NaN factor
    spoils its own entry only; two threads give one thread's results."""
    vjp = RULES["potrf"]["vjp"]
    rng = np.random.default_rng(8)
    x = rng.standard_normal((21, n, n))
    chol = np.linalg.cholesky(x @ np.swapaxes(x, -1, -2) / n + np.eye(n))
    lbar = rng.standard_normal((21, n, n))
    read = (lambda m: m) if lower else (lambda m: np.swapaxes(m, -1, -2))  # the named triangle as lower
    f = read(chol + np.triu(rng.standard_normal((21, n, n)), 1)).astype(dtype)  # unread triangle: noise
    g = read(lbar).astype(dtype)
    read(f[10])[n - 1, 0] = np.nan
    params = {"lower": lower}

    def grad(f, g, threads=1):
        (ga,) = vjp((f,), (f,), (g,), params, threads)
        return ga

    got = grad(f, g)
    assert np.isnan(got[10]).any()
    tol = 1e-10 if dtype == "float64" else 2e-3
    for i in sorted(set(range(21)) - {10}):
        _assert_as_alone(got[i], grad(f[i : i + 1], g[i : i + 1])[0], n, n <= 40, f"entry {i}")
        l, gl = np.tril(read(f[i]).astype(np.float64)), np.tril(read(g[i]).astype(np.float64))
        p = np.tril(l.T @ gl)
        p[np.diag_indices(n)] /= 2
        linv = np.linalg.inv(l)
        s = linv.T @ p @ linv
        np.testing.assert_allclose(got[i], (s + s.T) / 2, rtol=tol, atol=tol * np.abs(s).max(), err_msg=f"entry {i}")
    many_f, many_g = np.concatenate([f] * 50), np.concatenate([g] * 50)  # enough work for two threads
    np.testing.assert_array_equal(grad(many_f, many_g, 1), grad(many_f, many_g, 2))


@needs_layer
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [1, 5, 8, 9, 16, 17, 32, 33])
def test_small_lu_factors_are_each_matrix_factored_alone(n, dtype):
    """Small orders compute LU factors of several matrices side by side (src/inverse.hpp:
    lu_factor_lanes, up to order 32; 33 is past it) and the inverse from them row by row
    (small_lu_inverse, rows padded to 8, 16 or 32 values), in ?getrf's layout: each entry of a
    batch (three groups, the last partial) gets the det, slogdet, inverse and kept factors it gets
    alone, bit for bit (past order 32, LAPACK's: to rounding); the factors are SciPy's (the same
    pivots, P L U = A) and the inverse NumPy's; singular entries (a zero row, a zero matrix) and
    non-finite ones fail in any lane, the entries beside them untouched; two threads give one
    thread's results."""
    import scipy.linalg

    rng = np.random.default_rng(9)
    a = rng.standard_normal((21, n, n)).astype(dtype)
    a[3, -1] = 0
    a[12, 0, n - 1] = np.nan
    a[20] = 0
    singular, nonfinite = {3, 20}, {12}

    def run(a, threads=1):
        (det,), _, (lu, pivots) = SAVING["det"]["forward"]((a,), {}, threads)
        (sign, logdet), _ = RULES["slogdet"]["forward"]((a,), {}, threads)
        (inv,), status = RULES["inverse"]["forward"]((a,), {}, threads)
        return det, sign, logdet, lu, pivots, inv, status

    got = run(a)
    det, sign, logdet, lu, pivots, inv, status = got
    assert status.tolist() == [int(i in singular | nonfinite) for i in range(21)]
    assert (det[sorted(singular)] == 0).all() and (sign[sorted(singular)] == 0).all()
    assert np.isnan(det[12]) and np.isnan(sign[12]) and np.isnan(inv[12]).all()
    for i in range(21):
        alone = run(a[i : i + 1])
        for part, one in zip(got, alone):
            exact = n <= 32 or not np.issubdtype(one.dtype, np.floating)  # pivots and status
            _assert_as_alone(part[i], one[0], n, exact, f"entry {i}")
    tol = 1e-12 if dtype == "float64" else 1e-4
    for i in sorted(set(range(21)) - singular - nonfinite):
        want_lu, want_piv = scipy.linalg.lu_factor(a[i].astype(np.float64))
        np.testing.assert_array_equal(pivots[i], want_piv + 1, err_msg=f"entry {i}")
        np.testing.assert_allclose(lu[i].T, want_lu, rtol=tol, atol=tol * np.abs(want_lu).max(), err_msg=f"entry {i}")
        np.testing.assert_allclose(inv[i] @ a[i], np.eye(n), atol=100 * tol * np.linalg.cond(a[i].astype(np.float64)))
        want_inv = np.linalg.inv(a[i].astype(np.float64))
        np.testing.assert_allclose(inv[i], want_inv, rtol=0, atol=100 * tol * np.linalg.cond(a[i].astype(np.float64)) * np.abs(want_inv).max())
    many = np.concatenate([a] * 50)  # enough work for two threads
    for one, two in zip(run(many, 1), run(many, 2)):
        np.testing.assert_array_equal(one, two)


@needs_layer
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_small_products_match_float64_products(dtype):
    """Products of orders up to 32 run without the BLAS (src/small_gemm.hpp: operands packed into
    column panels of 8, 16 and 32 (float64: 16) values, rows in register blocks, 8×8 / 4×4 tile
    transposes): every transpose flag, orders on both sides of each panel and tile width and of
    33 (the BLAS again), alpha and beta; against float64 NumPy products. beta = 0 leaves the output's
    old contents unread (NaN there stays out) and alpha = 0 reads neither operand (the BLAS's
    rules), so NaN operands give beta C."""
    lib = lapack.library()
    rng = np.random.default_rng(11)
    tol = 1e-12 if dtype == "float64" else 1e-5
    orders = (1, 3, 4, 7, 8, 9, 16, 17, 24, 31, 32, 33)
    for m, p, k in [(m, p, k) for m in orders for p in orders for k in (1, 5, 8, 12, 32, 33)][::3]:
        for flags in range(4):
            ta, tb = flags & 1, flags & 2
            a = rng.standard_normal((2, k, m) if ta else (2, m, k)).astype(dtype)
            b = rng.standard_normal((2, p, k) if tb else (2, k, p)).astype(dtype)
            c = rng.standard_normal((2, m, p)).astype(dtype)
            product = (a.swapaxes(-1, -2) if ta else a).astype(np.float64) @ (b.swapaxes(-1, -2) if tb else b)
            for cc, beta in ((c, -1.25), (None, 0.0)):
                out = np.full((2, m, p), np.nan, dtype)
                lib.gemm(a, b, cc, out, flags, 1, 0.75, beta)
                want = 0.75 * product + (beta * c if cc is not None else 0)
                scale = np.abs(a).max() * np.abs(b).max() * k + np.abs(c).max()
                np.testing.assert_allclose(out, want, rtol=0, atol=tol * scale, err_msg=f"m={m} p={p} k={k} flags={flags} beta={beta}")
    for n in (8, 64):  # alpha = 0 through the BLAS's order too (an OpenBLAS multiplies all the same)
        a, b, c = np.full((1, n, n), np.nan, dtype), np.full((1, n, n), np.nan, dtype), np.ones((1, n, n), dtype)
        out = np.empty_like(c)
        lib.gemm(a, b, c, out, 0, 1, 0.0, 2.0)
        np.testing.assert_array_equal(out, 2 * c, err_msg=f"n={n}")


@needs_layer
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_small_triangular_products_and_solves_match_float64(dtype):
    """Triangular products and solves with triangles up to order 32 run without the BLAS
    (src/small_triangular.hpp: B's rows padded to 8, 16 or 32 values; B's other dimension in
    parts of up to 32): every flag (transpose, right side, lower) at orders on both sides of each
    padding width and of 33 (the BLAS again), on square and oblong B (its other dimension up to
    three parts, the last partial), the other triangle of A junk (never read); against float64
    NumPy."""
    lib = lapack.library()
    rng = np.random.default_rng(12)
    tol = 1e-12 if dtype == "float64" else 1e-5
    orders = (1, 3, 8, 9, 16, 17, 32, 33)
    for n, k in [(n, k) for n in orders for k in orders][::2] + [(5, 70), (32, 70), (33, 70)]:
        for flags in range(8):
            trans, right, lower = flags & 1, flags & 2, flags & 4
            a = (rng.standard_normal((2, n, n)) + 2 * n * np.eye(n)).astype(dtype)
            b = rng.standard_normal((2, k, n) if right else (2, n, k)).astype(dtype)
            tri = (np.tril if lower else np.triu)(a.astype(np.float64))
            m = tri.swapaxes(-1, -2) if trans else tri
            product = 0.75 * (b @ m if right else m @ b)
            out = np.full_like(b, np.nan)
            lib.trmm(a, b, out, flags, 1, 0.75)
            scale = np.abs(a).max() * np.abs(b).max() * n
            np.testing.assert_allclose(out, product, rtol=0, atol=tol * scale, err_msg=f"trmm n={n} k={k} flags={flags}")
            solved = np.full_like(b, np.nan)
            status = np.zeros(2, np.int32)
            lib.trsm(a, b, solved, status, flags, 1, 0.75)
            want = 0.75 * (np.linalg.solve(m.swapaxes(-1, -2), b.swapaxes(-1, -2)).swapaxes(-1, -2) if right else np.linalg.solve(m, b))
            np.testing.assert_allclose(solved, want, rtol=0, atol=tol * np.abs(b).max() * n, err_msg=f"trsm n={n} k={k} flags={flags}")


@needs_layer
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("m,n", [(1, 1), (1, 6), (3, 5), (8, 8), (7, 32), (32, 32), (33, 33)])
def test_small_lq_factors_are_numpys(m, n, dtype):
    """Up to 32 columns gelqf reflects along the rows itself (src/lq.hpp: small_lq; 33 columns is
    ?geqrf and ?orgqr again): L and Q are NumPy's QR of Aᵀ transposed, signs made diag(L) ≥ 0,
    and rows of Q orthonormal, also where the entries are subnormal (the reflectors scaled up
    first); a zero row (rank deficient: L_ii = 0) fails its entry alone. Two equal rows make
    L_11 zero in exact arithmetic: whether it comes out exactly zero (the entry fails alone) or a
    rounding residue (it does not, as LAPACK's ?geqrf leaves it) depends on the rounding of the
    instruction set that runs (float64 8×8 gives an exact zero with ``XLINALG_ISA=baseline``,
    a residue with AVX2's fused multiply-adds); either way the other entries are unaffected."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((5, m, n)).astype(dtype)
    a[1, m // 2] = 0
    if m > 1:
        a[2, 1] = a[2, 0]
    a[4] = np.ldexp(a[4], np.finfo(dtype).minexp - 6)
    (q, l), status = RULES["gelqf"]["forward"]((a,), {}, 1)
    assert status[[0, 1, 3, 4]].tolist() == [0, 1, 0, 0]
    for i in (1, 2) if status[2] else (1,):
        assert np.isnan(q[i]).all() and np.isnan(l[i]).all()
    tol = 1e-12 if dtype == "float64" else 1e-5
    for i in (0, 3, 4):
        want_q, want_r = np.linalg.qr(a[i].astype(np.float64).T)
        signs = np.where(np.diagonal(want_r) < 0, -1.0, 1.0)
        np.testing.assert_allclose(l[i], (want_r * signs[:, None]).T, rtol=0, atol=tol * np.abs(a[i]).max() * n)
        np.testing.assert_allclose(q[i], (want_q * signs).T, rtol=0, atol=tol * n * 10)
        np.testing.assert_allclose(q[i] @ q[i].T, np.eye(m), rtol=0, atol=tol * n)
    if not status[2]:
        np.testing.assert_allclose(l[2] @ q[2], a[2], rtol=0, atol=tol * np.abs(a[2]).max() * n)


def _small_eigen_batch(n, dtype, rng):
    """Symmetric test matrices of order ``n`` (their upper triangles junk, never read): random;
    a NaN in the lower triangle; diagonal with a repeated value (no reflection, T diagonal from
    the start); the zero matrix; block diagonal (T splits in the middle); an eigenvalue twice;
    random at 1e±300 (1e±30 in float32), a diagonal of subnormal values (scaled by powers of
    two beyond the normal range) and the identity with one subnormal entry below the diagonal
    (its reflector scaled up first)."""
    huge, small = (1e300, 1e-300) if dtype == np.float64 else (1e30, 1e-30)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    x = rng.standard_normal((n, n))
    sym = (x + x.T) / 2
    blocks = sym.copy()
    blocks[: n // 2, n // 2 :] = blocks[n // 2 :, : n // 2] = 0
    mats = [
        sym,
        sym,
        np.diag(np.r_[3.0, np.arange(n - 1.0)[::-1]]),
        np.zeros((n, n)),
        blocks,
        (q * np.r_[2.0, 2.0, np.arange(n - 2.0)][:n]) @ q.T,
        huge * sym,
        small * sym,
        np.diag(np.ldexp(np.arange(1.0, n + 1), np.finfo(dtype).minexp - 12)),
        np.eye(n),
    ]
    a = np.stack(mats).astype(dtype)
    a[1, n - 1, 0] = np.nan
    a[-1, n - 1, 0] = np.ldexp(1.0, np.finfo(np.float64).minexp - 12)  # 0 in float32
    upper = np.triu_indices(n, 1)
    a[:, upper[0], upper[1]] = rng.standard_normal(len(upper[0]))  # junk, never read
    return a


@needs_layer
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 2, 3, 8, 17, 32, 64, 96, 97])
def test_small_eigendecompositions_are_numpys(n, dtype):
    """Up to order 96 syevd runs its own tridiagonalization and QL (src/small_eigen.hpp; 97 is
    ?syevd): the eigenvalues are NumPy's of the lower triangle (float32 computed in float64 and
    rounded), the rows of U orthonormal eigenvectors (residual ‖A uᵢ − λᵢ uᵢ‖ of rounding size)
    with their largest-magnitude entry positive; a NaN makes its entry alone NaN. Matrices whose
    QL iterations interleave get what each gets alone, bit for bit (from order 97, ?syevd's
    eigenvalues to rounding; its eigenvectors of a repeated eigenvalue may differ by a rotation,
    and the checks of each entry below hold them to their own matrix)."""
    a = _small_eigen_batch(n, dtype, np.random.default_rng(n))
    (u, w), _ = RULES["syevd"]["forward"]((a,), {}, 1)
    for i in range(len(a)):
        (ui, wi), _ = RULES["syevd"]["forward"]((a[i : i + 1],), {}, 1)
        _assert_as_alone(w[i], wi[0], n, n <= 96, f"entry {i}")
        if n <= 96:
            np.testing.assert_array_equal(ui[0], u[i])
    assert np.isnan(u[1]).all() and np.isnan(w[1]).all()
    eps = np.finfo(dtype).eps
    for i in [0, *range(2, len(a))]:
        lower = np.tril(a[i].astype(np.float64))
        sym = lower + np.tril(lower, -1).T
        want = np.linalg.eigh(sym)[0]
        scale = np.abs(want).max() if n else 0
        ui, wi = u[i].astype(np.float64), w[i].astype(np.float64)
        np.testing.assert_allclose(wi, want, rtol=0, atol=4 * n * eps * scale)
        assert np.all(np.diff(wi) >= 0)
        np.testing.assert_allclose(ui @ ui.T, np.eye(n), rtol=0, atol=4 * n * eps)
        np.testing.assert_allclose(ui @ sym, wi[:, None] * ui, rtol=0, atol=4 * n * eps * scale)
        biggest = np.argmax(np.abs(ui), axis=1)
        assert np.all(ui[np.arange(n), biggest] > 0)


SAVING_CASES = [case for case in CASES if case.values[0] in SAVING]


@needs_layer
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,params", SAVING_CASES)
def test_saving_rules_give_the_plain_rules_results(name, params, dtype):
    """A forward that keeps residuals gives the plain forward's outputs, and the reverse that
    reads them the plain reverse's gradients, bit for bit (the same LAPACK calls on the same
    data); the residuals survive the reverse (a pullback may run twice). Failing entries
    included: a singular one (a zero row) and a non-finite one."""
    op = operators()[name]
    rng = np.random.default_rng(5)
    for n, batch in ORDERS:
        arrays, _ = samples.draw(op, rng, [(*batch, 3)], n, params)
        arrays = [x.astype(dtype) for x in arrays]
        if n:
            arrays[0][..., 1, 0, :] = 0.0
            arrays[0][..., 2, 0, 0] = np.nan
        call = apply.prepare(op, arrays, params)
        outputs, status = call.kern.compiled(op, "forward", call.inputs)(call.inputs, params=call.params)
        kept, status_kept, residuals = call.kern.compiled_saving(op, "forward", call.inputs)(call.inputs, params=call.params)
        np.testing.assert_array_equal(status_kept, status)
        for got, want in zip(kept, outputs):
            np.testing.assert_array_equal(got, want)
        cotangents = tuple(rng.standard_normal(y.shape).astype(dtype) for y in outputs)
        want, _ = call.kern.compiled(op, "vjp", call.inputs)(call.inputs, outputs, cotangents, params=call.params)
        saved = [r.copy() for r in residuals]
        reverse = call.kern.compiled_saving(op, "vjp", call.inputs)
        for _ in range(2):
            got, _ = reverse(residuals, call.inputs, kept, cotangents, params=call.params)
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w, err_msg=f"{name} {params} n={n} {dtype}")
        for r, s in zip(residuals, saved):
            np.testing.assert_array_equal(r, s)


@needs_layer
@pytest.mark.parametrize("n", [3, 40])
def test_non_finite_input_is_named(n):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, n, n))
    a = a @ np.swapaxes(a, -1, -2) + n * np.eye(n)
    a[1, n - 1, 0] = np.nan  # in the read (lower) triangle
    with pytest.raises(xlinalg.LinAlgError, match=r"input contains NaN or inf at batch index \(1,\)"):
        xlinalg.potrf(a)
    a[1, n - 1, 0], a[1, 0, n - 1] = 1.0, np.nan  # only the unread triangle: no failure
    assert np.all(np.isfinite(xlinalg.potrf(a)))


@pytest.fixture
def environment(monkeypatch):
    """``monkeypatch``, with the layer's decisions re-read from the environment before and
    after the test."""
    lapack.reset()
    yield monkeypatch
    monkeypatch.undo()
    lapack.reset()


def test_switch_forces_the_pure_rules(environment):
    environment.setenv("XLINALG_KERNELS", "python")
    assert lapack.library() is None
    info = lapack.config()
    assert not info["active"] and info["operators"] == {}
    a = np.eye(3) * 4.0
    assert np.array_equal(xlinalg.potrf(a), np.eye(3) * 2.0)


def test_compiled_mode_says_why_the_layer_is_missing(environment):
    environment.setenv("XLINALG_KERNELS", "compiled")
    environment.setitem(lapack._state, "library", None)
    environment.setitem(lapack._state, "reason", "not built (test)")
    with pytest.raises(ImportError, match="not built"):
        lapack.library()
    lapack.reset()
    environment.setenv("XLINALG_KERNELS", "bogus")
    with pytest.raises(ValueError, match="XLINALG_KERNELS"):
        lapack.mode()


def test_show_config_names_the_layer(capsys):
    """The layer in force and, for SciPy's OpenBLAS, the kernels it picked for this CPU (an
    OpenBLAS older than the CPU runs generic ones, at a fraction of the speed)."""
    info = xlinalg.show_config()
    text = capsys.readouterr().out
    assert ("compiled" if info["active"] else "pure Array-API rules") in text
    assert info["active"] == (lapack.library() is not None)
    for lib in info["blas"]:
        if lib["internal_api"] == "openblas":
            assert lib["architecture"] and f"({lib['architecture']} kernels)" in text


def test_config_names_the_instruction_set_in_force():
    """``isa``: what the kernels with two builds run, AVX2 where the CPU has it (and FMA) unless
    XLINALG_ISA=baseline, which the baseline pass of scripts/test.sh sets."""
    info = lapack.config()
    if not info["active"]:
        assert info["isa"] is None
        return
    cpuinfo = Path("/proc/cpuinfo")
    if platform.machine() != "x86_64" or not cpuinfo.is_file():
        pytest.skip("the CPU's flags are read from Linux's /proc/cpuinfo on x86-64")
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), [])
    avx2 = {"avx2", "fma"} <= set(flags) and os.environ.get("XLINALG_ISA") != "baseline"
    assert info["isa"] == ("avx2+fma" if avx2 else "baseline")


def test_the_cache_prunes_libraries_unused_for_a_week(tmp_path, monkeypatch):
    """A build removes the libraries of its stem that were neither built nor used for a week; a
    library loaded from the cache counts as used, however long ago it was built."""
    from xlinalg.lapack import build

    if build.compiler() is None:
        pytest.skip("no C++ compiler")
    monkeypatch.setenv("XLINALG_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "answer.cpp"
    source.write_text('extern "C" int xl_answer() { return 42; }\n')
    used, why = build.cached_library("xl_answer", "a test library", [source], [])
    assert used is not None, why
    unused = used.with_name("xl_answer-0123456789abcdef0123.so")
    unused.write_bytes(b"")
    week_ago = used.stat().st_mtime - 8 * 86400
    for path in (used, unused):
        os.utime(path, (week_ago, week_ago))
    assert build.cached_library("xl_answer", "a test library", [source], []) == (used, "loaded")  # from the cache
    other, why = build.cached_library("xl_answer", "a test library", [source], [], key_parts=("another version",))
    assert other is not None and other != used, why
    assert used.is_file() and other.is_file() and not unused.exists()


def test_installs_and_runs_without_a_compiler(tmp_path):
    """``pip install .`` with no working C/C++ compiler and no nvcc: installed without the CPU
    and GPU layers, working."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("building the package needs setuptools>=77 in this environment")
    source = tmp_path / "src"  # a copy: no build/ left over from an earlier build can leak in
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "site", "*.so", "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    env = {**os.environ, "CC": "/bin/false", "CXX": "/bin/false", "XLINALG_NVCC": "", "CUDA_HOME": ""}
    env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep) if d and not os.path.exists(os.path.join(d, "nvcc")))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert (target / "xlinalg" / "lapack" / "rules.py").exists()
    assert not list(target.glob("xlinalg/lapack/_kernels*"))
    assert not list(target.glob("xlinalg/cuda/*.so"))
    # data the package reads at run time: the C++ sources the JAX, PyTorch and MXNet bindings
    # build from, the native backends' known failures
    for source in ("ffi.cpp", "torch_node.cpp", "mxnet_op.cpp"):
        assert (target / "xlinalg" / "lapack" / "src" / source).exists()
    for data in ("entries.def", "hd.h", "block.h"):  # the GPU layer's signatures and limits, read at run time
        assert (target / "xlinalg" / "cuda" / "src" / data).exists()
    assert (target / "xlinalg_conformance" / "backends" / "known_failures" / "torch-native.toml").exists()
    probe = (
        "import numpy as np, xlinalg; from xlinalg import cuda, lapack; "
        "print(lapack.library() is None, float(xlinalg.potrf(4 * np.eye(2))[1, 1]), cuda.library() is None, cuda.device_count(), len(cuda.entries.symbols()) > 0)"
    )
    run = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": str(target), "XLINALG_KERNELS": "auto"},
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["True", "2.0", "True", "0", "True"]


@needs_layer
@pytest.mark.parametrize("library", ["numpy", "torch", "mxnet"])
def test_blas_threads_follow_the_matrix_order(library, monkeypatch):
    """With 2 threads (torch's pool, or XLINALG_NUM_THREADS for NumPy and MXNet, which split
    batches across them), SciPy's OpenBLAS runs small problems on one thread (two pools on the
    same cores made potrf's reverse 10x slower at n = 256 in torch, potri on a batch of 32 x 32
    matrices 20x slower in MXNet) and large ones on the 2 threads, from order 1024 on (256 in
    MXNet, whose own pool does not spin beside it); eager torch calls through the C++ node keep
    it on one thread at every order (the node splits large BLAS calls across torch's own
    threads). MXNet's recorded backward runs its VJP entry on the count its call chose."""
    controller = lapack._blas_controller()
    if controller is None:
        pytest.skip("threadpoolctl does not see SciPy's BLAS")
    if library == "torch":
        torch = pytest.importorskip("torch")
        import xlinalg.torch as xt

        saved = torch.get_num_threads()
        torch.set_num_threads(2)

        def run(n):
            a = torch.eye(n, dtype=torch.float64, requires_grad=True) * 2.0
            xt.potrf(a).sum().backward()
    elif library == "mxnet":
        mx = pytest.importorskip("mxnet")
        import xlinalg.mxnet as xm
        from xlinalg.adapters.mxnet import cpu_kernels
        from xlinalg.lapack import mxnet_op

        monkeypatch.setenv("XLINALG_NUM_THREADS", "2")
        lapack.reset()

        def run(n):
            a = mx.nd.array(2.0 * np.eye(n))
            a.attach_grad()
            before = mxnet_op.reverses_run()
            with mx.autograd.record():
                y = xm.potrf(a)
            y.backward()
            a.grad.wait_to_read()
            assert mxnet_op.reverses_run() == before + 1
    else:
        monkeypatch.setenv("XLINALG_NUM_THREADS", "2")
        lapack.reset()

        def run(n):
            xlinalg.vjp(xlinalg.potrf, 2.0 * np.eye(n))[1](np.ones((n, n)))
    large = min(2, os.cpu_count() or 1)  # OpenBLAS caps at the CPUs
    least = cpu_kernels().blas_threads_min_order if library == "mxnet" else lapack.BLAS_THREADS_MIN_ORDER
    if library == "torch":
        from xlinalg.lapack import torch_node

        large = large if torch_node.library() is None else 1
    try:
        for n, want in ((64, 1), (least, large)):
            run(n)
            assert controller.num_threads == want, (n, controller.num_threads)
    finally:
        if library == "torch":
            torch.set_num_threads(saved)
        lapack.reset()


@needs_layer
def test_a_split_batch_runs_the_blas_on_one_thread_and_gives_its_count_back():
    """While a batch is split across the layer's threads the BLAS runs on one thread (its own
    pool beside ours made 256 triangular solves of order 32 2–20x slower under JAX, which calls
    the C ABI with 2 threads and leaves the BLAS at 2), then gets its count back; a call on one
    thread, or a BLAS on one thread already, sets nothing. The library's thread-count functions
    are swapped for recording ones here, then given back."""
    import ctypes

    from xlinalg.lapack import _kernels

    lib = ctypes.CDLL(_kernels.__file__)  # the extension's own globals
    count, calls = [2], []

    def set_threads(n):
        calls.append(n)
        count[0] = n

    get = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: count[0])
    put = ctypes.CFUNCTYPE(None, ctypes.c_int)(set_threads)
    rng = np.random.default_rng(0)
    a = np.tril(rng.standard_normal((256, 32, 32))) + 32 * np.eye(32)
    b = rng.standard_normal((256, 32, 32))

    def solve(threads):
        out, status = np.empty_like(b), np.empty(256, np.int32)
        lapack.library().trsm(a, b, out, status, 4, threads, 1.0)  # flags 4: lower
        return out

    lib.xl_set_blas_threads.argtypes, lib.xl_set_blas_threads.restype = [ctypes.c_void_p, ctypes.c_void_p], None
    try:
        lib.xl_set_blas_threads(ctypes.cast(get, ctypes.c_void_p), ctypes.cast(put, ctypes.c_void_p))
        split = solve(2)
        assert calls == [1, 2] and count == [2]
        calls.clear()
        whole = solve(1)
        count[0] = 1
        solve(2)
        assert calls == []
    finally:
        lapack.set_blas_thread_functions(lib)
    np.testing.assert_array_equal(split, whole)
    controller = lapack._blas_controller()
    if controller is not None and controller.internal_api == "openblas":  # the real ones are found
        assert None not in lapack._blas_thread_functions()
