"""``torch.compile`` of functions that call xlinalg operators (few and small: compiling is
slow)."""

from __future__ import annotations

import contextlib
import logging
import warnings

import numpy as np
import pytest

import xlinalg
import xlinalg.torch as xt
from tests.torch_adapter._helpers import OPS, inputs, structured, tensors, torch


def gp_nll(x, y, log_ls, log_noise):
    """Negative log likelihood of a GP with a squared-exponential kernel."""
    d = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)
    k = torch.exp(-0.5 * d / torch.exp(2 * log_ls)) + torch.exp(log_noise) * torch.eye(x.shape[0], dtype=x.dtype)
    el = xlinalg.potrf(k)
    alpha = xlinalg.potrs(el, y)
    alpha2 = xlinalg.trsm(el, xlinalg.trsm(el, y), transpose=True)
    n = y.shape[0]
    nll = 0.5 * (y * alpha).sum() + xlinalg.sumlogdiag(el) + 0.5 * n * np.log(2 * np.pi)
    return nll, alpha2


def test_gp_nll_compiled_matches_eager():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.uniform(size=(12, 2)))
    y = torch.tensor(np.sin(3 * x[:, :1].numpy()) + 0.1 * rng.standard_normal((12, 1)))
    theta = [torch.tensor(np.log(0.4), requires_grad=True), torch.tensor(np.log(0.05), requires_grad=True)]
    nll, alpha2 = gp_nll(x, y, *theta)
    grads = torch.autograd.grad(nll, theta)

    torch._dynamo.reset()
    with _silent():
        compiled = torch.compile(gp_nll, fullgraph=True)  # fullgraph: no graph break anywhere
        nll_c, alpha2_c = compiled(x, y, *theta)
        grads_c = torch.autograd.grad(nll_c, theta)
    torch.testing.assert_close(nll_c, nll, rtol=1e-12, atol=0)
    torch.testing.assert_close(alpha2_c, alpha2, rtol=1e-10, atol=1e-12)
    for g, gc in zip(grads, grads_c):
        torch.testing.assert_close(gc, g, rtol=1e-10, atol=1e-12)
    # a second call with new values reuses the compiled graph
    theta2 = [torch.tensor(np.log(0.3), requires_grad=True), torch.tensor(np.log(0.1), requires_grad=True)]
    torch.testing.assert_close(compiled(x, y, *theta2)[0], gp_nll(x, y, *theta2)[0], rtol=1e-12, atol=0)


def test_compiled_failure_gives_nan():
    a = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    a[1, 0, 0] = -1.0
    torch._dynamo.reset()
    out = torch.compile(xt.potrf, backend="aot_eager", fullgraph=True)(a)
    assert torch.isnan(out[1]).all() and torch.isfinite(out[0]).all()


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@contextlib.contextmanager
def _silent():
    """Fail on any warning and on any WARNING-level record of ``torch._dynamo`` inside."""
    handler = _Records()
    logger = logging.getLogger("torch._dynamo")
    logger.addHandler(handler)
    cache = getattr(torch._dynamo.utils, "warn_once_cache", None)
    saved = set(cache) if cache is not None else None
    if cache is not None:
        cache.clear()  # Dynamo warns once per message and process: forget earlier compilations
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            # torch's notices about its own internals, raised from torch's modules whatever is
            # compiled (Dynamo instantiates every ``autograd.Function`` inside a
            # ``catch_warnings`` that keeps this "error" filter; Inductor's first import uses
            # ``torch.jit.script_method``; its lowering of ``diagonal`` a deprecated check), are
            # not xlinalg's
            for category in (DeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category, module=r"torch(\.|$)")
            yield
    finally:
        logger.removeHandler(handler)
        if cache is not None:
            cache.update(saved)
    loud = [f"{r.levelname} {r.name}: {r.getMessage()[:200]}" for r in handler.records if r.levelno >= logging.WARNING]
    assert not loud, loud


def _gp_nll_xt(x, y, log_ls, log_noise):
    """A GP negative log likelihood written with ``xlinalg.torch`` only."""
    d = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)
    k = torch.exp(-0.5 * d / torch.exp(2 * log_ls)) + torch.exp(log_noise) * torch.eye(x.shape[0], dtype=x.dtype)
    el = xt.potrf(k)
    a = xt.trsm(el, y)
    return 0.5 * (a * a).sum() + xt.sumlogdiag(el)


def test_compile_is_silent_with_inputs_requiring_grad():
    """Compiling (Inductor, ``fullgraph``) a model whose inputs require grad, forward and
    backward, emits no warning and no WARNING-level record of ``torch._dynamo``: xlinalg calls
    no ``functools.lru_cache``-wrapped helper while Dynamo traces."""
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.uniform(size=(10, 2)))
    y = torch.tensor(rng.standard_normal((10, 1)))
    theta = [torch.tensor(np.log(0.4), requires_grad=True), torch.tensor(np.log(0.05), requires_grad=True)]
    want = torch.autograd.grad(_gp_nll_xt(x, y, *theta), theta)
    torch._dynamo.reset()
    with _silent():
        nll = torch.compile(_gp_nll_xt, fullgraph=True)(x, y, *theta)
        got = torch.autograd.grad(nll, theta)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dynamic", [None, True])
def test_compiled_model_takes_new_shapes(dynamic):
    """A compiled model called with other sizes (Dynamo's automatic dynamic shapes, or
    ``dynamic=True`` from the start) recompiles with symbolic sizes and matches eager: shape
    validation neither hashes nor formats sizes unless it raises."""
    rng = np.random.default_rng(4)
    torch._dynamo.reset()
    with _silent():
        compiled = torch.compile(_gp_nll_xt, fullgraph=True, dynamic=dynamic)
        for n in (6, 8, 11):
            x, y = torch.tensor(rng.uniform(size=(n, 2))), torch.tensor(rng.standard_normal((n, 1)))
            theta = (torch.tensor(np.log(0.4)), torch.tensor(np.log(0.05)))
            torch.testing.assert_close(compiled(x, y, *theta), _gp_nll_xt(x, y, *theta), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, params", OPS)
def test_every_operator_traces_without_graph_break(name, params):
    """Forward and backward of every operator compile in one graph, silently."""
    rng = np.random.default_rng(1)
    xs = tensors(inputs(name, params, rng), requires_grad=True)
    f = structured(name, params)

    def loss(*args):
        return sum(y.sum() for y in f(*args))

    torch._dynamo.reset()
    with _silent():
        compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
        got = torch.autograd.grad(compiled(*xs), xs)
    want = torch.autograd.grad(loss(*xs), xs)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_compiles_in_one_graph_after_calls_on_other_libraries():
    """What a process ran before (eager calls on NumPy, array-api-strict and torch arrays) leaves
    nothing in the validation path that Dynamo cannot trace (a cache keyed by array namespaces
    did: Dynamo cannot compare module objects)."""
    strict = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(2)
    arrays = inputs("trsm", {}, rng)
    xlinalg.trsm(*arrays)
    xlinalg.trsm(*(x.astype(np.float32) for x in arrays))
    xlinalg.trsm(*(strict.asarray(x) for x in arrays))
    xs = tensors(arrays, requires_grad=True)
    xt.trsm(*xs)
    torch._dynamo.reset()
    with _silent():
        compiled = torch.compile(lambda a, b: xt.trsm(a, b).sum(), backend="aot_eager", fullgraph=True)
        torch.autograd.grad(compiled(*xs), xs)


def test_device_helper_answers_tensors_by_type():
    """``xlinalg.core.matrix.device``: what the core asks for a device, without
    ``array_api_compat``'s ``lru_cache`` helpers for tensors."""
    from xlinalg.core.matrix import device

    t = torch.ones(2, dtype=torch.float64)
    assert device(t) == t.device
    assert device(np.ones(2)) == "cpu"
    calls = []

    def compiled_device(x):
        calls.append(device(x))
        return x * 2

    torch._dynamo.reset()
    with _silent():
        torch.compile(compiled_device, backend="aot_eager", fullgraph=True)(t)
    assert calls and calls[-1] == t.device

