"""Helpers of the MXNet adapter tests, imported as ``from tests.mxnet_adapter import _helpers as
h``; importing it skips the importing test module when MXNet is not installed.

The operator cases (``OPERATORS``, ``param_combinations``, ``inputs``, from the operator
registry) live in ``conftest.py`` and are re-exported here with ``MXNET_OPERATORS``, the ones
MXNet has natively; the NDArray helpers (``nd``, ``run``, ``rel_err``) are defined here.
"""

from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mxnet")

from tests.mxnet_adapter.conftest import (  # noqa: F401  (re-exported)
    OPERATORS,
    inputs,
    param_combinations,
)


def recorded_available() -> bool:
    """Whether calls under ``mx.autograd.record()`` are recorded as the compiled layer's
    ``xlinalg_recorded`` (not as Python custom operators)."""
    from xlinalg.adapters import mxnet as adapter

    try:
        return adapter._recorded_operator() is not None
    except ImportError:
        return False


def _recorded_reason() -> str:
    from xlinalg.lapack import mxnet_op

    return mxnet_op.reason()


#: Skips a test where calls are not recorded as ``xlinalg_recorded``.
needs_recorded = pytest.mark.skipif(not recorded_available(), reason=f"no recorded operator ({_recorded_reason()})")

#: The operators MXNet has natively (``mx.nd.linalg.<op>``), the ones parity is checked for.
MXNET_OPERATORS = tuple(op for op in OPERATORS if hasattr(mx.nd.linalg, op))


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

