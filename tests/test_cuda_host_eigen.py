"""The GPU layer's per-matrix symmetric eigendecomposition (cyclic Jacobi, one thread per matrix;
parallel Jacobi, a block of threads per matrix to order 64), compiled into the CPU library as
xl_hd_syevd_<f32|f64>, xl_hd_syevd_block_<S> / xl_hd_syevd_vjp_<S>, against the CPU entries
xl_syevd_<S> / xl_syevd_vjp_<S> (LAPACK ?syevd; float32 decomposed in float64).

Forward: eigenvalues to a few ε·max|λ|, eigenvectors to a few ε·max|λ|/gap (float32: ε₃₂, as
Jacobi runs in float32 there); the residual A Uᵀ − Uᵀ diag(w), U Uᵀ − I, the order, the sign rule,
the unread upper triangle, NaN per batch entry; the block entry's phases in either order, bit for
bit (a phase whose items raced would not be). Reverse: the same formula on the same inputs, and
for repeated eigenvalues the degenerate-pair rule (F_ij = 0 within 32 ε max|λ|) on the Jacobi
eigenvalues, with cotangents of losses that depend on whole eigenspaces only.
"""

from __future__ import annotations

import numpy as np
import pytest

from xlinalg import lapack

if lapack.library() is None:
    pytest.skip("the compiled kernel layer is not active", allow_module_level=True)

from tests.cuda_host import _cdll, call

DTYPES = [pytest.param(np.float64, id="f64"), pytest.param(np.float32, id="f32")]
ORDERS = (1, 2, 3, 8, 16, 32)
#: the forward entries and their orders: one thread per matrix, a block per matrix
FORWARD = {"syevd": ORDERS, "syevd_block": (1, 2, 3, 8, 16, 33, 47, 64)}
ENTRY_ORDERS = [pytest.param(e, n, id=f"{e}-{n}") for e, orders in FORWARD.items() for n in orders]


@pytest.fixture(params=list(FORWARD))
def entry(request):
    return request.param


def syevd(a, cpu=False, entry="syevd"):
    """(U, w) of the (batch, n, n) array ``a``: the per-matrix Jacobi entry ``entry``, or with
    ``cpu`` the CPU entry."""
    a = np.ascontiguousarray(a)
    u, w = np.full_like(a, 7.0), np.full(a.shape[:-1], 7.0, a.dtype)  # every element must be written
    call("syevd" if cpu else entry, a.dtype, cpu=cpu, batch=a.shape[0], n=a.shape[-1], a=a, u=u, w=w)
    return u, w


def syevd_vjp(u, w, gu, gw, cpu=False):
    """Ā from (U, w) and the cotangents (Ū, w̄)."""
    u, w, gu, gw = (np.ascontiguousarray(x) for x in (u, w, gu, gw))
    ga = np.full_like(u, 7.0)
    call("syevd_vjp", u.dtype, cpu=cpu, batch=u.shape[0], n=u.shape[-1], u=u, w=w, gu=gu, gw=gw, ga=ga)
    return ga


def sym_lower(a):
    """The symmetric matrices whose lower triangles are a's, in float64."""
    low = np.tril(np.asarray(a, np.float64))
    return low + np.swapaxes(np.tril(low, -1), -1, -2)


def with_garbage(a, rng):
    """a with its strict upper triangle overwritten: NaN, ±inf and huge values (never read)."""
    a = a.copy()
    n = a.shape[-1]
    iu = np.triu_indices(n, 1)
    junk = rng.choice(np.array([np.nan, np.inf, -np.inf, 1e30, -3.0], a.dtype), size=(a.shape[0], len(iu[0])))
    a[:, iu[0], iu[1]] = junk
    return a


def random_orthogonal(rng, batch, n):
    q, r = np.linalg.qr(rng.standard_normal((batch, n, n)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def from_spectrum(q, lam, dtype):
    return np.ascontiguousarray((q * lam[..., None, :]) @ np.swapaxes(q, -1, -2)).astype(dtype)


def separated(rng, batch, n, dtype):
    """Symmetric matrices with eigenvalues in [−1, 1] at least 1/n apart (gap·n ≥ 1)."""
    base = np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
    jitter = rng.uniform(-0.25, 0.25, (batch, n)) / max(n - 1, 1)
    return from_spectrum(random_orthogonal(rng, batch, n), base + jitter, dtype), 1.0 / n


def check_decomposition(a, u, w):
    """Residual, orthogonality, order and sign rule of (U, w) for the lower triangles of a, in
    units of ε (residual relative to max|A|)."""
    eps = np.finfo(u.dtype).eps
    s, u64, w64 = sym_lower(a), u.astype(np.float64), w.astype(np.float64)
    n = a.shape[-1]
    scale = np.maximum(np.abs(s).max(axis=(-2, -1)), np.finfo(np.float64).tiny)
    vt = np.swapaxes(u64, -1, -2)
    resid = np.abs(s @ vt - vt * w64[..., None, :]).max(axis=(-2, -1)) / scale / eps
    orth = np.abs(u64 @ vt - np.eye(n)).max(axis=(-2, -1)) / eps
    assert np.all(np.diff(w64, axis=-1) >= 0), "eigenvalues not ascending"
    idx = np.argmax(np.abs(u64), axis=-1)
    assert np.all(np.take_along_axis(u64, idx[..., None], -1) > 0), "a row of U breaks the sign rule"
    return resid.max(), orth.max()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("entry", "n"), ENTRY_ORDERS)
def test_syevd_matches_cpu_entry(dtype, entry, n, rng):
    """Separated spectra: w within 20ε·max|λ| and U within 4ε·max|λ|/gap of the CPU entry's, the
    unread upper triangle full of NaN and inf. Measured over 240 draws per order: float64 (both
    solvers' errors) up to 9ε·max|λ| and 1.2ε·max|λ|/gap; float32, Jacobi in float32 against
    LAPACK in float64, up to 7ε₃₂·max|λ| and 0.6ε₃₂·max|λ|/gap (n = 32: 7ε₃₂ and 0.5ε₃₂)."""
    eps = np.finfo(dtype).eps
    a, gap = separated(rng, 6, n, dtype)
    a = with_garbage(a, rng)
    u, w = syevd(a, entry=entry)
    uc, wc = syevd(a, cpu=True)
    assert np.isfinite(u).all() and np.isfinite(w).all()
    scale = np.abs(wc.astype(np.float64)).max(axis=-1, keepdims=True)
    assert (np.abs(w.astype(np.float64) - wc) / scale).max() <= 20 * eps
    assert (np.abs(u.astype(np.float64) - uc).max(axis=(-2, -1)) * gap / scale[:, 0]).max() <= 4 * eps
    resid, orth = check_decomposition(a, u, w)
    assert resid <= 4 * n and orth <= 4 * n


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("entry", "n"), ENTRY_ORDERS)
def test_syevd_random_symmetric(dtype, entry, n, rng):
    """Random symmetric matrices (no control of the gaps): residual ‖A Uᵀ − Uᵀ diag(w)‖ ≤ 4nε·max|A|
    and ‖U Uᵀ − I‖ ≤ 4nε elementwise (measured up to 1.1nε), eigenvalues within 4nε·max|A| of the
    CPU entry's (measured up to 1.8nε in float64, 0.9nε₃₂ in float32)."""
    eps = np.finfo(dtype).eps
    x = rng.standard_normal((8, n, n))
    a = (x + np.swapaxes(x, -1, -2)).astype(dtype)
    u, w = syevd(a, entry=entry)
    _, wc = syevd(a, cpu=True)
    resid, orth = check_decomposition(a, u, w)
    assert resid <= 4 * n and orth <= 4 * n
    scale = np.abs(sym_lower(a)).max(axis=(-2, -1))
    assert (np.abs(w.astype(np.float64) - wc).max(axis=-1) / scale).max() <= 4 * n * eps


@pytest.mark.parametrize("dtype", DTYPES)
def test_upper_triangle_never_read(dtype, entry, rng):
    a, _ = separated(rng, 4, 8, dtype)
    u0, w0 = syevd(a, entry=entry)
    u1, w1 = syevd(with_garbage(a, rng), entry=entry)
    np.testing.assert_array_equal(u0, u1)
    np.testing.assert_array_equal(w0, w1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_finite_entry_is_nan_alone(dtype, entry, rng):
    """A NaN or an infinity in the read triangle makes that batch entry's U and w NaN, as on the
    CPU; the others are what they are alone."""
    a, _ = separated(rng, 4, 5, dtype)
    bad = a.copy()
    bad[1, 3, 1] = np.nan
    bad[2, 4, 4] = -np.inf
    u, w = syevd(bad, entry=entry)
    uc, wc = syevd(bad, cpu=True)
    for e in (1, 2):
        assert np.isnan(u[e]).all() and np.isnan(w[e]).all()
    np.testing.assert_array_equal(np.isnan(u), np.isnan(uc))
    np.testing.assert_array_equal(np.isnan(w), np.isnan(wc))
    for e in (0, 3):
        ue, we = syevd(a[e : e + 1], entry=entry)
        np.testing.assert_array_equal(u[e], ue[0])
        np.testing.assert_array_equal(w[e], we[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_power_of_two_scaling_is_exact(dtype, entry, rng):
    """The matrix is scaled by a power of two before the sweeps, so 2^k A gives the same U and
    2^k w bit for bit, up to the edges of the exponent range (no overflow, no underflow)."""
    a, _ = separated(rng, 3, 6, dtype)
    u, w = syevd(a, entry=entry)
    big = 500 if dtype is np.float64 else 60
    for k in (-big, -3, 7, big):
        uk, wk = syevd(np.ldexp(a, k).astype(dtype), entry=entry)
        np.testing.assert_array_equal(uk, u)
        np.testing.assert_array_equal(wk, np.ldexp(w, k).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_and_scaled_identity(dtype, entry):
    """The zero matrix and 3·I: exact eigenvalues, U = I (already diagonal: no rotation)."""
    for c in (0.0, 3.0):
        a = (c * np.eye(4, dtype=dtype))[None]
        u, w = syevd(a, entry=entry)
        np.testing.assert_array_equal(w[0], np.full(4, c, dtype))
        np.testing.assert_array_equal(u[0], np.eye(4, dtype=dtype))


def projector(u, rows):
    """The orthogonal projector onto the span of the given rows of U, in float64."""
    b = u[..., rows, :].astype(np.float64)
    return np.swapaxes(b, -1, -2) @ b


@pytest.mark.parametrize("dtype", DTYPES)
def test_repeated_eigenvalues_forward(dtype, entry, rng):
    """Q diag(1, 1, 2) Qᵀ and a multiplicity-3 cluster at n = 8: the copies of a repeated eigenvalue
    stay well within the reverse pass's degeneracy threshold 32 ε·max|λ| (measured below 15 ε in
    float64, 8 ε in float32 over many draws), and the eigenspaces are the CPU entry's."""
    eps = np.finfo(dtype).eps
    for lam in ([1.0, 1.0, 2.0], [-1.0, -1.0, -1.0, 0.5, 2.0, 2.0, 3.0, 4.0]):
        lam = np.array(lam)
        n = len(lam)
        a = from_spectrum(random_orthogonal(rng, 16, n), np.broadcast_to(lam, (16, n)), dtype)
        u, w = syevd(a, entry=entry)
        uc, _ = syevd(a, cpu=True)
        check_decomposition(a, u, w)
        for value in np.unique(lam):
            rows = np.flatnonzero(lam == value)
            spread = (w[:, rows].max(axis=-1) - w[:, rows].min(axis=-1)).astype(np.float64)
            assert spread.max() <= 16 * eps * np.abs(lam).max()
            assert np.abs(projector(u, rows) - projector(uc, rows)).max() <= 16 * n * eps


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ORDERS)
def test_syevd_vjp_matches_cpu_entry(dtype, n, rng):
    """The same (U, w, Ū, w̄) into both reverse entries: the same formula, summed in another order,
    so Ā agrees to 4nε·max|Ā| (measured up to 1.0nε); the output is exactly symmetric."""
    eps = np.finfo(dtype).eps
    a, _ = separated(rng, 4, n, dtype)
    u, w = syevd(a)
    gu = rng.standard_normal(u.shape).astype(dtype)
    gw = rng.standard_normal(w.shape).astype(dtype)
    ga = syevd_vjp(u, w, gu, gw)
    gc = syevd_vjp(u, w, gu, gw, cpu=True)
    np.testing.assert_array_equal(ga, np.swapaxes(ga, -1, -2))
    scale = np.abs(gc.astype(np.float64)).max(axis=(-2, -1))
    assert (np.abs(ga.astype(np.float64) - gc).max(axis=(-2, -1)) / scale).max() <= 4 * n * eps


def eigenspace_cotangents(u, w, groups, b, c):
    """Cotangents of L = Σ_g tr(B_g P_g) + c·Σ w, P_g the projector onto eigenspace g (rows of U):
    a loss of whole eigenspaces, whose gradient does not depend on the basis inside one."""
    gu = np.zeros(u.shape, np.float64)
    for rows, bg in zip(groups, b):
        gu[..., rows, :] = u[..., rows, :].astype(np.float64) @ (bg + bg.T)
    return gu.astype(u.dtype), np.full(w.shape, c, u.dtype)


def eigenspace_loss(a, groups, b, c):
    lam, v = np.linalg.eigh(sym_lower(a))
    u = np.swapaxes(v, -1, -2)
    return sum(np.einsum("...ij,ij->...", projector(u, rows), bg) for rows, bg in zip(groups, b)) + c * lam.sum(-1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_syevd_vjp_repeated_eigenvalues(dtype, rng):
    """Q diag(1, 1, 2) Qᵀ and 3·I: the Jacobi eigenvalues of a repeated eigenvalue count as
    degenerate (no 1/(λ_j − λ_i) blow-up), and for losses of whole eigenspaces Ā is finite,
    independent of the basis each entry picked inside the eigenspace (the Jacobi U and the CPU's
    U give the same Ā), and equal to the float64 finite difference of the loss."""
    eps = np.finfo(dtype).eps
    cases = [
        (np.array([1.0, 1.0, 2.0]), [[0, 1], [2]]),
        (np.array([3.0, 3.0, 3.0]), [[0, 1, 2]]),
    ]
    for lam, groups in cases:
        n = len(lam)
        a = from_spectrum(random_orthogonal(rng, 8, n), np.broadcast_to(lam, (8, n)), dtype)
        b = [rng.standard_normal((n, n)) for _ in groups]
        outs = []
        for cpu in (False, True):
            u, w = syevd(a, cpu=cpu)
            gu, gw = eigenspace_cotangents(u, w, groups, b, 0.75)
            outs.append(syevd_vjp(u, w, gu, gw, cpu=cpu))
        ga, gc = outs
        assert np.isfinite(ga).all()
        np.testing.assert_array_equal(ga, np.swapaxes(ga, -1, -2))
        assert np.abs(ga.astype(np.float64) - gc).max() <= 64 * eps * np.abs(gc).max()
        # ⟨Ā, dA⟩ against the central difference of the loss along a symmetric direction
        d = rng.standard_normal((n, n))
        d = d + d.T
        h = 1e-6
        a64 = sym_lower(a)
        fd = (eigenspace_loss(a64 + h * d, groups, b, 0.75) - eigenspace_loss(a64 - h * d, groups, b, 0.75)) / (2 * h)
        lin = np.einsum("...ij,ij->...", ga.astype(np.float64), d)
        tol = 1e-6 if dtype is np.float64 else 1e-3
        assert np.abs(lin - fd).max() <= tol * max(1.0, np.abs(fd).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_syevd_vjp_non_finite_propagates(dtype, rng):
    """NaN or infinite inputs reach Ā as on the CPU entry (the same formula, the same products)."""
    a, _ = separated(rng, 3, 4, dtype)
    u, w = syevd(a)
    gu = rng.standard_normal(u.shape).astype(dtype)
    gw = rng.standard_normal(w.shape).astype(dtype)
    gu[1, 2, 3] = np.nan
    gw[2, 0] = np.inf
    ga = syevd_vjp(u, w, gu, gw)
    gc = syevd_vjp(u, w, gu, gw, cpu=True)
    np.testing.assert_array_equal(np.isfinite(ga), np.isfinite(gc))
    assert np.isfinite(ga[0]).all() and not np.isfinite(ga[1]).all() and not np.isfinite(ga[2]).all()


@pytest.fixture
def phases_reversed():
    """The block entries' phases run their items in reverse order while the test runs."""
    setter = _cdll().xl_hd_set_phase_reversed
    setter(1)
    yield
    setter(0)


def _block_results(a):
    return syevd(a, entry="syevd_block")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, 32, 47, 64])
def test_block_phases_give_the_same_in_either_order(dtype, n, rng, request):
    """The items of a phase touch disjoint data: run in reverse, every phase gives the same
    results bit for bit (a race would show as a difference), with clusters of equal eigenvalues
    (skipped rotations) among random spectra."""
    x = rng.standard_normal((3, n, n))
    a = (x + np.swapaxes(x, -1, -2)).astype(dtype)
    lam = np.repeat(np.arange(3.0), -(-n // 3))[:n]
    a[2] = from_spectrum(random_orthogonal(rng, 1, n), lam[None], dtype)[0]
    forward = _block_results(a)
    request.getfixturevalue("phases_reversed")
    backward = _block_results(a)
    for x, y in zip(forward, backward):
        np.testing.assert_array_equal(x, y)
