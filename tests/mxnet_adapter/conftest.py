"""Fixtures of the MXNet adapter tests: inputs per operator and NDArray helpers (the test
modules import this module as ``mxnet_adapter_support``).

The test modules skip when MXNet is not installed. They check for a real installation first:
``tests/`` is on ``sys.path``, so without MXNet ``import mxnet`` would find this directory as a
namespace package.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys

import numpy as np
import pytest


def mxnet_installed() -> bool:
    spec = importlib.util.find_spec("mxnet")
    return spec is not None and spec.origin is not None


#: Every MXNet linalg operator (and potrs) with the parameter grid the parity test walks.
PARAM_GRID = {
    "gemm": {"transpose_a": (False, True), "transpose_b": (False, True), "alpha": (1.0, -0.7), "beta": (1.0, 2.5)},
    "gemm2": {"transpose_a": (False, True), "transpose_b": (False, True), "alpha": (1.0, -0.7)},
    "potrf": {"lower": (True, False)},
    "potri": {"lower": (True, False)},
    "potrs": {"lower": (True, False)},
    "trmm": {"transpose": (False, True), "rightside": (False, True), "lower": (True, False), "alpha": (1.0, 0.6)},
    "trsm": {"transpose": (False, True), "rightside": (False, True), "lower": (True, False), "alpha": (1.0, 0.6)},
    "syrk": {"transpose": (False, True), "alpha": (1.0, 1.7)},
    "sumlogdiag": {},
    "gelqf": {},
    "syevd": {},
    "extractdiag": {"offset": (0, 2, -1)},
    "makediag": {"offset": (0, 2, -1)},
    "extracttrian": {"offset": (0, 2, -1), "lower": (True, False)},
    "maketrian": {"offset": (0, 2, -1), "lower": (True, False)},
    "inverse": {},
    "det": {},
    "slogdet": {},
}
OPERATORS = tuple(PARAM_GRID)
MXNET_OPERATORS = tuple(op for op in OPERATORS if op != "potrs")


def param_combinations(op):
    grid = PARAM_GRID[op]
    for values in itertools.product(*grid.values()):
        yield dict(zip(grid, values))


def inputs(op, params, rng, *, batch=(3,), n=4, dtype="float64", garbage=True):
    """Well-conditioned NumPy inputs of ``op`` for ``params``. Structured arguments (symmetric,
    triangular) carry unrelated values in the triangle not read when ``garbage``."""

    def mat(r, c):
        return rng.standard_normal((*batch, r, c))

    lower = params.get("lower", True)

    def triangular():
        t = mat(n, n) * 0.3 + 2.0 * np.eye(n)
        keep = np.tril(t) if lower else np.triu(t)
        return keep + (t - keep) * (5.0 if garbage else 0.0)

    def spd():
        a = mat(n, n)
        s = a @ np.swapaxes(a, -1, -2) / n + np.eye(n) + np.diag(np.arange(n) * 0.5)
        if not garbage:
            return s
        noise = rng.standard_normal(s.shape)
        return np.tril(s) + np.triu(noise, 1) if lower else np.triu(s) + np.tril(noise, -1)

    k = 3
    ta, tb = params.get("transpose_a", False), params.get("transpose_b", False)
    t = params.get("transpose", False)
    right = params.get("rightside", False)
    m = n + abs(params.get("offset", 0))
    if op in ("gemm", "gemm2"):
        a = mat(k, n) if ta else mat(n, k)
        b = mat(2, k) if tb else mat(k, 2)
        arrays = [a, b] + ([mat(n, 2)] if op == "gemm" else [])
    elif op == "syrk":
        arrays = [mat(k, n) if t else mat(n, k)]
    elif op in ("trmm", "trsm"):
        arrays = [triangular(), mat(k, n) if right else mat(n, k)]
    elif op in ("potrf", "syevd"):
        arrays = [spd()]
    elif op == "potri":
        arrays = [triangular()]
    elif op == "potrs":
        arrays = [triangular(), mat(n, k)]
    elif op == "sumlogdiag":
        arrays = [mat(n, n) + 3.0 * np.eye(n)]
    elif op == "gelqf":
        arrays = [mat(n - 1, n)]
    elif op in ("extractdiag", "extracttrian"):
        arrays = [mat(m, m)]
    elif op == "makediag":
        arrays = [rng.standard_normal((*batch, n))]
    elif op == "maketrian":
        arrays = [rng.standard_normal((*batch, n * (n + 1) // 2))]
    else:  # inverse, det, slogdet
        arrays = [mat(n, n) + 3.0 * np.eye(n)]
    return [np.ascontiguousarray(x, dtype=dtype) for x in arrays]


def nd(x, mx, grad_req=None):
    """An NDArray copy of ``x`` (same dtype), with a gradient buffer when ``grad_req``."""
    y = mx.nd.array(x, dtype=x.dtype)
    if grad_req:
        y.attach_grad(grad_req=grad_req)
    return y


def as_tuple(out):
    return tuple(out) if isinstance(out, (list, tuple)) else (out,)


def run(mx, fn, arrays, params, heads=None, *, grad_req="write", repeat=1, seed=0):
    """``fn(*arrays, **params)`` on NDArray copies under ``mx.autograd.record()``, then
    ``backward`` with head gradients ``heads`` (random when ``None``) ``repeat`` times.
    Returns ``(outputs, input gradients, heads)`` as NumPy arrays."""
    xs = [nd(a, mx, grad_req) for a in arrays]
    outs = None
    for _ in range(repeat):
        with mx.autograd.record():
            outs = as_tuple(fn(*xs, **params))
        if heads is None:
            r = np.random.default_rng(seed)
            heads = [r.standard_normal(o.shape).astype(o.dtype) for o in outs]
        mx.autograd.backward(list(outs), [mx.nd.array(g, dtype=g.dtype) for g in heads])
    return [o.asnumpy() for o in outs], [x.grad.asnumpy() for x in xs], heads


def rel_err(actual, expected):
    """Largest absolute difference relative to the largest magnitude of ``expected`` (at least 1e-300)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if actual.size == 0:
        return 0.0
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-300))


@pytest.fixture
def rng():
    return np.random.default_rng(20240607)


sys.modules.setdefault("mxnet_adapter_support", sys.modules[__name__])
