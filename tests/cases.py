"""One valid input per operator (NumPy), for tests that loop over every operator."""

from __future__ import annotations

import numpy as np


def to_numpy(x):
    """A NumPy copy of an array of any library used in these tests."""
    if isinstance(x, np.ndarray):
        return x.copy()
    return np.from_dlpack(x).copy()


def spd(rng, shape, dtype="float64"):
    """Well-conditioned symmetric positive definite matrices of ``shape`` (..., n, n)."""
    n = shape[-1]
    a = rng.standard_normal(shape)
    return (a @ np.swapaxes(a, -1, -2) / max(n, 1) + np.eye(n)).astype(dtype)


def example(name: str, rng, batch=(), n=4, dtype="float64"):
    """``(arrays, params)``: well-conditioned NumPy inputs of ``name`` with ``batch`` axes."""

    def mat(r, c):
        return rng.standard_normal((*batch, r, c)).astype(dtype)

    def tri():
        return (np.tril(rng.standard_normal((*batch, n, n))) + 3 * np.eye(n)).astype(dtype)

    k = 3
    table = {
        "gemm": ((mat(n, k), mat(k, 2), mat(n, 2)), {"alpha": 0.5, "beta": 2.0}),
        "gemm2": ((mat(n, k), mat(k, 2)), {"alpha": 0.5}),
        "syrk": ((mat(n, k),), {"alpha": 2.0}),
        "trmm": ((tri(), mat(n, k)), {"alpha": 0.5}),
        "trsm": ((tri(), mat(n, k)), {"alpha": 0.5}),
        "potrf": ((spd(rng, (*batch, n, n), dtype),), {}),
        "potri": ((tri(),), {}),
        "potrs": ((tri(), mat(n, k)), {}),
        "sumlogdiag": ((spd(rng, (*batch, n, n), dtype),), {}),
        "gelqf": ((mat(max(n - 1, 0), n),), {}),
        "syevd": ((spd(rng, (*batch, n, n), dtype),), {}),
        "extractdiag": ((mat(n, n),), {}),
        "makediag": ((rng.standard_normal((*batch, n)).astype(dtype),), {}),
        "extracttrian": ((mat(n, n),), {}),
        "maketrian": ((rng.standard_normal((*batch, n * (n + 1) // 2)).astype(dtype),), {}),
        "inverse": ((mat(n, n) + 3 * np.eye(n, dtype=dtype),), {}),
        "det": ((mat(n, n) + 3 * np.eye(n, dtype=dtype),), {}),
        "slogdet": ((mat(n, n) + 3 * np.eye(n, dtype=dtype),), {}),
    }
    return table[name]
