"""Shared helpers of the core tests; inputs of every operator come from its registry entry
(:func:`xlinalg.core.samples.example`)."""

from __future__ import annotations

import numpy as np

from xlinalg.core import apply
from xlinalg.core.samples import example as _example


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
    """``(arrays, params)``: valid NumPy inputs of ``name`` with ``batch`` axes (the first
    parameter combination of the operator's grid)."""
    return _example(name, rng, batch=batch, n=n, dtype=dtype)


def pure_rules(call, cotangents):
    """Forward outputs (failing entries NaN) and VJP of the pure rules for a prepared call: what
    every compiled rule is compared with."""
    op = call.op
    read = apply.read(call)
    outputs = apply.check_failure(call, read, op.forward(call.xp, call.kern, *read, **call.params), eager=False)
    grads = apply.project(call, op.vjp(call.xp, call.kern, read, tuple(outputs), cotangents, **call.params))
    return outputs, grads


class MatmulRecorder:
    """The NumPy Array API namespace, recording the operand shapes of every ``matmul`` in
    ``products`` (pairs of shape tuples)."""

    def __init__(self):
        self.products = []

    def __getattr__(self, name):
        import array_api_compat.numpy as xp_numpy

        return getattr(xp_numpy, name)

    def matmul(self, a, b):
        import array_api_compat.numpy as xp_numpy

        self.products.append((tuple(a.shape), tuple(b.shape)))
        return xp_numpy.matmul(a, b)


def recording_kernels(solves: list):
    """NumPy's kernel table, appending the operand shapes of every triangular solve to
    ``solves`` (pairs of shape tuples)."""
    import array_api_compat.numpy as xp_numpy

    from xlinalg.kernels import kernels_for

    class Recording(type(kernels_for(xp_numpy))):
        def solve_triangular(self, a, b, **kw):
            solves.append((tuple(a.shape), tuple(b.shape)))
            return super().solve_triangular(a, b, **kw)

    return Recording(xp_numpy)
