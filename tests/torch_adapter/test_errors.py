"""Errors with tensors: the same types and messages as with NumPy; failures raise
``xlinalg.LinAlgError`` naming operator and batch index, which is also a
``torch.linalg.LinAlgError`` (and NumPy's failures a ``numpy.linalg.LinAlgError``)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import xlinalg
import xlinalg.torch as xt
from tests.torch_adapter._helpers import torch


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
    assert str(got) == str(want)
    if isinstance(want, xlinalg.LinAlgError):
        # one xlinalg type, flavoured with each library's own error class
        assert isinstance(got, xlinalg.LinAlgError) and isinstance(got, ValueError)
        assert isinstance(got, torch.linalg.LinAlgError) and not isinstance(got, np.linalg.LinAlgError)
        assert isinstance(want, np.linalg.LinAlgError) and not isinstance(want, torch.linalg.LinAlgError)
        assert (got.operator, got.index) == (want.operator, want.index)
    else:
        assert type(got) is type(want), (got, want)


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


def test_jitter_loop_catching_torch_linalg_error():
    """The usual retry loop written against torch's own error keeps working."""
    a = torch.ones(4, 4, dtype=torch.float64)  # rank one: positive semi-definite only
    eye = torch.eye(4, dtype=torch.float64)
    eps, tries = 1e-10, 0
    while True:
        try:
            el = xt.potrf(a)
            break
        except torch.linalg.LinAlgError as exc:
            assert isinstance(exc, xlinalg.LinAlgError) and exc.operator == "potrf"
            a = a + eps * eye
            eps, tries = eps * 10, tries + 1
            assert tries < 20
    assert tries >= 1
    torch.testing.assert_close(el @ el.mT, a, rtol=1e-10, atol=1e-10)


def test_linalg_error_pickles_with_its_class():
    import pickle

    with pytest.raises(torch.linalg.LinAlgError) as info:
        xt.inverse(torch.zeros(2, 3, 3, dtype=torch.float64))
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is type(info.value) and str(back) == str(info.value)
    assert (back.operator, back.index) == ("inverse", (0,))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_input_raises_naming_the_entry(value):
    """Eagerly a NaN or inf in the triangle an operator reads is an error naming the batch
    index; in the other triangle it is ignored."""
    a = torch.eye(3, dtype=torch.float64).repeat(3, 1, 1) * 2
    a[1, 0, 2] = value  # upper triangle: not read by lower=True
    torch.testing.assert_close(xt.potrf(a), xt.potrf(torch.eye(3, dtype=torch.float64).repeat(3, 1, 1) * 2))
    a[1, 2, 0] = value
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("potrf: input contains NaN or inf at batch index (1,) (A: (3, 3, 3))")) as info:
        xt.potrf(a.requires_grad_())
    assert isinstance(info.value, torch.linalg.LinAlgError) and info.value.index == (1,)
    b = torch.ones(3, 3, 2, dtype=torch.float64)
    b[2, 1, 0] = value
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("trsm: input contains NaN or inf at batch index (2,)")):
        xt.trsm(torch.eye(3, dtype=torch.float64), b)


def test_operators_without_failure_keep_ieee_semantics():
    a = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    a[1, 0, 0] = float("nan")
    assert torch.isnan(xt.gemm2(a, a)[1]).any() and torch.isfinite(xt.gemm2(a, a)[0]).all()
    assert torch.isnan(xt.det(a)[1]) and xt.det(a)[0] == 1.0


def _nan_batch(name):
    """``(arrays, arrays_clean)``: a batch of 3 where entry 1 has a NaN in the read triangle."""
    rng = np.random.default_rng(4)
    m = rng.standard_normal((3, 4, 4))
    spd = m @ np.swapaxes(m, -1, -2) + 4 * np.eye(4)
    clean = {
        "potrf": (spd,),
        "inverse": (spd,),
        "potri": (np.linalg.cholesky(spd),),
        "potrs": (np.linalg.cholesky(spd), rng.standard_normal((3, 4, 2))),
        "trsm": (np.linalg.cholesky(spd), rng.standard_normal((3, 4, 2))),
    }[name]
    bad = [x.copy() for x in clean]
    bad[0][1, 3, 1] = np.nan  # lower triangle
    return tuple(map(torch.from_numpy, bad)), tuple(map(torch.from_numpy, clean))


@pytest.mark.parametrize("name", ["potrf", "potri", "potrs", "trsm", "inverse"])
def test_non_finite_entry_is_all_nan_under_vmap_and_compile(name):
    """Traced (vmap, torch.compile) the failing entry's outputs are NaN in every element (the
    zero triangle of a factor included) and the other entries are unaffected."""
    bad, clean = _nan_batch(name)
    fn = getattr(xt, name)
    want = fn(*clean)
    torch._dynamo.reset()
    for run in (torch.func.vmap(fn), torch.compile(fn, backend="aot_eager", fullgraph=True)):
        out = run(*bad)
        assert torch.isnan(out[1]).all(), out[1]
        torch.testing.assert_close(out[[0, 2]], want[[0, 2]], rtol=1e-12, atol=1e-12)


def test_nan_input_is_an_error_eagerly():
    """A NaN input of an operator with a failure raises (it used to pass through silently,
    with a NaN pattern that differed between frameworks)."""
    a = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    a[1, 0, 0] = float("nan")
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("potrf: input contains NaN or inf at batch index (1,)")):
        xt.potrf(a)
