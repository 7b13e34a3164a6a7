"""The bound namespace: MXNet's names, signatures, defaults and output layout; dispatch of
``xlinalg.<op>`` on NDArrays; ``import xlinalg`` imports no MXNet."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest

from tests.mxnet_adapter import _helpers as h  # skips this module when MXNet is not installed

mx = h.mx

import numpy as np

import xlinalg
import xlinalg.mxnet as la

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _mxnet_defaults(op):
    """``{parameter: default}`` from ``mx.nd.linalg.<op>``'s docstring."""
    doc = getattr(mx.nd.linalg, op).__doc__
    out = {}
    for name, kind, default in re.findall(r"^(\w+) : (boolean|double|int), optional, default='?([^'\n]+)'?$", doc, re.M):
        out[name] = {"boolean": lambda v: bool(int(v)), "double": float, "int": int}[kind](default)
    return out


def test_namespace_has_every_operator(rng):
    """Every registered operator, and nothing else, is in xlinalg.mxnet and callable on NDArrays
    (with the MXNet note appended to the core docstring)."""
    registered = xlinalg.core.operators()
    assert sorted(la.__all__) == sorted(registered) and set(la.FUNCTIONS) == set(registered)
    for name, spec in registered.items():
        fn = getattr(la, name)
        assert fn is la.FUNCTIONS[name] and fn.operator is spec and fn.__module__ == "xlinalg.mxnet"
        assert fn.__doc__.startswith(spec.summary) and "``mx.nd.linalg``" in fn.__doc__
        params = next(h.param_combinations(name))
        arrays = h.inputs(name, params, rng)
        outs = h.as_tuple(fn(*[mx.nd.array(a, dtype=a.dtype) for a in arrays], **params))
        expected = h.as_tuple(xlinalg.FUNCTIONS[name](*arrays, **params))
        assert len(outs) == len(spec.outputs) and all(isinstance(y, mx.nd.NDArray) for y in outs)
        for y, r in zip(outs, expected):
            assert h.rel_err(y.asnumpy(), np.asarray(r).reshape(y.shape)) <= 1e-12, name


def test_namespace_follows_the_registry():
    """An operator registered before ``import xlinalg.mxnet`` is bound there without a change to
    the module (a fresh interpreter: the registry is process-wide)."""
    code = (
        "import dataclasses, numpy as np, mxnet as mx\n"
        "from xlinalg.core import operator\n"
        "spec = dataclasses.replace(operator.get('inverse'), name='inverse_again')\n"
        "operator.register(spec)\n"
        "import xlinalg.mxnet as la\n"
        "assert 'inverse_again' in la.__all__, la.__all__\n"
        "a = np.eye(3) * 2.0 + 0.1\n"
        "x = mx.nd.array(a, dtype='float64')\n"
        "x.attach_grad()\n"
        "with mx.autograd.record():\n"
        "    y = la.inverse_again(x)\n"
        "y.backward(mx.nd.ones((3, 3), dtype='float64'))\n"
        "inv = np.linalg.inv(a)\n"
        "np.testing.assert_allclose(y.asnumpy(), inv, rtol=1e-13)\n"
        "np.testing.assert_allclose(x.grad.asnumpy(), -inv.T @ np.ones((3, 3)) @ inv.T, rtol=1e-12)\n"
        "sym = la.inverse_again(mx.sym.var('A'))\n"
        "assert sym.infer_shape(A=(2, 3, 3))[1] == [(2, 3, 3)]\n"
    )
    root = str(__import__("pathlib").Path(xlinalg.__file__).parents[1])
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("op", h.MXNET_OPERATORS)
def test_signature_matches_mxnet(op):
    ours = inspect.signature(getattr(la, op)).parameters
    theirs = inspect.signature(getattr(mx.nd.linalg, op)).parameters
    arrays = [n for n in theirs if n in "ABC"]
    assert [n for n in ours if n in "ABC"] == arrays
    for name, default in _mxnet_defaults(op).items():
        assert name in ours, f"{op}: MXNet parameter {name} missing"
        assert ours[name].default == default and type(ours[name].default) is type(default)
    extra = set(ours) - set(theirs) - {"out", "name"}
    # potrf/potri take MXNet's undocumented `lower`; potrf/potri parity covers both values
    assert extra <= {"lower"}, extra
    # positional order of MXNet: arrays first, then parameters in MXNet's order
    mx_order = [n for n in theirs if n not in ("out", "name", "kwargs")]
    assert [n for n in ours if n in mx_order] == mx_order


def test_positional_parameters_like_mxnet(rng):
    a, b, c = (rng.standard_normal(s) for s in [(2, 3), (4, 3), (2, 4)])
    args = [mx.nd.array(x, dtype="float64") for x in (a, b, c)]
    ours = la.gemm(*args, False, True, 2.0, 10.0).asnumpy()
    native = mx.nd.linalg.gemm(*args, False, True, 2.0, 10.0).asnumpy()
    np.testing.assert_allclose(ours, native, rtol=1e-14)
    np.testing.assert_allclose(la.gemm(A=args[0], B=args[1], C=args[2], transpose_b=True).asnumpy(), a @ b.T + c, rtol=1e-14)


def test_out_and_name(rng):
    a = h.inputs("potrf", {}, rng, garbage=False)[0]
    out = mx.nd.zeros(a.shape, dtype="float64")
    res = la.potrf(mx.nd.array(a, dtype="float64"), out=out)
    np.testing.assert_allclose(out.asnumpy(), np.linalg.cholesky(a), rtol=1e-13)
    assert res is out or np.array_equal(res.asnumpy(), out.asnumpy())
    u, lam = (mx.nd.zeros((3, 4, 4), dtype="float64"), mx.nd.zeros((3, 4), dtype="float64"))
    la.syevd(mx.nd.array(a, dtype="float64"), out=[u, lam])
    np.testing.assert_allclose(lam.asnumpy(), np.linalg.eigvalsh(a), rtol=1e-12)
    s = la.potrf(mx.sym.var("A"), name="chol")
    assert s.name == "chol"


def test_output_layout(rng):
    a = h.inputs("syevd", {}, rng, garbage=False)[0]
    x = mx.nd.array(a, dtype="float64")
    u, lam = la.syevd(x)  # rows of U are eigenvectors: U A = diag(lam) U
    np.testing.assert_allclose(u.asnumpy() @ a, lam.asnumpy()[..., :, None] * u.asnumpy(), atol=1e-12)
    g = rng.standard_normal((3, 3, 5))
    q, el = la.gelqf(mx.nd.array(g, dtype="float64"))
    assert q.shape == (3, 3, 5) and el.shape == (3, 3, 3)
    np.testing.assert_allclose(el.asnumpy() @ q.asnumpy(), g, atol=1e-12)
    assert (np.diagonal(el.asnumpy(), axis1=-2, axis2=-1) >= 0).all()
    assert isinstance(la.slogdet(x), tuple) and la.det(x[0]).shape == (1,)


def test_xlinalg_functions_dispatch_ndarrays(rng):
    a = h.inputs("potrf", {}, rng, garbage=False)[0]
    x = mx.nd.array(a, dtype="float64")
    x.attach_grad()
    with mx.autograd.record():
        y = xlinalg.sumlogdiag(xlinalg.potrf(x)).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 0.5 * np.linalg.inv(a), rtol=1e-12)
    lam, v = xlinalg.eigh(x)
    assert isinstance(lam, mx.nd.NDArray)
    np.testing.assert_allclose(lam.asnumpy(), np.linalg.eigvalsh(a), rtol=1e-12)
    np.testing.assert_allclose(xlinalg.cholesky(x, upper=True).asnumpy(), np.swapaxes(np.linalg.cholesky(a), -1, -2), rtol=1e-13)


def test_broadcast_batches(rng):
    """Beyond MXNet (which needs equal batch shapes): batch axes broadcast, gradients sum back."""
    a, b = rng.standard_normal((2, 1, 3, 3)), rng.standard_normal((1, 4, 3, 2))
    outs, grads, heads = h.run(mx, la.gemm2, [a, b], {})
    assert outs[0].shape == (2, 4, 3, 2)
    np.testing.assert_allclose(grads[0], (heads[0] @ np.swapaxes(b, -1, -2)).sum(axis=1, keepdims=True), rtol=1e-13)
    np.testing.assert_allclose(grads[1], (np.swapaxes(a, -1, -2) @ heads[0]).sum(axis=0, keepdims=True), rtol=1e-13)


def test_import_xlinalg_imports_no_mxnet():
    code = "import sys, xlinalg, numpy; xlinalg.potrf(numpy.eye(2)); assert 'mxnet' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(xlinalg.__file__).parents[1]))


@pytest.mark.parametrize("recording", [False, True])
@pytest.mark.parametrize("op", h.OPERATORS)
def test_outputs_do_not_alias_inputs(op, recording, rng):
    """Writing into an output leaves the inputs alone (outputs never share their memory)."""
    params = next(h.param_combinations(op))
    arrays = h.inputs(op, params, rng)
    xs = [mx.nd.array(a, dtype=a.dtype) for a in arrays]
    with mx.autograd.record() if recording else mx.autograd.pause():
        outs = h.as_tuple(getattr(la, op)(*xs, **params))
    for y in outs:
        y[:] = 7.0
    for x, a in zip(xs, arrays):
        np.testing.assert_array_equal(x.asnumpy(), a)
