"""Bad input raises xlinalg's documented errors at the call (not at MXNet's next sync point),
naming the operator, the shapes/dtypes and the failing batch index."""

from __future__ import annotations

import pytest

from tests.mxnet_adapter import _helpers as h  # skips this module when MXNet is not installed

mx = h.mx

import numpy as np

import xlinalg
import xlinalg.mxnet as la

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _batch_with_bad_entry(good, bad, index=1, size=3):
    out = np.stack([good] * size)
    out[index] = bad
    return out


@pytest.mark.parametrize("recording", [False, True])
@pytest.mark.parametrize(
    "op, make, cause",
    [
        ("potrf", lambda e: (_batch_with_bad_entry(e, -e),), "not positive definite"),
        ("inverse", lambda e: (_batch_with_bad_entry(e, np.zeros_like(e)),), "singular"),
        ("potri", lambda e: (_batch_with_bad_entry(e, np.diag([1.0, 0.0, 1.0])),), "singular"),
        ("trsm", lambda e: (_batch_with_bad_entry(e, np.diag([1.0, 1.0, 0.0])), np.ones((3, 3, 2))), "singular"),
    ],
)
def test_failure_raises_at_the_call(op, make, cause, recording):
    arrays = [mx.nd.array(a, dtype="float64") for a in make(np.eye(3))]
    for x in arrays:
        x.attach_grad()
    with mx.autograd.record() if recording else _nothing():
        with pytest.raises(xlinalg.LinAlgError) as info:
            getattr(la, op)(*arrays)
    message = str(info.value)
    assert message.startswith(f"{op}:") and cause in message and "batch index (1,)" in message
    assert info.value.operator == op and info.value.index == (1,)
    assert isinstance(info.value, ValueError)
    mx.nd.waitall()  # nothing pending fails later


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("recording", [False, True])
def test_unbatched_failure_names_the_input(recording):
    x = mx.nd.array(-np.eye(2), dtype="float64")
    x.attach_grad()
    with mx.autograd.record() if recording else _nothing():
        with pytest.raises(xlinalg.LinAlgError, match=r"potrf: the matrix is not positive definite at the input \(A: \(2, 2\)\)"):
            la.potrf(x)


@pytest.mark.parametrize(
    "op, shapes, params, match",
    [
        ("potrf", [(3, 4, 5)], {}, r"potrf: argument A must be square, got shape \(3, 4, 5\)"),
        ("potrf", [(4,)], {}, r"potrf: argument A must have at least 2 dimensions"),
        ("gemm2", [(2, 3), (4, 2)], {}, r"gemm2: the rows of B \(4\) must match the columns of A \(3\).* \(A: \(2, 3\), B: \(4, 2\)\)"),
        ("gemm", [(2, 3), (3, 2), (3, 3)], {}, r"gemm: the rows of C \(3\) must match the rows of A \(2\).*C: \(3, 3\)"),
        ("trsm", [(2, 3, 3), (3, 3, 2)], {}, r"trsm: batch dimensions do not broadcast"),
        ("gelqf", [(4, 3)], {}, r"gelqf: A has more rows than columns"),
        ("extractdiag", [(3, 3)], {"offset": 3}, r"extractdiag: offset 3 is out of range for 3x3 matrices"),
        ("maketrian", [(4,)], {}, r"maketrian: length 4 is not a triangular number"),
    ],
)
def test_shape_errors(op, shapes, params, match):
    arrays = [mx.nd.ones(s, dtype="float64") for s in shapes]
    with pytest.raises(ValueError, match=match):
        getattr(la, op)(*arrays, **params)


@pytest.mark.parametrize("dtype", ["float16", "int32", "uint8"])
def test_unsupported_dtype(dtype):
    with pytest.raises(TypeError, match=rf"potrf: argument A has unsupported dtype {dtype}; supported: float32, float64"):
        la.potrf(mx.nd.ones((2, 2), dtype=dtype))


def test_mixed_dtypes():
    with pytest.raises(TypeError, match=r"gemm2: arguments must share one dtype, got A: float32, B: float64"):
        la.gemm2(mx.nd.ones((2, 2), dtype="float32"), mx.nd.ones((2, 2), dtype="float64"))


def test_mixed_libraries_and_symbols():
    with pytest.raises(TypeError, match=r"gemm2: argument B must be an MXNet NDArray or Symbol, got ndarray"):
        la.gemm2(mx.nd.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"gemm2: cannot mix NDArrays and Symbols"):
        la.gemm2(mx.nd.ones((2, 2)), mx.sym.var("B"))


def test_parameter_errors():
    a = mx.nd.ones((2, 3, 3), dtype="float64")
    with pytest.raises(TypeError, match=r"potrf: got an unexpected keyword argument .upper.; signature: potrf\(A, lower=True"):
        la.potrf(a, upper=True)
    with pytest.raises(TypeError):
        la.potrf(a, lower="yes")
    with pytest.raises(ValueError, match=r"gemm2: axis 3 is out of range for 3-dimensional arrays"):
        la.gemm2(a, a, axis=3)
    with pytest.raises(ValueError, match=r"gemm2: axis -1 is the column axis"):
        la.gemm2(a, a, axis=-1)


def test_symbolic_failure_is_nan():
    """In a graph no data exists at the call: failing batch entries come out NaN."""
    bad = _batch_with_bad_entry(np.eye(3), -np.eye(3))
    ex = la.potrf(mx.sym.var("A")).bind(mx.cpu(), {"A": mx.nd.array(bad, dtype="float64")})
    out = ex.forward()[0].asnumpy()
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()


def test_symbolic_shape_error_fails_shape_inference():
    with pytest.raises(mx.base.MXNetError):
        la.potrf(mx.sym.var("A")).infer_shape(A=(3, 4, 5))
    with pytest.raises(mx.base.MXNetError):
        la.potrf(mx.sym.var("A")).infer_type(A=np.int32)


def test_numpy_interface_arrays_are_rejected():
    with pytest.raises(TypeError, match=r"potrf: argument A is an mx.np array"):
        la.potrf(mx.np.array(np.eye(2)))


def test_failures_are_also_mxnet_errors():
    """Code written against ``mx.nd.linalg`` catches ``mx.base.MXNetError``; the same clause
    catches xlinalg's failure, which stays an ``xlinalg.LinAlgError`` (and ``ValueError``)."""
    a = mx.nd.array(np.stack([np.eye(3), -np.eye(3)]), dtype="float64")
    with pytest.raises(mx.base.MXNetError) as info:
        la.potrf(a)
    assert isinstance(info.value, xlinalg.LinAlgError) and isinstance(info.value, ValueError)
    assert info.value.index == (1,)
