"""Errors with tensors: the same types and messages as with NumPy, ``xlinalg.LinAlgError``
(not torch's own error type) for failures, naming operator and batch index."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.torch_adapter._helpers import torch

import xlinalg  # noqa: E402
import xlinalg.torch as xt  # noqa: E402


def _bad_calls():
    """``(label, call(to))``: a bad call given a converter ``to`` from NumPy."""
    eye, ones = np.eye, np.ones
    sing = np.eye(3)
    sing[1, 1] = 0.0
    indef = np.stack([np.eye(3)] * 3).reshape(3, 1, 3, 3).repeat(2, axis=1)
    indef[2, 1, 0, 0] = -1.0
    return [
        ("rank", lambda to: xlinalg.potrf(to(ones(3)))),
        ("rank-vector", lambda to: xlinalg.makediag(to(np.float64(1.0)))),
        ("square", lambda to: xlinalg.inverse(to(ones((2, 3, 4))))),
        ("square-syevd", lambda to: xlinalg.syevd(to(ones((3, 4))))),
        ("inner", lambda to: xlinalg.gemm2(to(ones((2, 3))), to(ones((4, 5))))),
        ("gemm-c", lambda to: xlinalg.gemm(to(ones((2, 3))), to(ones((3, 5))), to(ones((2, 2))))),
        ("trsm-rows", lambda to: xlinalg.trsm(to(eye(3)), to(ones((4, 2))))),
        ("trmm-cols", lambda to: xlinalg.trmm(to(eye(3)), to(ones((2, 4))), rightside=True)),
        ("potrs-rows", lambda to: xlinalg.potrs(to(eye(3)), to(ones((2, 1))))),
        ("batch", lambda to: xlinalg.gemm2(to(ones((2, 3, 3))), to(ones((4, 3, 3))))),
        ("int", lambda to: xlinalg.potrf(to(eye(3).astype("int64")))),
        ("bool", lambda to: xlinalg.det(to(eye(3).astype(bool)))),
        ("float16", lambda to: xlinalg.potrf(to(eye(3).astype("float16")))),
        ("mixed", lambda to: xlinalg.gemm2(to(eye(2, dtype="float32")), to(eye(2)))),
        ("param-unknown", lambda to: xlinalg.potrf(to(eye(2)), upper=True)),
        ("param-type", lambda to: xlinalg.potrf(to(eye(2)), lower="yes")),
        ("param-int", lambda to: xlinalg.extractdiag(to(eye(2)), offset=0.5)),
        ("positional-param", lambda to: xlinalg.potrf(to(eye(2)), True)),
        ("gelqf-tall", lambda to: xlinalg.gelqf(to(ones((4, 3))))),
        ("maketrian-length", lambda to: xlinalg.maketrian(to(ones(4)))),
        ("offset", lambda to: xlinalg.extractdiag(to(eye(3)), offset=3)),
        ("not-pd", lambda to: xlinalg.potrf(to(indef))),
        ("not-pd-unbatched", lambda to: xlinalg.potrf(to(-eye(3)))),
        ("singular", lambda to: xlinalg.inverse(to(np.stack([eye(3), ones((3, 3))])))),
        ("singular-trsm", lambda to: xlinalg.trsm(to(sing), to(ones((3, 2))))),
        ("singular-potrs", lambda to: xlinalg.potrs(to(sing), to(ones((3, 2))))),
        ("singular-potri", lambda to: xlinalg.potri(to(np.stack([eye(3), sing])))),
    ]


def _raised(fn, to):
    with pytest.raises(Exception) as info:
        fn(to)
    return info.value


@pytest.mark.parametrize("label, fn", [pytest.param(*c, id=c[0]) for c in _bad_calls()])
def test_same_error_as_numpy(label, fn):
    want = _raised(fn, np.asarray)
    got = _raised(fn, lambda x: torch.from_numpy(np.asarray(x)))
    assert type(got) is type(want), (got, want)
    assert str(got) == str(want)
    if isinstance(want, xlinalg.LinAlgError):
        assert not isinstance(got, torch.linalg.LinAlgError)
        assert (got.operator, got.index) == (want.operator, want.index)


def test_not_positive_definite_in_batch_names_index():
    a = torch.eye(4, dtype=torch.float64).repeat(2, 3, 1, 1)
    a[1, 2, 3, 3] = -5.0
    a.requires_grad_()
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("potrf: the matrix is not positive definite at batch index (1, 2) (A: (2, 3, 4, 4))")) as info:
        xt.potrf(a)
    assert info.value.index == (1, 2) and info.value.operator == "potrf"


def test_not_positive_definite_float32_and_upper():
    a = torch.eye(3, dtype=torch.float32).repeat(4, 1, 1)
    a[3, 2, 2] = 0.0
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("batch index (3,)")):
        xt.potrf(a, lower=False)
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("batch index (3,)")):
        xt.cholesky(a)


def test_mixed_libraries_and_non_arrays():
    with pytest.raises(TypeError, match=r"trsm: arrays of different libraries \(A: torch.Tensor, B: numpy.ndarray\)"):
        xlinalg.trsm(torch.eye(3), np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"trsm: expected torch tensors for A, B"):
        xt.trsm(np.eye(3), np.ones((3, 2)))
    with pytest.raises(TypeError, match="potrf: argument A must be an array, got list"):
        xt.potrf([[1.0, 0.0], [0.0, 1.0]])


def test_nan_input_is_not_a_failure():
    """Non-finite outputs of non-finite inputs are IEEE results, not LinAlgError."""
    a = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    a[1, 0, 0] = float("nan")
    out = xt.potrf(a)
    assert torch.isnan(out[1]).any() and torch.isfinite(out[0]).all()
