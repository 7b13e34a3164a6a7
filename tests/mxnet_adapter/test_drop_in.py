"""``xlinalg.mxnet`` as a literal drop-in: with every function of ``mx.nd.linalg`` and
``mx.sym.linalg`` replaced by xlinalg.mxnet's (``mx.nd.linalg.potrf = xlinalg.mxnet.potrf``),
code calling MXNet's namespaces gives xlinalg's unpatched results, imperatively with autograd,
in ``mx.sym`` graphs and in hybridized blocks.

The sizes lie on both sides of the switches that send the CPU kernels to MXNet's own operators
(:mod:`xlinalg.kernels.mxnet`: ``MIN_SIZE`` elements, and ``CHOLESKY_MIN_ORDER`` for Cholesky);
those kernels must not reach the replaced namespace functions (they would call back into
xlinalg without end). Operators the compiled kernel layer serves do not reach MXNet's kernels
at all (its run with ``XLINALG_KERNELS=python`` checks them).
"""

from __future__ import annotations

import pytest

from tests.mxnet_adapter import _helpers as h  # skips this module when MXNet is not installed

mx = h.mx

import numpy as np

import xlinalg.mxnet as la
from xlinalg.core import operators
from xlinalg.kernels import mxnet as mk
from xlinalg.lapack.rules import rule

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: (batch, n) of the inputs: below every switch; above MIN_SIZE with small matrices (batched
#: inverse, eigendecomposition and triangular solves go to MXNet, Cholesky stays in NumPy); above
#: both switches (every native kernel, triangular solves included: B has >= MIN_SIZE elements).
SIZES = {"below": ((3,), 4), "batched": ((400,), 4), "order-64": ((22,), 64)}
#: The kernels each operator's forward and backward reach in MXNet at the sizes above.
NATIVE = {"potrf": "_potrf", "trsm": "_trsm", "inverse": "_inverse", "syevd": "_syevd"}


def _params(op):
    return list(h.param_combinations(op))[-1]  # every flag set / non-default where there are parameters


def _arrays(op, params, size):
    batch, n = SIZES[size]
    arrays = h.inputs(op, params, np.random.default_rng(7), batch=batch, n=n)
    if op == "sumlogdiag":  # a diagonal of N(0, 1) + 3 turns negative somewhere in a large batch
        a, i = arrays[0].copy(), np.arange(n)
        a[..., i, i] = np.abs(a[..., i, i])
        arrays = [a]
    return arrays


@pytest.fixture
def install(monkeypatch):
    """A function installing every operator of xlinalg.mxnet as ``mx.nd.linalg.<op>`` and
    ``mx.sym.linalg.<op>`` (``potrs``, which MXNet lacks, added); undone after the test."""

    def install_all():
        for name in la.__all__:
            for module in (mx.nd.linalg, mx.sym.linalg):
                monkeypatch.setattr(module, name, getattr(la, name), raising=False)

    return install_all


@pytest.fixture
def native_calls(monkeypatch):
    """Counts of the calls into MXNet's own operators made by the CPU kernels."""
    counts = {}
    for attr in NATIVE.values():
        original = getattr(mk, attr)

        def counted(*args, _attr=attr, _original=original, **kwargs):
            counts[_attr] = counts.get(_attr, 0) + 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(mk, attr, counted)
    return counts


def test_install_replaces_every_mxnet_operator(install):
    """Nothing of ``mx.nd.linalg`` / ``mx.sym.linalg`` stays MXNet's once installed."""
    install()
    for module in (mx.nd.linalg, mx.sym.linalg):
        assert set(module.__all__) <= set(la.__all__)
        for name in la.__all__:
            assert getattr(module, name) is getattr(la, name)


def test_the_sizes_straddle_the_switches():
    below, batched, order = (h.inputs("trsm", {}, np.random.default_rng(0), batch=b, n=n) for b, n in SIZES.values())
    assert not mk.usable(below[0]) and not mk.usable(below[1])
    assert mk.usable(batched[0]) and mk.usable(batched[1]) and batched[0].shape[-1] < mk.CHOLESKY_MIN_ORDER
    assert mk.usable(order[0]) and mk.usable(order[1]) and order[0].shape[-1] >= mk.CHOLESKY_MIN_ORDER


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("op", la.__all__)
def test_imperative_autograd(op, size, install, native_calls):
    params = _params(op)
    arrays = _arrays(op, params, size)
    y_ref, g_ref, heads = h.run(mx, getattr(la, op), arrays, params)
    assert all(np.isfinite(v).all() for v in y_ref + g_ref)
    reached = dict(native_calls)
    native_calls.clear()
    install()
    assert getattr(mx.nd.linalg, op) is getattr(la, op)
    y, g, _ = h.run(mx, getattr(mx.nd.linalg, op), arrays, params, heads)
    for a, b in zip(y + g, y_ref + g_ref):
        np.testing.assert_array_equal(a, b)
    assert native_calls == reached
    compiled = rule(operators()[op], "forward") is not None  # the compiled layer replaces MXNet's kernel
    if op in NATIVE and size != "below" and (op != "potrf" or size == "order-64") and not compiled:
        assert native_calls.get(NATIVE[op], 0) >= 1, f"{op} at {size} did not reach MXNet's kernel"
    if size == "below":
        assert not native_calls


def _symbol_run(fn, op, params, arrays, heads, grad_req="write"):
    names = [f"x{i}" for i in range(len(arrays))]
    out = fn(*[mx.sym.var(n) for n in names], **params)
    args = {n: mx.nd.array(a, dtype=a.dtype) for n, a in zip(names, arrays)}
    grads = {n: mx.nd.zeros(a.shape, dtype=a.dtype) for n, a in zip(names, arrays)}
    ex = out.bind(mx.cpu(), args, args_grad=grads, grad_req=grad_req)
    outs = ex.forward(is_train=True)
    ex.backward([mx.nd.array(g, dtype=g.dtype) for g in heads])
    return [o.asnumpy() for o in outs], [ex.grad_dict[n].asnumpy() for n in names]


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("op", la.__all__)
def test_symbol_graph(op, size, install):
    params = _params(op)
    arrays = _arrays(op, params, size)
    _, _, heads = h.run(mx, getattr(la, op), arrays, params)
    y_ref, g_ref = _symbol_run(getattr(la, op), op, params, arrays, heads)
    install()
    assert getattr(mx.sym.linalg, op) is getattr(la, op)
    y, g = _symbol_run(getattr(mx.sym.linalg, op), op, params, arrays, heads)
    for a, b in zip(y + g, y_ref + g_ref):
        np.testing.assert_array_equal(a, b)


class _Block(mx.gluon.HybridBlock):
    """Written against MXNet's namespace: ``F.linalg.<op>`` (``mx.sym.linalg`` once hybridized)."""

    def __init__(self, op, params):
        super().__init__()
        self.op, self.op_params = op, params

    def hybrid_forward(self, F, *xs):
        return getattr(F.linalg, self.op)(*xs, **self.op_params)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("op", la.__all__)
def test_hybridized_block(op, size, install):
    params = _params(op)
    arrays = _arrays(op, params, size)
    y_ref, g_ref, heads = h.run(mx, getattr(la, op), arrays, params)
    install()
    block = _Block(op, params)
    block.hybridize()
    y, g, _ = h.run(mx, block, arrays, {}, heads)
    for a, b in zip(y, y_ref):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(g, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=0)
