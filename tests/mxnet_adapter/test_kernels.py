"""The MXNet CPU kernel table (:mod:`xlinalg.kernels.mxnet`: MXNet's batched LAPACK for large
arrays) agrees with the NumPy table it extends, keeps the kernel contract (NaN for failing
entries, never raises, inputs untouched), is the table the adapter runs CPU NDArrays with, and
calls MXNet's operators whatever ``mx.nd.linalg`` holds."""

from __future__ import annotations

import pytest

from tests.mxnet_adapter import _helpers as h  # skips this module when MXNet is not installed

mx = h.mx

import array_api_compat.numpy as xp
import numpy as np

import xlinalg
import xlinalg.mxnet as la
from xlinalg.adapters import mxnet as adapter
from xlinalg.kernels import kernels_for
from xlinalg.kernels import mxnet as mk
from xlinalg.kernels.numpy import NumpyKernels

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
BATCH = 400  # 400 · 4 · 4 and 400 · 4 · 3 >= MIN_SIZE: batches of small matrices go to MXNet
TOL = {"float64": 1e-12, "float32": 1e-4}


@pytest.fixture(scope="module")
def kernels():
    return mk.cpu_kernels(), NumpyKernels(xp)


def _spd(rng, shape, dtype):
    a = rng.standard_normal(shape)
    return (a @ np.swapaxes(a, -1, -2) / shape[-1] + np.eye(shape[-1])).astype(dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(BATCH, 4, 4), (80, 80)], ids=["batched", "n=80"])
def test_factorizations_match_numpy(kernels, shape, dtype, rng):
    ours, ref = kernels
    a = _spd(rng, shape, dtype)
    assert mk.usable(a)
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
    assert mk.usable(t) and mk.usable(b)
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
    b = rng.standard_normal((BATCH, 4, 3))
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


def test_table_extends_numpy_and_is_shared():
    table = mk.cpu_kernels()
    assert isinstance(table, mk.MxnetKernels) and isinstance(table, NumpyKernels)
    assert table.name == "mxnet" and table.xp is xp
    assert mk.cpu_kernels() is table and adapter.cpu_kernels() is table


def test_adapter_selects_the_table_for_ndarray_data(rng):
    """``kernels_for`` sees only a namespace: plain NumPy calls keep NumPy's table, and the
    adapter puts the MXNet table on calls whose data it took from CPU NDArrays."""
    a = _spd(rng, (3, 4, 4), "float64")
    assert type(kernels_for(xp)) is NumpyKernels
    assert type(xlinalg.core.apply.prepare(xlinalg.core.get("potrf"), [a], {}).kern) is NumpyKernels
    view = adapter.to_core(mx.nd.array(a, dtype="float64"))
    assert adapter._prepare(xlinalg.core.get("potrf"), [view], {}).kern is mk.cpu_kernels()


def _replace_everywhere(monkeypatch):
    """Replace MXNet's potrf, trsm, inverse and syevd in every namespace that exposes them."""

    def looked_up(*args, **kwargs):
        raise AssertionError("the kernel looked the operator up in an MXNet namespace")

    for module in (mx.nd.linalg, mx.sym.linalg, mx.nd.op, mx.sym.op, mx.nd, mx.sym, mx.nd._internal, mx.sym._internal):
        for name in ("potrf", "trsm", "inverse", "syevd"):
            for attr in (name, f"linalg_{name}", f"_linalg_{name}"):
                if hasattr(module, attr):
                    monkeypatch.setattr(module, attr, looked_up)


def test_native_operators_are_bound_at_import(monkeypatch, rng):
    """The kernels call MXNet's operators made from its registry at import: replacing them in
    ``mx.nd.linalg``, ``mx.nd.op``, ``mx.sym.linalg`` (the drop-in does) changes nothing."""
    table, ref = mk.cpu_kernels(), NumpyKernels(xp)
    a = _spd(rng, (2, 64, 64), "float64")
    t = np.tril(rng.standard_normal((2, 64, 64))) * 0.1 + 2 * np.eye(64)
    b = rng.standard_normal((2, 64, 40))
    assert a.shape[-1] >= mk.CHOLESKY_MIN_ORDER and mk.usable(a) and mk.usable(b)
    expected = [ref.cholesky(a), ref.inv(a), ref.eigh(a)[0], ref.solve_triangular(t, b, lower=True)]
    _replace_everywhere(monkeypatch)
    got = [table.cholesky(a), table.inv(a), table.eigh(a)[0], table.solve_triangular(t, b, lower=True)]
    for y, r in zip(got, expected):
        assert h.rel_err(y, r) <= 1e-12


def test_inputs_keep_their_flags(rng):
    """Handing an array to MXNet (zero-copy) leaves it writeable and unchanged."""
    table = mk.cpu_kernels()
    a = _spd(rng, (2, 64, 64), "float64")
    t = np.tril(rng.standard_normal((2, 64, 64))) * 0.1 + 2 * np.eye(64)
    b = rng.standard_normal((2, 64, 40))
    arrays = [a, t, b]
    copies = [x.copy() for x in arrays]
    table.cholesky(a), table.inv(a), table.eigh(a), table.solve_triangular(t, b, lower=True)
    for x, c in zip(arrays, copies):
        assert x.flags.writeable
        np.testing.assert_array_equal(x, c)


def test_solve_triangular_broadcasts_in_mxnet(kernels, rng):
    """Batch axes of A and B broadcast before the (batched, equal-shape) MXNet call."""
    ours, ref = kernels
    t = np.tril(rng.standard_normal((2, 1, 64, 64))) * 0.1 + 2 * np.eye(64)
    b = rng.standard_normal((1, 3, 64, 24))
    assert mk.usable(t) and mk.usable(b)
    for left in (True, False):
        bb = b if left else np.swapaxes(b, -1, -2)
        y = ours.solve_triangular(t, bb, lower=True, left=left)
        r = ref.solve_triangular(np.broadcast_to(t, (2, 3, 64, 64)), np.broadcast_to(bb, (2, 3, *bb.shape[-2:])), lower=True, left=left)
        assert y.shape == r.shape and h.rel_err(y, r) <= 1e-12
