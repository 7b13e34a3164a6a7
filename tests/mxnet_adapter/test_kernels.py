"""The adapter's CPU kernel table (MXNet's batched LAPACK for large batches) agrees with the
NumPy table it extends, keeps the kernel contract (NaN for failing entries, never raises), and
the operators give the same results through either."""

from __future__ import annotations

import pytest

import mxnet_adapter_support as h

if not h.mxnet_installed():
    pytest.skip("mxnet is not installed", allow_module_level=True)
mx = pytest.importorskip("mxnet")

import array_api_compat.numpy as xp  # noqa: E402
import numpy as np  # noqa: E402

import xlinalg  # noqa: E402
import xlinalg.mxnet as la  # noqa: E402
from xlinalg.adapters import mxnet as adapter  # noqa: E402
from xlinalg.kernels.numpy import NumpyKernels  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
BATCH = 320  # 320 · 4 · 4 > MIN_SIZE: batches of small matrices go to MXNet
TOL = {"float64": 1e-12, "float32": 1e-4}


@pytest.fixture(scope="module")
def kernels():
    return adapter.cpu_kernels(), NumpyKernels(xp)


def _spd(rng, shape, dtype):
    a = rng.standard_normal(shape)
    return (a @ np.swapaxes(a, -1, -2) / shape[-1] + np.eye(shape[-1])).astype(dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(BATCH, 4, 4), (80, 80)], ids=["batched", "n=80"])
def test_factorizations_match_numpy(kernels, shape, dtype, rng):
    ours, ref = kernels
    a = _spd(rng, shape, dtype)
    assert adapter._usable(a)
    for name in ("cholesky", "inv"):
        y, r = getattr(ours, name)(a), getattr(ref, name)(a)
        assert y.dtype == a.dtype and y.shape == r.shape
        assert h.rel_err(y, r) <= TOL[dtype], name
    (w, v), (w_ref, _) = ours.eigh(a), ref.eigh(a)
    assert w.dtype == a.dtype and h.rel_err(w, w_ref) <= TOL[dtype]
    recon = (v * w[..., None, :]) @ np.swapaxes(v, -1, -2)
    assert h.rel_err(recon, a) <= 10 * TOL[dtype]


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("lower", [True, False])
def test_solve_triangular_matches_numpy(kernels, lower, transpose, left, rng):
    ours, ref = kernels
    t = rng.standard_normal((BATCH, 4, 4)) * 0.3 + 2 * np.eye(4)  # garbage in the other triangle
    b = rng.standard_normal((BATCH, 4, 3) if left else (BATCH, 3, 4))
    y = ours.solve_triangular(t, b, lower=lower, transpose=transpose, left=left)
    r = ref.solve_triangular(t, b, lower=lower, transpose=transpose, left=left)
    assert h.rel_err(y, r) <= 1e-12
    # broadcast batch axes
    y = ours.solve_triangular(t[:1], b, lower=lower, transpose=transpose, left=left)
    r = ref.solve_triangular(np.broadcast_to(t[:1], t.shape), b, lower=lower, transpose=transpose, left=left)
    assert h.rel_err(y, r) <= 1e-12


def test_failures_give_nan_not_errors(kernels, rng):
    ours, _ = kernels
    a = _spd(rng, (3, 70, 70), "float64")
    a[1] = -np.eye(70)
    y = ours.cholesky(a)
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()
    s = _spd(rng, (BATCH, 4, 4), "float64")
    s[11] = 0.0
    inv = ours.inv(s)
    assert not np.isfinite(inv[11]).all() and np.isfinite(np.delete(inv, 11, axis=0)).all()
    mx.nd.waitall()  # nothing pending fails later


def test_operators_through_mxnet_kernels(rng):
    """potrf, trsm, inverse, syevd on a large batch: autograd equals the core on NumPy."""
    a = _spd(rng, (BATCH, 4, 4), "float64")
    t = np.tril(rng.standard_normal((BATCH, 4, 4))) + 2 * np.eye(4)
    b = rng.standard_normal((BATCH, 4, 2))
    for op, arrays in [("potrf", [a]), ("trsm", [t, b]), ("inverse", [a]), ("syevd", [a])]:
        outs, grads, heads = h.run(mx, getattr(la, op), arrays, {})
        ref, pullback = xlinalg.vjp(op, *arrays)
        ref = ref if isinstance(ref, tuple) else (ref,)
        ref_grads = pullback(tuple(heads) if len(heads) > 1 else heads[0])
        for y, r in zip(outs, ref):
            assert h.rel_err(y, r) <= 1e-12, op
        for g, r in zip(grads, ref_grads):
            assert h.rel_err(g, r) <= 1e-10, op


def test_failure_at_the_call_through_mxnet_kernels(rng):
    a = _spd(rng, (BATCH, 4, 4), "float64")
    with pytest.raises(xlinalg.LinAlgError, match=r"inverse: the matrix is singular at batch index \(5,\)"):
        s = a.copy()
        s[5] = 0.0
        la.inverse(mx.nd.array(s, dtype="float64"))
    big = np.broadcast_to(np.eye(70), (2, 70, 70)).copy()
    big[1, 3, 3] = -1.0
    with pytest.raises(xlinalg.LinAlgError, match=r"potrf: the matrix is not positive definite at batch index \(1,\)"):
        la.potrf(mx.nd.array(big, dtype="float64"))
