"""Kernel tables: the NumPy/SciPy table agrees with the portable reference on every flag
combination and on both of its code paths, and keeps the failure contract."""

from __future__ import annotations

import itertools

import array_api_compat.numpy as xnp
import numpy as np
import pytest

from tests.cases import spd
from xlinalg.kernels import Kernels, kernels_for
from xlinalg.kernels.numpy import TRSM_MIN_ORDER, NumpyKernels

FLAGS = list(itertools.product([True, False], repeat=3))


@pytest.mark.parametrize("n", [1, 5, TRSM_MIN_ORDER + 3])
@pytest.mark.parametrize("lower,transpose,left", FLAGS)
def test_numpy_triangular_solve_matches_portable(rng, n, lower, transpose, left):
    a = rng.standard_normal((2, n, n)) + 2 * np.sqrt(n) * np.eye(n)  # both triangles filled
    b = rng.standard_normal((2, n, 3) if left else (2, 3, n))
    got = NumpyKernels(xnp).solve_triangular(a, b, lower=lower, transpose=transpose, left=left)
    ref = Kernels(xnp).solve_triangular(a, b, lower=lower, transpose=transpose, left=left)
    t = np.tril(a) if lower else np.triu(a)
    t = np.swapaxes(t, -1, -2) if transpose else t
    np.testing.assert_allclose(t @ got if left else got @ t, b, atol=1e-10)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("n", [3, TRSM_MIN_ORDER + 1])
def test_singular_triangular_entry_is_nan(rng, n):
    a = np.tril(rng.standard_normal((3, n, n))) + n * np.eye(n)
    a[1, 2, 2] = 0.0
    x = NumpyKernels(xnp).solve_triangular(a, np.ones((3, n, 2)), lower=True)
    assert np.all(np.isfinite(x[[0, 2]])) and not np.all(np.isfinite(x[1]))


@pytest.mark.parametrize("table", [NumpyKernels, Kernels])
def test_cholesky_marks_failed_entries_with_nan(rng, table):
    a = spd(rng, (4, 3, 3))
    a[2] = -a[2]
    el = table(xnp).cholesky(a)
    assert np.all(np.isnan(el[2]))
    np.testing.assert_allclose(el[[0, 1, 3]], np.linalg.cholesky(a[[0, 1, 3]]), rtol=1e-12)


def test_tables_are_chosen_by_namespace():
    assert isinstance(kernels_for(xnp), NumpyKernels)
    strict = pytest.importorskip("array_api_strict")
    assert type(kernels_for(strict)) is Kernels
