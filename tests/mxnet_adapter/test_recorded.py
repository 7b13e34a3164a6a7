"""The recorded operator (:mod:`xlinalg.lapack.mxnet_op`): with the compiled layer on, calls under
``mx.autograd.record()`` on the CPU are recorded as the extension operator ``xlinalg_recorded``;
without it (``XLINALG_KERNELS=python``, no compiler) through MXNet's Python custom operators. Both
give the same gradients, ``grad_req="add"`` included; errors of its backward pass reach the caller;
a failed build falls back (``auto``) or raises (``compiled``)."""

from __future__ import annotations

import json

import pytest

from tests.mxnet_adapter import _helpers as h  # skips this module when MXNet is not installed

mx = h.mx

import numpy as np

import xlinalg.mxnet as la
from xlinalg import lapack
from xlinalg.adapters import mxnet as adapter
from xlinalg.lapack import mxnet_op, rules

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")




def _graph_ops(y) -> set:
    return {node["op"] for node in json.loads(mx.autograd.get_symbol(y).tojson())["nodes"]}


def test_recording_uses_the_layer_in_force(rng):
    x = h.nd(h.inputs("potrf", {}, rng)[0], mx, "write")
    with mx.autograd.record():
        y = la.potrf(x)
    expected = "xlinalg_recorded" if h.recorded_available() else "Custom"
    assert expected in _graph_ops(y)
    if lapack.mode() == "python":
        assert mxnet_op.operator(adapter._recorded_backward) is None
    state = lapack.config()["bindings"]["MXNet recorded operator"]
    assert (state == "loaded") == h.recorded_available(), state


@h.needs_recorded
@pytest.mark.parametrize("grad_req", ["write", "add"])
@pytest.mark.parametrize("op", h.OPERATORS)
def test_recorded_and_custom_operators_agree(op, grad_req, rng, monkeypatch):
    params = list(h.param_combinations(op))[-1]
    arrays = h.inputs(op, params, rng)
    heads = None
    results = []
    for recorded in (True, False):
        if not recorded:
            monkeypatch.setattr(adapter, "_recorded_operator", lambda: None)
        outs, grads, heads = h.run(mx, getattr(la, op), arrays, params, heads, grad_req=grad_req, repeat=2)
        results.append((outs, grads))
    (outs, grads), (custom_outs, custom_grads) = results
    for y, c in zip(outs + grads, custom_outs + custom_grads):
        np.testing.assert_array_equal(y, c)


@h.needs_recorded
@pytest.mark.parametrize("op", sorted(rules.SAVING))
def test_recorded_backward_reads_the_forwards_residuals(op, rng, monkeypatch):
    """Operators whose forward keeps residuals hand them to the recorded operator, whose
    backward reads them (the residual reverse runs once per backward pass)."""
    calls = []
    reverse = rules.SAVING[op]["vjp"]
    monkeypatch.setitem(rules.SAVING[op], "vjp", lambda *a, **k: calls.append(1) or reverse(*a, **k))
    monkeypatch.setattr(rules, "_by_operator", {})
    params = list(h.param_combinations(op))[-1]
    h.run(mx, getattr(la, op), h.inputs(op, params, rng), params, None, grad_req="write", repeat=1)
    assert calls == [1]


@h.needs_recorded
@pytest.mark.parametrize("op", ["gemm", "trsm", "potrf"])
def test_the_backward_writes_gradients_into_mxnets_buffers(op, rng, monkeypatch):
    """The recorded backward's reverse writes the input cotangents straight into the arrays
    MXNet gave it (no second copy), with the gradients of the custom operator's path."""
    placed = []

    def spy(*args, out=None, **kwargs):
        grads = vjp(*args, out=out, **kwargs)
        if out is not None:  # (the recorded operator's backward; the custom operator's gives none)
            placed.append([g is o for g, o in zip(grads, out)])
        return grads

    vjp = adapter._vjp
    monkeypatch.setattr(adapter, "_vjp", spy)
    params = list(h.param_combinations(op))[0]
    arrays = h.inputs(op, params, rng)
    outs, grads, heads = h.run(mx, getattr(la, op), arrays, params, None, grad_req="write", repeat=1)
    assert placed == [[True] * len(arrays)]
    monkeypatch.setattr(adapter, "_recorded_operator", lambda: None)
    _, want, _ = h.run(mx, getattr(la, op), arrays, params, heads, grad_req="write", repeat=1)
    for g, w in zip(grads, want):
        np.testing.assert_array_equal(g, w)


@h.needs_recorded
def test_backward_errors_reach_the_caller(rng, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("the VJP failed on purpose")

    monkeypatch.setattr(adapter, "_vjp", failing)
    x = h.nd(h.inputs("potrf", {}, rng)[0], mx, "write")
    with mx.autograd.record():
        y = la.potrf(x)
    with pytest.raises(mx.base.MXNetError, match="RuntimeError: the VJP failed on purpose"):
        y.backward()
        x.grad.wait_to_read()


@h.needs_recorded
def test_the_operator_runs_only_on_outputs_staged_for_it(rng):
    x = h.nd(h.inputs("potrf", {}, rng)[0], mx, "write")
    with mx.autograd.record():
        y = la.potrf(x)
    np.testing.assert_array_equal(y.asnumpy(), la.potrf(x).asnumpy())
    shape = ",".join(map(str, x.shape))
    # a token no call staged (a graph kept from an earlier call, a direct call): an error, no read
    for token in (next(adapter._tokens) + 1000, 10**15):
        z = getattr(mx.nd, mxnet_op.NAME)(x, spec="potrf {}", args=1, outs=1, shapes=shape, token=token)
        with pytest.raises(mx.base.MXNetError, match="no outputs staged under this token"):
            z.wait_to_read()
    # staged once: the first run copies them, a second run of the same token fails
    staged = rng.standard_normal(x.shape)
    mxnet_op.stage(-2, [staged])
    for run in range(2):
        z = getattr(mx.nd, mxnet_op.NAME)(x, spec="potrf {}", args=1, outs=1, shapes=shape, token=-2)
        if run == 0:
            np.testing.assert_array_equal(z.asnumpy(), staged)
        else:
            with pytest.raises(mx.base.MXNetError, match="no outputs staged under this token"):
                z.wait_to_read()
    # staged arrays of the wrong size: an error, no copy
    mxnet_op.stage(-1, [np.zeros(3)])
    z = getattr(mx.nd, mxnet_op.NAME)(x, spec="potrf {}", args=1, outs=1, shapes=shape, token=-1)
    with pytest.raises(mx.base.MXNetError, match="not the float32 or float64 array of 24 bytes"):
        z.wait_to_read()


@h.needs_recorded
@pytest.mark.parametrize(
    "attribute,value,message",
    [
        ("args", "x", "args and outs must be positive integers, not 'x' and '1'"),
        ("outs", "0", "args and outs must be positive integers, not '1' and '0'"),
        ("outs", "99999999999", "args and outs must be positive integers"),
        ("shapes", "3,a", "output shape '3,a' is not a list of sizes"),
        ("shapes", "3,-1", "output shape '3,-1' is not a list of sizes"),
        ("token", "12x", "token '12x' is not an integer"),
    ],
)
def test_malformed_attributes_are_errors(attribute, value, message, rng):
    """The operator called by hand with attributes that do not parse: MXNet reports the error
    (no exception escapes the extension, no process abort)."""
    x = h.nd(h.inputs("potrf", {}, rng)[0], mx, "write")
    attrs = {"spec": "potrf {}", "args": 1, "outs": 1, "shapes": ",".join(map(str, x.shape)), "token": 10**15}
    attrs[attribute] = value
    with pytest.raises(mx.base.MXNetError, match=message):
        getattr(mx.nd, mxnet_op.NAME)(x, **attrs).wait_to_read()


@pytest.mark.parametrize("mode", ["auto", "compiled"])
def test_a_failed_build_falls_back_or_raises(mode, failing_compiler):
    failing_compiler.setenv("XLINALG_KERNELS", mode)
    failing_compiler.setattr(mxnet_op, "_state", {})
    if mode == "auto":
        assert mxnet_op.operator(adapter._recorded_backward) is None
        assert "building the MXNet recorded operator failed" in mxnet_op.reason()
    else:
        with pytest.raises(ImportError, match="MXNet recorded operator is not available"):
            mxnet_op.operator(adapter._recorded_backward)
