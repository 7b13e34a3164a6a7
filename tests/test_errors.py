"""Bad input raises the documented error, naming the operator and the offending shapes,
dtypes or batch index (DESIGN §4), for every Array API library without autograd."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

import xlinalg
from tests.cases import spd


def arr(xp, x):
    return xp.asarray(np.asarray(x))


def test_rank_below_two(xp):
    with pytest.raises(ValueError, match=r"potrf: argument A must have at least 2 dimensions.*\(3,\)"):
        xlinalg.potrf(arr(xp, np.ones(3)))
    with pytest.raises(ValueError, match=r"makediag: argument a must have at least 1 dimensions.*\(\)"):
        xlinalg.makediag(arr(xp, np.float64(1.0)))


@pytest.mark.parametrize("name", ["potrf", "inverse", "det", "slogdet", "syevd", "sumlogdiag", "extractdiag"])
def test_not_square(xp, name):
    with pytest.raises(ValueError, match=rf"{name}: argument A must be square, got shape \(2, 3, 4\)"):
        getattr(xlinalg, name)(arr(xp, np.ones((2, 3, 4))))


def test_mismatched_inner_dimensions(xp):
    a, b = arr(xp, np.ones((2, 3))), arr(xp, np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"gemm2: inner dimensions of op\(A\) \(2, 3\) and op\(B\) \(4, 5\) differ"):
        xlinalg.gemm2(a, b)
    with pytest.raises(ValueError, match=r"gemm: C has shape \(2, 2\), op\(A\) op\(B\) has shape \(2, 5\)"):
        xlinalg.gemm(a, arr(xp, np.ones((3, 5))), arr(xp, np.ones((2, 2))))
    with pytest.raises(ValueError, match=r"trsm: A is 3x3 but B \(4, 2\) has 4 rows"):
        xlinalg.trsm(arr(xp, np.eye(3)), arr(xp, np.ones((4, 2))))
    with pytest.raises(ValueError, match=r"trmm: A is 3x3 but B \(2, 4\) has 4 columns"):
        xlinalg.trmm(arr(xp, np.eye(3)), arr(xp, np.ones((2, 4))), rightside=True)
    with pytest.raises(ValueError, match=r"potrs: F is 3x3 but B \(2, 1\) has 2 rows"):
        xlinalg.potrs(arr(xp, np.eye(3)), arr(xp, np.ones((2, 1))))


def test_mismatched_batch_shapes(xp):
    with pytest.raises(ValueError, match=r"gemm2: batch dimensions do not broadcast \(A: \(2, 3, 3\), B: \(4, 3, 3\)\)"):
        xlinalg.gemm2(arr(xp, np.ones((2, 3, 3))), arr(xp, np.ones((4, 3, 3))))


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", "float16"])
def test_unsupported_dtypes(xp, dtype):
    if dtype == "float16" and not hasattr(xp, "float16"):
        pytest.skip("the library has no float16")
    a = arr(xp, np.eye(3).astype(dtype))
    with pytest.raises(TypeError, match=rf"potrf: argument A has unsupported dtype {dtype}; supported: float32, float64"):
        xlinalg.potrf(a)


def test_mixed_float_dtypes(xp):
    with pytest.raises(TypeError, match=r"gemm2: arguments must share one dtype, got A: float32, B: float64"):
        xlinalg.gemm2(arr(xp, np.eye(2, dtype="float32")), arr(xp, np.eye(2)))


def test_mixed_libraries():
    strict = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"gemm2: arrays of different libraries \(A: numpy.ndarray, B: array_api_strict"):
        xlinalg.gemm2(np.eye(2), strict.asarray(np.eye(2)))


def test_not_an_array():
    with pytest.raises(TypeError, match="potrf: argument A must be an array, got list"):
        xlinalg.potrf([[1.0, 0.0], [0.0, 1.0]])


def test_parameters_are_checked(xp):
    a = arr(xp, np.eye(2))
    with pytest.raises(TypeError, match="potrf: unexpected parameter.*upper; allowed: lower"):
        xlinalg.potrf(a, upper=True)
    with pytest.raises(TypeError, match="potrf: parameter lower must be a bool"):
        xlinalg.potrf(a, lower="yes")
    with pytest.raises(TypeError, match="extractdiag: parameter offset must be an int"):
        xlinalg.extractdiag(a, offset=0.5)
    with pytest.raises(TypeError):
        xlinalg.potrf(a, True)  # parameters are keyword-only


def test_not_positive_definite_names_batch_index(xp, rng):
    a = spd(rng, (2, 3, 4, 4))
    a[1, 2, 3, 3] = -5.0  # entry (1, 2) is indefinite
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("potrf: the matrix is not positive definite at batch index (1, 2)")) as info:
        xlinalg.potrf(arr(xp, a))
    assert info.value.index == (1, 2) and info.value.operator == "potrf"
    assert isinstance(info.value, ValueError)


def test_not_positive_definite_unbatched(xp):
    with pytest.raises(xlinalg.LinAlgError, match=r"potrf: the matrix is not positive definite at the input") as info:
        xlinalg.potrf(arr(xp, -np.eye(3)))
    assert info.value.index == ()


def test_singular_inverse(xp):
    a = np.stack([np.eye(3), np.ones((3, 3))])
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("inverse: the matrix is singular at batch index (1,)")):
        xlinalg.inverse(arr(xp, a))


def test_singular_triangular_solve(xp):
    a = np.eye(3)
    a[1, 1] = 0.0
    with pytest.raises(xlinalg.LinAlgError, match="trsm: the triangular matrix A is singular"):
        xlinalg.trsm(arr(xp, a), arr(xp, np.ones((3, 2))))


def test_gelqf_needs_wide_matrices(xp):
    with pytest.raises(ValueError, match=r"gelqf: A has more rows than columns \(4x3\); gelqf needs m <= n"):
        xlinalg.gelqf(arr(xp, np.ones((4, 3))))


def test_maketrian_length_must_be_triangular(xp):
    with pytest.raises(ValueError, match="maketrian: length 4 is not a triangular number"):
        xlinalg.maketrian(arr(xp, np.ones(4)))


def test_offset_out_of_range(xp):
    with pytest.raises(ValueError, match="extractdiag: offset 3 is out of range for 3x3 matrices"):
        xlinalg.extractdiag(arr(xp, np.eye(3)), offset=3)


def test_vjp_and_jvp_check_shapes(xp):
    a = arr(xp, np.eye(3))
    out, pullback = xlinalg.vjp(xlinalg.inverse, a)
    with pytest.raises(ValueError, match=r"inverse: cotangent of out has shape \(2, 2\), expected \(3, 3\)"):
        pullback(arr(xp, np.ones((2, 2))))
    with pytest.raises(ValueError, match=r"inverse: tangent of A has shape \(2, 2\), expected \(3, 3\)"):
        xlinalg.jvp("inverse", (a,), (arr(xp, np.ones((2, 2))),))
    with pytest.raises(ValueError, match="not an xlinalg operator: 'cholesky_of'"):
        xlinalg.vjp("cholesky_of", a)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_numpy_mixed_with_a_framework_array(framework):
    if importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    if framework == "torch":
        import torch

        other = torch.eye(2, dtype=torch.float64)
    else:
        import jax.numpy as jnp

        other = jnp.eye(2)
    for a, b in ((np.eye(2), other), (other, np.eye(2))):
        with pytest.raises(TypeError, match="gemm2: arrays of different libraries"):
            xlinalg.gemm2(a, b)
