"""Symbolic use: the operators in ``mx.sym`` graphs and in hybridized ``HybridBlock``\\ s give
the imperative outputs and gradients (grad_req "write" and "add")."""

from __future__ import annotations

import pytest

from tests.mxnet_adapter import _helpers as h  # skips this module when MXNet is not installed

mx = h.mx

import numpy as np

import xlinalg
import xlinalg.mxnet as la

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _params(op):
    combos = list(h.param_combinations(op))
    return combos[-1]  # every flag set / non-default where there are parameters


def _executor(op, params, arrays, grad_req):
    names = [f"x{i}" for i in range(len(arrays))]
    out = getattr(la, op)(*[mx.sym.var(n) for n in names], **params)
    args = {n: mx.nd.array(a, dtype=a.dtype) for n, a in zip(names, arrays)}
    grads = {n: mx.nd.zeros(a.shape, dtype=a.dtype) for n, a in zip(names, arrays)}
    return out, out.bind(mx.cpu(), args, args_grad=grads, grad_req=grad_req), names


@pytest.mark.parametrize("grad_req", ["write", "add"])
@pytest.mark.parametrize("op", h.OPERATORS)
def test_symbol_graph(op, grad_req, rng):
    params = _params(op)
    arrays = h.inputs(op, params, rng)
    y_imp, g_imp, heads = h.run(mx, getattr(la, op), arrays, params)
    sym, ex, names = _executor(op, params, arrays, grad_req)
    assert sym.list_arguments() == names
    _, out_shapes, _ = sym.infer_shape(**{n: a.shape for n, a in zip(names, arrays)})
    assert [tuple(s) for s in out_shapes] == [y.shape for y in y_imp]
    repeat = 2 if grad_req == "add" else 1
    for _ in range(repeat):
        outs = ex.forward(is_train=True)
        ex.backward([mx.nd.array(g, dtype=g.dtype) for g in heads])
    for y, r in zip(outs, y_imp):
        assert y.dtype == r.dtype
        np.testing.assert_array_equal(y.asnumpy(), r)
    for g, r in zip(ex.grad_arrays, g_imp):
        np.testing.assert_allclose(g.asnumpy(), repeat * r, rtol=1e-13, atol=0)


class _Block(mx.gluon.HybridBlock):
    def __init__(self, op, params):
        super().__init__()
        self.op, self.op_params = op, params

    def hybrid_forward(self, F, *xs):
        return getattr(la, self.op)(*xs, **self.op_params)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op", h.OPERATORS)
def test_hybridized_block(op, dtype, rng):
    params = _params(op)
    arrays = h.inputs(op, params, rng, dtype=dtype)
    y_imp, g_imp, heads = h.run(mx, getattr(la, op), arrays, params)
    block = _Block(op, params)
    block.hybridize()
    for grad_req, factor in (("write", 1), ("add", 2)):
        y_hyb, g_hyb, _ = h.run(mx, block, arrays, {}, heads, grad_req=grad_req, repeat=factor)
        for a, b in zip(y_hyb, y_imp):
            assert a.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(a, b)
        for a, b in zip(g_hyb, g_imp):
            np.testing.assert_allclose(a, factor * b, rtol=1e-5 if dtype == "float32" else 1e-13)


def test_hybridized_model_with_native_operators(rng):
    """xlinalg operators mixed with MXNet's own inside one hybridized graph."""

    class Model(mx.gluon.HybridBlock):
        def hybrid_forward(self, F, x):
            u, lam = la.syevd(x)
            chol = la.potrf(x)
            return la.sumlogdiag(chol) + F.sum(lam * lam, axis=-1) + F.linalg.det(x)

    a = h.inputs("potrf", {}, rng, garbage=False)[0]
    results = []
    for hybridize in (False, True):
        model = Model()
        if hybridize:
            model.hybridize()
        y, g, _ = h.run(mx, model, [a], {}, [np.ones(3)])
        results.append((y[0], g[0]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-13)


def test_xlinalg_dispatches_symbols():
    s = xlinalg.potrf(mx.sym.var("A"), lower=False)
    assert isinstance(s, mx.sym.Symbol)
    assert s.infer_shape(A=(2, 5, 5))[1] == [(2, 5, 5)]
    u_lam = la.syevd(mx.sym.var("A"))
    assert isinstance(u_lam, mx.sym.Symbol) and len(u_lam.list_outputs()) == 2
    assert u_lam.infer_shape(A=(4, 4))[1] == [(4, 4), (4,)]


@pytest.mark.parametrize("hybridize", [False, True])
def test_gemm_axis_in_graphs(hybridize, rng):
    """MXNet's gemm ``axis`` through shape inference and the custom operator."""
    a, b, c = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 5, 4, 6)), rng.standard_normal((2, 3, 4, 6))
    params = {"axis": 1, "transpose_b": False, "alpha": 0.5, "beta": 2.0}
    y_native, g_native, heads = h.run(mx, mx.nd.linalg.gemm, [a, b, c], params)
    sym = la.gemm(mx.sym.var("a"), mx.sym.var("b"), mx.sym.var("c"), **params)
    assert sym.infer_shape(a=a.shape, b=b.shape, c=c.shape)[1] == [y_native[0].shape]
    block = _Block("gemm", params)
    if hybridize:
        block.hybridize()
    y, g, _ = h.run(mx, block, [a, b, c], {}, heads)
    np.testing.assert_allclose(y[0], y_native[0], rtol=1e-13)
    for gi, gn in zip(g, g_native):
        np.testing.assert_allclose(gi, gn, rtol=1e-12)


def test_exported_block_loads(tmp_path, rng):
    """A hybridized block exports with the custom operators and loads as a SymbolBlock."""
    a = h.inputs("potrf", {}, rng, garbage=False)[0]
    block = _Block("potrf", {"lower": False})
    block.hybridize()
    x = mx.nd.array(a, dtype="float64")
    expected = block(x).asnumpy()
    prefix = str(tmp_path / "model")
    block.export(prefix)
    loaded = mx.gluon.SymbolBlock.imports(f"{prefix}-symbol.json", ["data"])
    np.testing.assert_array_equal(loaded(x).asnumpy(), expected)
