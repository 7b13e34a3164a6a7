"""The gradient requests of MXNet variables (:mod:`xlinalg.adapters.mxnet_grad_req`): known for
variables marked after ``import xlinalg.mxnet`` (``attach_grad``, ``mx.autograd.mark_variables``,
Gluon parameters), unknown otherwise; a variable known to be marked "write" reaches the recorded
operator without a view, every other through one, and "add" accumulates either way."""

from __future__ import annotations

import ctypes
import gc
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.mxnet_adapter import _helpers as h  # skips this module when MXNet is not installed

mx = h.mx

import xlinalg.mxnet as la
from xlinalg.adapters import mxnet as adapter
from xlinalg.adapters import mxnet_grad_req as grad_req

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _variable(req, rng, shape=(3, 3)):
    x = mx.nd.array(rng.standard_normal(shape))
    x.attach_grad(grad_req=req)
    return x


@pytest.mark.parametrize("req,known", [("write", True), ("add", False), ("null", False)])
def test_attach_grad_is_observed(req, known, rng):
    x = _variable(req, rng)
    assert grad_req.writes(x) is known
    assert adapter._needs_view(x) is not known


def test_unmarked_arrays_and_other_handles_are_unknown(rng):
    x = _variable("write", rng)
    assert not grad_req.writes(mx.nd.array(rng.standard_normal((3, 3))))
    assert not grad_req.writes(x.reshape((9,)))  # another handle on the same memory
    assert not adapter._needs_view(mx.nd.ones((2, 2)))  # no gradient buffer: no view either


def test_the_newest_marking_counts(rng):
    x = _variable("write", rng)
    x.attach_grad(grad_req="add")
    assert not grad_req.writes(x)
    mx.autograd.mark_variables([x], [mx.nd.zeros(x.shape)], grad_reqs="write")
    assert grad_req.writes(x)


def test_released_handles_are_forgotten(rng):
    x = _variable("write", rng)
    handle = x.handle.value
    assert handle in grad_req._marked
    del x
    gc.collect()
    assert handle not in grad_req._marked


def test_a_failed_marking_forgets_its_handles(rng):
    """Where MXNet's call fails, the handles it was given lose their records (it may have marked
    some of them)."""
    x = _variable("write", rng)
    handles = (ctypes.c_void_p * 1)(x.handle.value)
    grad_req._record(1, handles, None)
    assert not grad_req.writes(x)


def test_a_shallow_copy_of_a_variable_is_unknown(rng):
    """as_np_ndarray/as_nd_ndarray share the variable's autograd state under a new handle: unknown,
    so an "add" variable reached through one still accumulates."""
    a = rng.standard_normal((4, 4))
    a = a @ a.T + 4 * np.eye(4)
    x = h.nd(a, mx, "add")
    z = x.as_np_ndarray().as_nd_ndarray()
    assert z.grad is not None and not grad_req.writes(z)
    for _ in range(2):
        with mx.autograd.record():
            y = la.potrf(z).sum()
        y.backward()
    _, once, _ = h.run(mx, la.potrf, [a], {}, heads=[np.ones((4, 4))])
    assert h.rel_err(x.grad.asnumpy(), 2 * once[0]) <= 1e-12


@h.needs_recorded
@pytest.mark.parametrize("req", ["write", "add"])
def test_only_variables_not_known_to_write_get_the_view(req, rng, monkeypatch):
    """A recorded call makes a view for "add" variables and none for "write" ones; the same
    variable twice in one call gets the sum of both gradients either way."""
    views = []
    make_view = adapter._recorded_view
    monkeypatch.setattr(adapter, "_recorded_view", lambda x, s: views.append(s) or make_view(x, s))
    a, c = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    x, cx = h.nd(a, mx, req), h.nd(c, mx, req)
    with mx.autograd.record():
        y = la.gemm(x, x, cx, alpha=0.5)
    y.backward(mx.nd.ones((3, 3), dtype=np.float64))
    assert len(views) == (0 if req == "write" else 3)
    ones = np.ones((3, 3))
    np.testing.assert_allclose(x.grad.asnumpy(), 0.5 * (ones @ a.T + a.T @ ones), rtol=1e-13)
    np.testing.assert_allclose(cx.grad.asnumpy(), ones, rtol=1e-13)


def test_only_the_newest_records_are_kept(rng, monkeypatch):
    monkeypatch.setattr(grad_req, "REMEMBERED", 2)
    monkeypatch.setattr(grad_req, "_marked", dict(grad_req._marked))
    xs = [_variable("write", rng) for _ in range(3)]
    assert [grad_req.writes(x) for x in xs] == [False, True, True]


@pytest.mark.parametrize("req", ["write", "add"])
def test_gluon_parameters(req, rng):
    """Gluon marks its parameters through mx.autograd.mark_variables: "add" accumulates over
    two passes, "write" is known and overwrites."""
    a = rng.standard_normal((4, 4))
    a = a @ a.T + 4 * np.eye(4)
    param = mx.gluon.Parameter("a", shape=(4, 4), dtype=np.float64, grad_req=req)
    param.initialize(init=mx.init.Constant(mx.nd.array(a, dtype=np.float64)), ctx=mx.cpu())
    (x,) = param.list_data()
    assert grad_req.writes(x) is (req == "write")
    for _ in range(2):
        with mx.autograd.record():
            y = la.potrf(x).sum()
        y.backward()
    _, once, _ = h.run(mx, la.potrf, [a], {}, heads=[np.ones((4, 4))])
    assert h.rel_err(param.grad().asnumpy(), once[0] * (2 if req == "add" else 1)) <= 1e-12


def test_variables_marked_before_the_import_accumulate():
    """A variable marked "add" before xlinalg.mxnet is imported is unknown: it gets the view,
    and two backward passes add up."""
    script = textwrap.dedent(
        """
        import mxnet as mx, numpy as np
        a = np.array([[4.0, 1.0], [1.0, 3.0]])
        x = mx.nd.array(a, dtype=np.float64)
        x.attach_grad(grad_req="add")
        import xlinalg.mxnet as la
        from xlinalg.adapters import mxnet as adapter, mxnet_grad_req
        assert not mxnet_grad_req.writes(x) and adapter._needs_view(x)
        grads = []
        for _ in range(2):
            with mx.autograd.record():
                y = la.potrf(x).sum()
            y.backward()
            grads.append(x.grad.asnumpy().copy())
        np.testing.assert_allclose(grads[1], 2 * grads[0], rtol=1e-14)
        assert np.abs(grads[0]).max() > 0
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]

