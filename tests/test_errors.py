"""Bad input raises the documented error, naming the operator and the offending shapes,
dtypes or batch index (docs/conventions.md), for every Array API library without autograd."""

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
    """Shape errors name both axes, their sizes, the dimension they share in the signature and
    every argument's shape."""
    a, b = arr(xp, np.ones((2, 3))), arr(xp, np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"gemm2: the rows of B \(4\) must match the columns of A \(3\): both are 'k' .*\(A: \(2, 3\), B: \(4, 5\)\)"):
        xlinalg.gemm2(a, b)
    with pytest.raises(ValueError, match=r"gemm: the columns of C \(2\) must match the columns of B \(5\).*C: \(2, 2\)"):
        xlinalg.gemm(a, arr(xp, np.ones((3, 5))), arr(xp, np.ones((2, 2))))
    with pytest.raises(ValueError, match=r"trsm: the rows of B \(4\) must match the rows of A \(3\).*B: \(4, 2\)"):
        xlinalg.trsm(arr(xp, np.eye(3)), arr(xp, np.ones((4, 2))))
    with pytest.raises(ValueError, match=r"trmm: the columns of B \(4\) must match the rows of A \(3\).*B: \(2, 4\)"):
        xlinalg.trmm(arr(xp, np.eye(3)), arr(xp, np.ones((2, 4))), rightside=True)
    with pytest.raises(ValueError, match=r"potrs: the rows of B \(2\) must match the rows of F \(3\).*B: \(2, 1\)"):
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


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("extractdiag", {"offset": "a"}, "extractdiag: parameter offset must be an int, got 'a' (str)"),
        ("extractdiag", {"offset": None}, "extractdiag: parameter offset must be an int, got None (NoneType)"),
        ("extractdiag", {"offset": True}, "extractdiag: parameter offset must be an int, got True (bool)"),
        ("extractdiag", {"offset": np.array([0, 1])}, "extractdiag: parameter offset must be an int, got array([0, 1]) (ndarray)"),
        ("gemm2", {"alpha": "2"}, "gemm2: parameter alpha must be a real number, got '2' (str)"),
        ("gemm2", {"alpha": None}, "gemm2: parameter alpha must be a real number, got None (NoneType)"),
        ("gemm2", {"alpha": True}, "gemm2: parameter alpha must be a real number, got True (bool)"),
        ("gemm2", {"alpha": 1j}, "gemm2: parameter alpha must be a real number, got 1j (complex)"),
        ("gemm2", {"alpha": np.ones(2)}, "gemm2: parameter alpha must be a real number, got array([1., 1.]) (ndarray)"),
        ("potrf", {"lower": "x"}, "potrf: parameter lower must be a bool, got 'x' (str)"),
        ("potrf", {"lower": None}, "potrf: parameter lower must be a bool, got None (NoneType)"),
        ("potrf", {"lower": 2}, "potrf: parameter lower must be a bool, got 2 (int)"),
        ("potrf", {"lower": 1.0}, "potrf: parameter lower must be a bool, got 1.0 (float)"),
        ("potrf", {"lower": np.array([True])}, "potrf: parameter lower must be a bool, got array([ True]) (ndarray)"),
    ],
)
def test_ill_typed_parameter_values(name, params, message):
    args = (np.eye(3),) * (2 if name == "gemm2" else 1)
    with pytest.raises(TypeError) as info:
        getattr(xlinalg, name)(*args, **params)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "name, params, resolved",
    [
        ("potrf", {"lower": np.True_}, {"lower": True}),
        ("potrf", {"lower": np.False_}, {"lower": False}),
        ("potrf", {"lower": np.array(True)}, {"lower": True}),
        ("potrf", {"lower": np.array(0)}, {"lower": False}),
        ("potrf", {"lower": np.int64(1)}, {"lower": True}),
        ("potrf", {"lower": 0}, {"lower": False}),
        ("extractdiag", {"offset": np.int32(-1)}, {"offset": -1}),
        ("extractdiag", {"offset": np.array(1)}, {"offset": 1}),
        ("extractdiag", {"offset": 1.0}, {"offset": 1}),
        ("gemm2", {"alpha": np.float32(0.5)}, {"alpha": 0.5}),
        ("gemm2", {"alpha": np.array(2.0)}, {"alpha": 2.0}),
        ("gemm2", {"alpha": 3}, {"alpha": 3.0}),
        ("gemm2", {"alpha": __import__("fractions").Fraction(1, 4)}, {"alpha": 0.25}),
    ],
)
def test_numbers_and_0d_arrays_are_accepted_as_parameters(name, params, resolved):
    from xlinalg.core import apply, get

    out = apply.resolve_params(get(name), params)
    for key, value in resolved.items():
        assert out[key] == value and type(out[key]) is type(value)
    args = (np.eye(3),) * (2 if name == "gemm2" else 1)
    plain = getattr(xlinalg, name)(*args, **resolved)
    np.testing.assert_array_equal(getattr(xlinalg, name)(*args, **params), plain)


def test_rank_error_says_how_to_pass_a_vector():
    from xlinalg.core import apply, get

    def message(name, shape, **params):
        op = get(name)
        return str(apply.rank_error(op, op.args[-1], shape, params))

    for name in ("potrs", "trsm", "trmm"):
        text = message(name, (3,))
        assert text.startswith(f"{name}: argument B must have at least 2 dimensions (a matrix (..., n, k) per batch entry), got shape (3,)")
        assert text.endswith("; for a vector b pass b[..., None]")
    text = message("trsm", (3,), rightside=True)
    assert "(a matrix (..., k, n) per batch entry)" in text and text.endswith("; for a vector b pass b[..., None, :]")
    # no vector hint where a vector is not a right-hand side
    assert "for a vector" not in message("gemm2", (3,))
    assert "for a vector" not in message("gelqf", (3,))
    assert "for a vector" not in message("potrf", (3,))
    assert message("trsm", ()).endswith("got shape ()")
    assert message("makediag", ()) == "makediag: argument a must have at least 1 dimensions (a vector (..., m) per batch entry), got shape ()"
    assert isinstance(apply.rank_error(get("potrs"), get("potrs").args[1], (3,)), ValueError)


def test_linalg_error_is_also_numpys_error():
    """From NumPy arrays a failure is an ``xlinalg.LinAlgError``, a ``ValueError`` and a
    ``numpy.linalg.LinAlgError`` (``except np.linalg.LinAlgError`` keeps working); it pickles."""
    import pickle

    with pytest.raises(np.linalg.LinAlgError) as info:
        xlinalg.potrf(-np.eye(3))
    exc = info.value
    assert isinstance(exc, xlinalg.LinAlgError) and isinstance(exc, ValueError)
    assert (exc.operator, exc.index) == ("potrf", ())
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc) and (back.operator, back.index) == ("potrf", ())


def test_error_class_is_made_once_per_base():
    from xlinalg.errors import LinAlgError, error_class

    class Base(RuntimeError):
        pass

    cls = error_class(Base)
    assert cls is error_class(Base) is error_class((Base,))
    assert issubclass(cls, LinAlgError) and issubclass(cls, Base) and issubclass(cls, ValueError)
    assert error_class(None) is LinAlgError and error_class(()) is LinAlgError
    assert error_class(ValueError) is LinAlgError  # already a base


def test_portable_library_raises_plain_linalg_error():
    strict = pytest.importorskip("array_api_strict")
    with pytest.raises(xlinalg.LinAlgError) as info:
        xlinalg.potrf(strict.asarray(-np.eye(3)))
    assert type(info.value) is xlinalg.LinAlgError


@pytest.mark.parametrize("framework", ["torch", "jax", "mxnet"])
def test_missing_framework_names_the_extra(framework):
    """``import xlinalg.<framework>`` without the framework says which extra installs it."""
    import subprocess
    import sys

    code = f"import sys; sys.modules[{framework!r}] = None\nimport xlinalg.{framework}"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: xlinalg."), last
    assert f'pip install "xlinalg[{framework}]"' in last, last


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


def test_validated_calls_are_remembered_by_parameter_type_and_value():
    """prepare remembers a validated call per signature (shapes, dtypes, plain parameters): a
    parameter equal to a remembered one but of another type (True == 1) is still checked, and a
    0-d array parameter, whose value may change in place, is read on every call."""
    torch = pytest.importorskip("torch")
    import xlinalg.torch as xt

    a = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(xlinalg.extractdiag(a, offset=1), [1.0, 5.0])
    with pytest.raises(TypeError, match="extractdiag: parameter offset must be an int, got True"):
        xlinalg.extractdiag(a, offset=True)
    x, y = torch.eye(2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)
    alpha = torch.tensor(2.0)
    torch.testing.assert_close(xt.gemm2(x, y, alpha=alpha), 2 * y)
    alpha.fill_(3.0)
    torch.testing.assert_close(xt.gemm2(x, y, alpha=alpha), 3 * y)
