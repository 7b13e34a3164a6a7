"""Parity with MXNet's own operators: xlinalg.mxnet's outputs, shapes and input gradients
equal those of ``mx.nd.linalg`` for every operator and parameter combination.

Where conventions differ the test says so: gelqf (xlinalg makes diag(L) >= 0, MXNet returns
LAPACK's signs) is compared after aligning the signs, with the head gradients aligned alike.
"""

from __future__ import annotations

import pytest

from tests.mxnet_adapter import _helpers as h  # skips this module when MXNet is not installed

mx = h.mx

import numpy as np

import xlinalg.mxnet as la

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
RTOL = {"float64": 1e-10, "float32": 2e-4}


def _cases():
    for op in h.MXNET_OPERATORS:
        for params in h.param_combinations(op):
            yield pytest.param(op, params, id=f"{op}-" + "-".join(f"{k}={v}" for k, v in params.items()))


def _sign_alignment(op, native_outputs):
    """(output transforms, head transforms) mapping MXNet's sign choice onto xlinalg's."""
    if op == "gelqf":  # A = L Q: xlinalg's (D Q, L D) with D = sign(diag(L))
        d = np.sign(np.diagonal(native_outputs[1], axis1=-2, axis2=-1))
        d[d == 0] = 1.0
        return (lambda q: d[..., :, None] * q, lambda el: el * d[..., None, :])
    if op == "syevd":  # rows of U: equal signs expected (both make the largest entry positive)
        return (lambda u: u, lambda lam: lam)
    return None


def check_parity(op, params, arrays, rtol):
    native, ours = getattr(mx.nd.linalg, op), getattr(la, op)
    # outside autograd: outputs and shapes
    nds = [mx.nd.array(x, dtype=x.dtype) for x in arrays]
    plain = h.as_tuple(ours(*nds, **params))
    for a, b in zip(plain, h.as_tuple(native(*nds, **params))):
        assert a.shape == b.shape and a.dtype == b.dtype, f"{op} {params}: {a.shape} vs {b.shape}"
    y_native, g_native, heads = h.run(mx, native, arrays, params)
    align = _sign_alignment(op, y_native)
    if align is not None:
        y_native = [f(y) for f, y in zip(align, y_native)]
        heads = [f(g) for f, g in zip(align, heads)]
    y_ours, g_ours, _ = h.run(mx, ours, arrays, params, heads)
    assert len(y_ours) == len(y_native)
    for a, b in zip(y_ours, y_native):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert h.rel_err(a, b) <= rtol, f"{op} {params}: output differs by {h.rel_err(a, b):.2e}"
    for a, b in zip(g_ours, g_native):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert h.rel_err(a, b) <= rtol, f"{op} {params}: gradient differs by {h.rel_err(a, b):.2e}"


@pytest.mark.parametrize("op, params", list(_cases()))
def test_parity_float64(op, params, rng):
    """Every parameter combination, batch (3,), with garbage in the unread triangles."""
    check_parity(op, params, h.inputs(op, params, rng), RTOL["float64"])


@pytest.mark.parametrize("batch", [(), (2, 3)], ids=["2-D", "4-D"])
@pytest.mark.parametrize("op", h.MXNET_OPERATORS)
def test_parity_ranks(op, batch, rng):
    """MXNet's shapes for 2-D and 4-D inputs (e.g. (1,) from det of a matrix)."""
    params = next(h.param_combinations(op))
    check_parity(op, params, h.inputs(op, params, rng, batch=batch), RTOL["float64"])


@pytest.mark.parametrize("op", h.MXNET_OPERATORS)
def test_parity_float32(op, rng):
    params = next(h.param_combinations(op))
    check_parity(op, params, h.inputs(op, params, rng, dtype="float32"), RTOL["float32"])


@pytest.mark.parametrize("axis", [0, 1, -3, -4])
@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("op", ["gemm", "gemm2"])
def test_parity_axis(op, transpose_a, transpose_b, axis, rng):
    """``axis`` is the row axis: gemm(A, B, C, axis=k) = swapaxes(gemm(swapaxes(A, k, -2), ...))."""
    m, k, n = 3, 5, 2

    def shape(rows, cols):  # a (rows x cols) matrix stored with its rows on `axis` of 4-D arrays
        s = [2, 4, 6, cols]
        s[axis % 4] = rows
        return tuple(s)

    a = rng.standard_normal(shape(k, m) if transpose_a else shape(m, k))
    b = rng.standard_normal(shape(n, k) if transpose_b else shape(k, n))
    c = rng.standard_normal(shape(m, n))
    arrays = [a, b, c] if op == "gemm" else [a, b]
    params = {"transpose_a": transpose_a, "transpose_b": transpose_b, "alpha": 0.5, "axis": axis}
    if op == "gemm":
        params["beta"] = -1.5
    check_parity(op, params, arrays, RTOL["float64"])
    # and outside autograd (the outputs are returned without the custom operator)
    nds = [mx.nd.array(x, dtype="float64") for x in arrays]
    ours, native = getattr(la, op)(*nds, **params).asnumpy(), getattr(mx.nd.linalg, op)(*nds, **params).asnumpy()
    assert ours.shape == native.shape and h.rel_err(ours, native) <= RTOL["float64"]


@pytest.mark.parametrize("op", ["extracttrian", "maketrian"])
def test_triangle_packing(op):
    """MXNet packs the lower triangle row by row and the upper one column by column."""
    n = 4
    a = np.arange(n * n, dtype=np.float64).reshape(n, n)
    for offset, lower in [(0, True), (0, False), (1, True), (-1, True), (2, False)]:
        reads_lower = offset < 0 or (offset == 0 and lower)
        if op == "extracttrian":
            arg = mx.nd.array(a, dtype="float64")
            # row-major lower triangle; the upper one is the lower triangle of Aᵀ, row-major
            expected = a[np.tril_indices(n, offset)] if reads_lower else a.T[np.tril_indices(n, -offset)]
        else:
            m = n - abs(offset)
            arg = mx.nd.array(np.arange(1, m * (m + 1) // 2 + 1, dtype=np.float64), dtype="float64")
            expected = None
        ours = getattr(la, op)(arg, offset=offset, lower=lower).asnumpy()
        native = getattr(mx.nd.linalg, op)(arg, offset=offset, lower=lower).asnumpy()
        if expected is not None:
            np.testing.assert_array_equal(ours, expected)
        np.testing.assert_array_equal(ours, native)
