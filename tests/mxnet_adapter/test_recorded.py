"""The recorded operator (:mod:`xlinalg.lapack.mxnet_op`): with the compiled layer on, calls under
``mx.autograd.record()`` on the CPU are recorded as the extension operator ``xlinalg_recorded``;
without it (``XLINALG_KERNELS=python``, no compiler) through MXNet's Python custom operators. Both
give the same gradients, ``grad_req="add"`` included, whether its backward runs the VJP entry
itself or calls back into Python; errors of its backward pass reach the caller; a failed build
falls back (``auto``) or raises (``compiled``)."""

from __future__ import annotations

import json

import pytest

from tests.mxnet_adapter import _helpers as h  # skips this module when MXNet is not installed

mx = h.mx

import numpy as np

import xlinalg.mxnet as la
from xlinalg import lapack
from xlinalg.adapters import mxnet as adapter
from xlinalg.lapack import mxnet_op, rules, table

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


def _through_callback(monkeypatch):
    """Recorded calls whose backward runs xlinalg's rules through the Python callback instead
    of the VJP entry (the path of calls the entry does not take)."""
    monkeypatch.setattr(mxnet_op, "reverse", lambda *args: "")


#: How a call under ``mx.autograd.record()`` is computed and differentiated: the recorded
#: operator running the forward and VJP entries; the forward computed at the call, staged and
#: copied by the operator; the backward calling back into Python; MXNet's Python custom operator.
PATHS = ("entries", "staged", "callback", "custom")


@h.needs_recorded
@pytest.mark.parametrize("grad_req", ["write", "add"])
@pytest.mark.parametrize("op", h.OPERATORS)
def test_every_path_gives_the_same_gradients(op, grad_req, rng, monkeypatch):
    params = list(h.param_combinations(op))[-1]
    arrays = h.inputs(op, params, rng)
    heads = None
    results = []
    record, forwards = adapter._record, []
    monkeypatch.setattr(adapter, "_record", lambda *args: forwards.append(bool(args[7])) or record(*args))
    entries = op in table.TABLE | table.PRODUCTS
    for path in PATHS:
        if path == "staged":
            monkeypatch.setattr(mxnet_op, "forward", lambda *args: ("", False))
        elif path == "callback":
            _through_callback(monkeypatch)
        elif path == "custom":
            monkeypatch.setattr(adapter, "_recorded_operator", lambda: None)
        before, forwards[:] = mxnet_op.reverses_run(), []
        outs, grads, heads = h.run(mx, getattr(la, op), arrays, params, heads, grad_req=grad_req, repeat=2)
        ran = mxnet_op.reverses_run() - before
        assert ran == (2 if path in PATHS[:2] and entries else 0), (path, ran)
        in_operator = path == "entries" and entries
        assert forwards == ([] if path == "custom" else [in_operator] * 2), (path, forwards)
        results.append((outs, grads))
    (outs, grads), *others = results
    for other_outs, other_grads in others:
        for y, c in zip(outs + grads, other_outs + other_grads):
            np.testing.assert_array_equal(y, c)


@h.needs_recorded
@pytest.mark.parametrize("path", ["entries", "callback"])
@pytest.mark.parametrize("op", sorted(rules.SAVING))
def test_recorded_backward_reads_the_forwards_residuals(op, path, rng, monkeypatch):
    """Operators whose forward keeps residuals hand them to the recorded operator, whose
    backward reads them: the residual reverse runs once per backward pass, as the VJP entry
    or through the callback."""
    calls, attributes = [], []
    reverse = rules.SAVING[op]["vjp"]
    monkeypatch.setitem(rules.SAVING[op], "vjp", lambda *a, **k: calls.append(1) or reverse(*a, **k))
    monkeypatch.setattr(rules, "_by_operator", {})
    spy = mxnet_op.reverse
    monkeypatch.setattr(mxnet_op, "reverse", lambda *a: attributes.append(spy(*a)) or attributes[-1])
    if path == "callback":
        _through_callback(monkeypatch)
    params = list(h.param_combinations(op))[-1]
    before = mxnet_op.reverses_run()
    h.run(mx, getattr(la, op), h.inputs(op, params, rng), params, None, grad_req="write", repeat=1)
    if path == "entries":
        assert [a.split(";")[0] for a in attributes] == [table.SAVING[op].entry("vjp")]
        assert (calls, mxnet_op.reverses_run() - before) == ([], 1)
    else:
        assert (calls, mxnet_op.reverses_run() - before) == ([1], 0)


@h.needs_recorded
@pytest.mark.parametrize("op", [*sorted(table.SAVING), "potrf", "syevd"])
def test_out_arrays_of_recorded_calls(op, rng):
    """A recorded call with ``out`` gets its outputs written there, returns no more arrays than
    without, and differentiates as the call without ``out``; where the operator keeps residuals
    (``potrs``, ``det``, ``slogdet``), they are outputs of the recorded operator after the call's
    own, hidden from the caller."""
    params = list(h.param_combinations(op))[-1]
    arrays = h.inputs(op, params, rng)
    want_outs, want_grads, heads = h.run(mx, getattr(la, op), arrays, params, grad_req="write")
    out = [mx.nd.zeros(y.shape, dtype=y.dtype) for y in want_outs]

    def into_out(*xs, **kwargs):
        returned = h.as_tuple(getattr(la, op)(*xs, **kwargs, out=out if len(out) > 1 else out[0]))
        assert len(returned) == len(out)
        return returned

    outs, grads, _ = h.run(mx, into_out, arrays, params, heads, grad_req="write")
    for y, w in zip([o.asnumpy() for o in out] + outs + grads, want_outs + want_outs + want_grads):
        np.testing.assert_array_equal(y, w)


@h.needs_recorded
def test_the_entry_is_left_to_the_callback_where_the_blas_threads_differ(rng, monkeypatch):
    """A backward pass whose BLAS runs on another thread count than its call chose (a call in
    between changed it) runs the rules through the callback, which sets it."""
    params = {"lower": True}
    arrays = h.inputs("potrf", params, rng)
    outs, want, heads = h.run(mx, la.potrf, arrays, params, None, grad_req="write", repeat=1)
    chosen = mxnet_op.reverse
    monkeypatch.setattr(mxnet_op, "reverse", lambda *args: chosen(*args[:-1], (987, args[-1][1])))
    before = mxnet_op.reverses_run()
    _, grads, _ = h.run(mx, la.potrf, arrays, params, heads, grad_req="write", repeat=1)
    assert mxnet_op.reverses_run() == before
    for g, w in zip(grads, want):
        np.testing.assert_array_equal(g, w)


@h.needs_recorded
def test_broadcast_inputs_are_left_to_the_callback(rng):
    """An input broadcast over the batch gets its cotangent summed by the rules (the callback):
    the batch sum of the gradient of the same input repeated along the batch."""
    a = rng.standard_normal((4, 4))
    el = np.linalg.cholesky(a @ a.T + 4 * np.eye(4))
    b = rng.standard_normal((3, 4, 2))
    before = mxnet_op.reverses_run()
    _, grads, heads = h.run(mx, la.potrs, [el, b], {}, None, grad_req="write", repeat=1)
    assert mxnet_op.reverses_run() == before
    want = h.run(mx, la.potrs, [np.broadcast_to(el, (3, *el.shape)), b], {}, heads, grad_req="write", repeat=1)[1]
    np.testing.assert_allclose(grads[0], want[0].sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(grads[1], want[1])


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
    _through_callback(monkeypatch)
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
    _through_callback(monkeypatch)
    x = h.nd(h.inputs("potrf", {}, rng)[0], mx, "write")
    with mx.autograd.record():
        y = la.potrf(x)
    with pytest.raises(mx.base.MXNetError, match="RuntimeError: the VJP failed on purpose"):
        y.backward()
        x.grad.wait_to_read()


def _by_hand(x, token, forward=""):
    """``xlinalg_recorded`` called by hand (``mx.nd``'s function) on ``x`` for a ``potrf``."""
    call = mxnet_op.call_attribute(1, (x.shape,), token, forward, "", "potrf {}")
    return getattr(mx.nd, mxnet_op.NAME)(x, call=call.decode())


@h.needs_recorded
def test_the_operator_runs_only_on_outputs_staged_for_it(rng):
    x = h.nd(h.inputs("potrf", {}, rng)[0], mx, "write")
    with mx.autograd.record():
        y = la.potrf(x)
    np.testing.assert_array_equal(y.asnumpy(), la.potrf(x).asnumpy())
    # a token no call staged (a graph kept from an earlier call, a direct call): an error, no read
    for token in (next(adapter._tokens) + 1000, 10**15):
        z = _by_hand(x, token)
        with pytest.raises(mx.base.MXNetError, match="no outputs staged under this token"):
            z.wait_to_read()
    # staged once: the first run copies them, a second run of the same token fails
    staged = rng.standard_normal(x.shape)
    mxnet_op.stage(-2, [staged])
    for run in range(2):
        z = _by_hand(x, -2)
        if run == 0:
            np.testing.assert_array_equal(z.asnumpy(), staged)
        else:
            with pytest.raises(mx.base.MXNetError, match="no outputs staged under this token"):
                z.wait_to_read()
    # staged arrays of the wrong size: an error, no copy
    mxnet_op.stage(-1, [np.zeros(3)])
    z = _by_hand(x, -1)
    with pytest.raises(mx.base.MXNetError, match="not the float32 or float64 array of 24 bytes"):
        z.wait_to_read()


@h.needs_recorded
@pytest.mark.parametrize(
    "field,value,message",
    [
        (0, "x", "args and outs must be positive integers, not 'x' and '1'"),
        (1, "0", "args and outs must be positive integers, not '1' and '0'"),
        (1, "99999999999", "args and outs must be positive integers"),
        (2, "3,a", "output shape '3,a' is not a list of sizes"),
        (2, "3,-1", "output shape '3,-1' is not a list of sizes"),
        (3, "12x", "token '12x' is not an integer"),
        (None, "", "the attribute call is required"),
        (None, "1|1|3,3|7|", r"call '1\|1\|3,3\|7\|' is not <args>\|<outs>"),
    ],
)
def test_malformed_attributes_are_errors(field, value, message, rng):
    """The operator called by hand with an attribute that does not parse: MXNet reports the
    error (no exception escapes the extension, no process abort)."""
    x = h.nd(h.inputs("potrf", {}, rng)[0], mx, "write")
    fields = mxnet_op.call_attribute(1, (x.shape,), 10**15, "", "", "potrf {}").decode().split("|", 6)
    if field is not None:
        fields[field] = value
    attrs = {"call": "|".join(fields)} if field is not None else ({"call": value} if value else {})
    with pytest.raises(mx.base.MXNetError, match=message):
        getattr(mx.nd, mxnet_op.NAME)(x, **attrs).wait_to_read()


@h.needs_recorded
@pytest.mark.parametrize(
    "reverse,message",
    [
        ("potrf_vjp;2,0,3", "expected <entry>;<arrays>;<parameters>;<BLAS threads>"),
        ("nosuch;2,0,3;lower=1,threads=1;1", "no entry nosuch"),
        ("potrf_vjp;2,0,9;lower=1,threads=1;1", "array '9' is not -1 or one of the 4"),
        ("potrf_vjp;2,0,3,1;lower=1,threads=1;1", "more arrays than potrf_vjp"),
        ("potrf_vjp;2,0;lower=1,threads=1;1", "potrf_vjp.*: ga is missing"),
        ("potrf_vjp;2,0,3;lower=1;1", "expected every parameter of potrf_vjp"),
        ("potrf_vjp;2,0,3;lower=1,threads=1,alpha=2;1", "'alpha=2' is not a parameter of potrf_vjp"),
        ("potrf_vjp;2,0,3;lower=yes,threads=1;1", "'lower=yes' is not an integer"),
        ("trsm_vjp;1,3,0,4,5;flags=4,threads=1,alpha=x;1", "'alpha=x' is not a number"),
        ("potrf_vjp;2,0,3;lower=1,threads=1;0", "BLAS threads '0'"),
    ],
)
def test_malformed_reverses_are_errors_of_the_backward_pass(reverse, message, rng, monkeypatch):
    monkeypatch.setattr(mxnet_op, "reverse", lambda *args: reverse)
    op = "trsm" if reverse.startswith("trsm") else "potrf"
    params = {"lower": True} if op == "potrf" else {}
    arrays = [h.nd(a, mx, "write") for a in h.inputs(op, params, rng)]
    with mx.autograd.record():
        y = getattr(la, op)(*arrays)
    with pytest.raises(mx.base.MXNetError, match=message):
        y.backward()
        arrays[0].grad.wait_to_read()


@h.needs_recorded
@pytest.mark.parametrize(
    "forward,staged,dtype,message",
    [
        ("potrf;0,1;lower=1,threads=1;1", 0, "float64", r"potrf\(a, out, status, lower, threads\): status is missing"),
        ("potrf;0,1,2;lower=1,threads=1;1", 2, "float64", "2 arrays staged for a forward entry"),
        ("potrf;0,1,2;lower=1,threads=1;1", 1, "int32", "the arrays must all be float32 or all float64"),
        ("potrf;0,1,2;lower=1;1", 1, "float64", "forward 'potrf;0,1,2;lower=1;1': expected every parameter of potrf"),
        ("potrf;1,1,2;lower=1,threads=1;1", 1, "float64", None),  # reads what it writes: sizes agree, no error
    ],
)
def test_forward_entries_check_their_arrays(forward, staged, dtype, message, rng):
    """The forward entry run by the operator, called by hand: attributes or staged arrays that do
    not fit are errors MXNet reports, never a read or write out of bounds."""
    x = mx.nd.array(h.inputs("potrf", {}, rng)[0][..., :3, :3], dtype=dtype)
    batch = x.shape[:-2]
    mxnet_op.stage(-3, [np.zeros(batch, np.int32) for _ in range(staged)])
    z = _by_hand(x, -3, forward)
    if message is None:
        z.wait_to_read()
    else:
        with pytest.raises(mx.base.MXNetError, match=message):
            z.wait_to_read()
    mxnet_op.discard(-3)


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
