"""The failure policy for non-finite inputs, with the core rules (NumPy, array-api-strict).

Operators with a declared ``failure`` (potrf, potri, potrs, trsm, inverse) reject a batch entry
whose input is not finite in the part they read: eagerly with ``xlinalg.LinAlgError`` naming
the batch index and the cause; without data to test (traced, or a symbolic graph:
``check_failure(..., eager=False)``) that entry's outputs are NaN in every element and the other
entries unchanged. Operators without a failure keep IEEE semantics.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import xlinalg
from xlinalg.core import apply, get

FAILING = ["potrf", "potri", "potrs", "trsm", "inverse"]


def arr(xp, x):
    return xp.asarray(np.asarray(x))


def clean_batch(name, rng):
    """Valid NumPy inputs of ``name``, a batch of 3 of order 4."""
    m = rng.standard_normal((3, 4, 4))
    spd = m @ np.swapaxes(m, -1, -2) + 4 * np.eye(4)
    factor = np.linalg.cholesky(spd)
    rhs = rng.standard_normal((3, 4, 2))
    return {
        "potrf": (spd,),
        "inverse": (spd,),
        "potri": (factor,),
        "potrs": (factor, rhs),
        "trsm": (factor, rhs),
    }[name]


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", FAILING)
def test_non_finite_read_entry_raises(xp, rng, name, value):
    arrays = [x.copy() for x in clean_batch(name, rng)]
    arrays[0][1, 3, 1] = value  # lower triangle: read by every operator here
    with pytest.raises(xlinalg.LinAlgError) as info:
        getattr(xlinalg, name)(*(arr(xp, x) for x in arrays))
    assert re.fullmatch(rf"{name}: input contains NaN or inf at batch index \(1,\) \(.*\)", str(info.value))
    assert info.value.index == (1,) and info.value.operator == name
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", ["potrs", "trsm"])
def test_non_finite_right_hand_side_raises(xp, rng, name):
    arrays = [x.copy() for x in clean_batch(name, rng)]
    arrays[1][2, 0, 1] = np.nan
    with pytest.raises(xlinalg.LinAlgError, match=re.escape(f"{name}: input contains NaN or inf at batch index (2,)")):
        getattr(xlinalg, name)(*(arr(xp, x) for x in arrays))


@pytest.mark.parametrize("name", ["potrf", "potri", "potrs", "trsm"])
def test_unread_triangle_may_hold_nan(xp, rng, name):
    """Only the named triangle of a structured argument is read: NaN elsewhere is ignored."""
    clean = clean_batch(name, rng)
    arrays = [x.copy() for x in clean]
    arrays[0][1, 0, 3] = np.nan  # upper triangle, not read with lower=True
    got = getattr(xlinalg, name)(*(arr(xp, x) for x in arrays))
    want = getattr(xlinalg, name)(*(arr(xp, x) for x in clean))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_inf_input_is_rejected_even_when_the_output_is_finite():
    """``inv([[inf, 0], [0, 1]])`` computes to a finite matrix; the input still fails."""
    a = np.stack([np.eye(2)] * 2)
    a[1, 0, 0] = np.inf
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("inverse: input contains NaN or inf at batch index (1,)")):
        xlinalg.inverse(a)


@pytest.mark.parametrize("n", [3, 48])  # factored several at a time; by LAPACK's getrf
@pytest.mark.parametrize("where", [(0, 0), (0, -1), (-1, 0), (-1, -1), (1, 2)])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_inverse_rejects_a_non_finite_entry_anywhere(n, where, bad):
    """The compiled layer reads whether A is finite from its LU factors where they tell: any
    NaN or infinity reaches U's diagonal, wherever it sits and whichever pivots are taken."""
    a = np.stack([2 * np.eye(n) + 0.1] * 2)
    a[1][where] = bad
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("inverse: input contains NaN or inf at batch index (1,)")):
        xlinalg.inverse(a)


def test_finite_inputs_whose_sum_overflows_are_no_failure(xp):
    """Large finite float32 entries (their sum overflows) are valid input."""
    a = np.stack([np.diag([3e38, 3e38, 1.0])] * 2).astype(np.float32)
    out = np.asarray(xlinalg.potrf(arr(xp, a)))
    np.testing.assert_allclose(out, np.sqrt(a), rtol=1e-6)


def test_first_failing_entry_is_named_whatever_its_cause(rng):
    a = np.stack([np.eye(3)] * 3)
    a[1] = -np.eye(3)  # not positive definite
    a[2, 1, 1] = np.nan
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("potrf: the matrix is not positive definite at batch index (1,)")):
        xlinalg.potrf(a)
    a[0, 2, 0] = np.inf
    with pytest.raises(xlinalg.LinAlgError, match=re.escape("potrf: input contains NaN or inf at batch index (0,)")):
        xlinalg.potrf(a)


@pytest.mark.parametrize("name", ["gemm2", "det", "slogdet", "syrk", "sumlogdiag", "trmm", "syevd"])
def test_operators_without_failure_keep_ieee_semantics(xp, rng, name):
    op = get(name)
    arrays = []
    for arg in op.args:
        x = np.stack([np.eye(3)] * 2) if arg.ndim == 2 else np.ones((2, 3))
        arrays.append(x)
    arrays[0][1, 0, 0] = np.nan
    out = getattr(xlinalg, name)(*(arr(xp, x) for x in arrays))
    outs = out if isinstance(out, tuple) else (out,)
    assert any(np.isnan(np.asarray(y)[1]).any() for y in outs)
    assert all(np.isfinite(np.asarray(y)[0]).all() for y in outs)


@pytest.mark.parametrize("name", FAILING)
def test_without_eager_checks_failing_entries_are_all_nan(xp, rng, name):
    """``check_failure(..., eager=False)`` (a symbolic graph, no data at the call) and the
    traced path (:func:`apply.fill_failed`) make every element of a failing entry NaN, the zero
    triangle of a factor included, and leave the others unchanged."""
    clean = clean_batch(name, rng)
    nan_input = [x.copy() for x in clean]
    nan_input[0][1, 3, 1] = np.nan
    failing = [x.copy() for x in clean]
    if name == "potrf":
        failing[0][2] = -np.eye(4)
    elif name == "inverse":
        failing[0][2] = np.ones((4, 4))
    else:
        failing[0][2, 2, 2] = 0.0
    op = get(name)
    want = apply.forward(apply.prepare(op, [arr(xp, x) for x in clean], {}))
    for arrays, bad in ((nan_input, 1), (failing, 2)):
        call = apply.prepare(op, [arr(xp, x) for x in arrays], {})
        with np.errstate(all="ignore"):
            outs = apply.forward(call, check=False)
        for y, w in zip(outs, want):
            y, w = np.asarray(y), np.asarray(w)
            assert np.isnan(y[bad]).all()
            good = [i for i in range(3) if i != bad]
            # a batch with a singular entry may take another kernel path (matrix by matrix):
            # equal up to rounding
            np.testing.assert_allclose(y[good], w[good], rtol=1e-13, atol=1e-15)
            assert y.dtype == w.dtype


def test_fill_failed_keeps_dtype_float32():
    a = np.stack([np.eye(3, dtype=np.float32)] * 2)
    a[0, 1, 1] = -1.0
    call = apply.prepare(get("potrf"), [a], {})
    with np.errstate(all="ignore"):
        (out,) = apply.forward(call, check=False)
    assert out.dtype == np.float32 and np.isnan(out[0]).all()
    np.testing.assert_array_equal(out[1], np.eye(3, dtype=np.float32))


# ---- the conformance check ----------------------------------------------------------------------
def _context(backend):
    from xlinalg_conformance.checks import Context

    return Context(backend)


@pytest.mark.parametrize("name", FAILING)
def test_conformance_check_passes_for_the_core(name):
    from xlinalg_conformance.backends import NumpyBackend
    from xlinalg_conformance.nan_policy import check_nan_policy

    outcome, skipped = check_nan_policy(_context(NumpyBackend()), name)
    assert outcome.ratio <= 1, outcome.message
    assert skipped == ["vmap: backend numpy lacks vmap"]


def test_conformance_check_is_not_applicable_without_failure():
    from xlinalg_conformance.backends import NumpyBackend
    from xlinalg_conformance.checks import NotApplicable
    from xlinalg_conformance.nan_policy import applies, check_nan_policy

    assert not applies("gemm2") and applies("potrf")
    with pytest.raises(NotApplicable):
        check_nan_policy(_context(NumpyBackend()), "gemm2")


def test_conformance_check_finds_a_backend_that_ignores_nan():
    """An eager backend that returns results for a NaN entry, and a traced one whose NaN entry
    is NaN only in part, fail the check."""
    from xlinalg_conformance.backends import NumpyBackend
    from xlinalg_conformance.nan_policy import check_nan_policy

    class Silent(NumpyBackend):
        name = "silent"

        def call(self, op, arrays, params):
            return super().call(op, [np.nan_to_num(x) for x in arrays], params)

    outcome, _ = check_nan_policy(_context(Silent()), "potrf")
    assert outcome.ratio > 1 and "no error raised" in outcome.message

    class Partial(NumpyBackend):
        name = "partial"
        capabilities = frozenset({"vjp", "jvp"})  # traced: no eager errors

        def call(self, op, arrays, params):
            outs = super().call(op, [np.nan_to_num(x) for x in arrays], params)
            outs = tuple(np.array(y, copy=True) for y in outs)
            for y, x in zip(outs, arrays):
                entry = np.isnan(x).any(axis=(-2, -1))
                y[entry] = np.where(np.tri(y.shape[-1], dtype=bool), np.nan, y[entry])  # the triangle only
            return outs

    outcome, _ = check_nan_policy(_context(Partial()), "potrf")
    assert outcome.ratio > 1 and "element(s) that are not NaN" in outcome.message
