"""The compiled kernel layer under ``torch.compile``, ``torch.export`` and ``make_fx``: every
rule of :data:`xlinalg.lapack.rules.RULES` is a torch custom operator
(:mod:`xlinalg.kernels.torch_ops`) that the traced graphs call, forward and first-order backward;
double backward and the ``torch.func`` transforms keep the pure rules."""

from __future__ import annotations

import numpy as np
import pytest

import xlinalg.torch as xt
from tests.torch_adapter._helpers import inputs, structured, tensors, torch, without_node
from tests.torch_adapter.test_compile import _silent
from xlinalg import lapack
from xlinalg.adapters import torch as torch_adapter
from xlinalg.core.operator import get
from xlinalg.kernels import kernels_for, torch_ops
from xlinalg.lapack import rules
from xlinalg.lapack.rules import RULES

pytestmark = pytest.mark.skipif(lapack.library() is None, reason="the compiled kernel layer is not active")

#: Every operator with a compiled rule, with each combination of its registry grid.
KERNEL_CASES = [
    pytest.param(name, params, id=f"{name}-{i}") for name in RULES for i, params in enumerate(get(name).param_grid())
]


# ---- graph capture ----------------------------------------------------------------------------
class Capture:
    """A ``torch.compile`` backend (AOTAutograd, no code generation) that records the call
    targets of the forward and backward graphs it is given."""

    def __init__(self):
        self.forward: list[str] = []
        self.backward: list[str] = []

    def __call__(self, gm, example_inputs):
        from functorch.compile import make_boxed_func
        from torch._functorch.aot_autograd import aot_module_simplified

        def compiler(into):
            def compile_graph(graph, _inputs):
                into.extend(_targets(graph))
                return make_boxed_func(graph.forward)

            return compile_graph

        return aot_module_simplified(gm, example_inputs, fw_compiler=compiler(self.forward), bw_compiler=compiler(self.backward))


def _targets(graph) -> list[str]:
    return [str(node.target) for node in graph.graph.nodes if node.op == "call_function"]


def assert_uses_kernels(targets, names, kind):
    """Each of ``names`` is called through its ``kind`` custom operator and no ``torch.linalg``
    function runs (a silent fallback to the pure rules would call them)."""
    for name in names:
        assert f"{torch_ops.NAMESPACE}.{name}_{kind}.default" in targets, (name, kind, targets)
    assert not [t for t in targets if t.startswith("aten.linalg")], targets


def _weighted_loss(name, params, rng, xs):
    """``sum(w_i * y_i)`` over the outputs of the structured operator, random weights."""
    f = structured(name, params)
    weights = [torch.tensor(rng.standard_normal(tuple(y.shape))) for y in f(*(x.detach() for x in xs))]

    def loss(*args):
        return sum((y * w).sum() for y, w in zip(f(*args), weights))

    return loss


# ---- every operator ---------------------------------------------------------------------------
def test_custom_ops_are_generated_from_the_rules():
    assert set(torch_ops.OPS) == {(name, kind) for name, kinds in RULES.items() for kind in kinds}
    for (name, kind), overload in torch_ops.OPS.items():
        assert overload is getattr(torch.ops.xlinalg, f"{name}_{kind}").default
        assert torch_ops.runner(get(name), kind) is not None


@pytest.mark.parametrize("name, params", KERNEL_CASES)
def test_compiled_graphs_call_the_kernels(name, params):
    """Forward and backward graphs of every operator (each flag combination) call the custom
    operators; values and gradients equal eager ones; the inputs are not written to."""
    rng = np.random.default_rng(5)
    xs = tensors(inputs(name, params, rng), requires_grad=True)
    loss = _weighted_loss(name, params, rng, xs)
    want = loss(*xs)
    want_grads = torch.autograd.grad(want, xs)
    before = [x.detach().clone() for x in xs]

    torch._dynamo.reset()
    capture = Capture()
    with _silent():
        got = torch.compile(loss, backend=capture, fullgraph=True)(*xs)
        grads = torch.autograd.grad(got, xs)
    assert_uses_kernels(capture.forward, [name], "forward")
    assert_uses_kernels(capture.backward, [name], "vjp")
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    for x, b in zip(xs, before):
        assert torch.equal(x.detach(), b)


def test_the_graph_check_catches_a_fallback(monkeypatch):
    """With the custom operators taken away the same compilation runs the pure rules, and
    :func:`assert_uses_kernels` says so."""
    monkeypatch.setattr(torch_ops, "_RUNNERS", {})
    rng = np.random.default_rng(0)
    xs = tensors(inputs("potrf", {"lower": True}, rng), requires_grad=True)
    loss = _weighted_loss("potrf", {"lower": True}, rng, xs)
    torch._dynamo.reset()
    capture = Capture()
    torch.autograd.grad(torch.compile(loss, backend=capture, fullgraph=True)(*xs), xs)
    torch._dynamo.reset()
    with pytest.raises(AssertionError):
        assert_uses_kernels(capture.forward, ["potrf"], "forward")
    with pytest.raises(AssertionError):
        assert_uses_kernels(capture.backward, ["potrf"], "vjp")


@pytest.mark.parametrize("name, kind", sorted(torch_ops.OPS), ids=lambda v: str(v))
def test_opcheck(name, kind):
    """``torch.library.opcheck``: schema, fake kernel, no autograd of its own, AOT dispatch
    with static and dynamic shapes."""
    op = get(name)
    params = op.param_grid()[-1]
    rng = np.random.default_rng(2)
    args = tensors(inputs(name, params, rng))
    if kind == "vjp":
        outputs = torch_ops.OPS[(name, "forward")](*args, **params)
        outputs = (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)[: len(op.outputs)]
        cotangents = tuple(torch.tensor(rng.standard_normal(tuple(y.shape))) for y in outputs)
        args = (*args, *outputs, *cotangents)
    torch.library.opcheck(torch_ops.OPS[(name, kind)], args, dict(params))


@pytest.mark.parametrize("name", sorted(RULES))
def test_custom_ops_run_the_pure_rules_when_the_layer_is_off(name, monkeypatch):
    """A graph traced with the layer on and run with it off (``XLINALG_KERNELS=python`` set
    later) runs the pure rules on NumPy: same values (up to the signs of eigenvectors and LQ
    factors), same gradients for the same outputs."""
    op = get(name)
    params = op.param_grid()[-1]
    rng = np.random.default_rng(12)
    args = tensors(inputs(name, params, rng))
    forward, vjp = torch_ops.OPS[(name, "forward")], torch_ops.OPS[(name, "vjp")]

    def outputs(result):
        return ((result,) if isinstance(result, torch.Tensor) else tuple(result))[: len(op.outputs)]

    kernel_out = outputs(forward(*args, **params))
    cotangents = tuple(torch.tensor(rng.standard_normal(tuple(y.shape))) for y in kernel_out)
    kernel_grads = vjp(*args, *kernel_out, *cotangents, **params)
    monkeypatch.setattr(torch_ops, "_compiled_rule", lambda op, kind: None)
    pure_out = outputs(forward(*args, **params))
    pure_grads = vjp(*args, *kernel_out, *cotangents, **params)
    for k, p in zip(kernel_out, pure_out):
        if name in ("syevd", "gelqf"):
            k, p = k.abs(), p.abs()
        torch.testing.assert_close(p, k, rtol=1e-10, atol=1e-12)
    kernel_grads = (kernel_grads,) if isinstance(kernel_grads, torch.Tensor) else kernel_grads
    pure_grads = (pure_grads,) if isinstance(pure_grads, torch.Tensor) else pure_grads
    for k, p in zip(kernel_grads, pure_grads):
        torch.testing.assert_close(p, k, rtol=1e-10, atol=1e-12)


# ---- a model ------------------------------------------------------------------------------------
def _gp_nll(x, y, log_ls, log_noise):
    d = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)
    k = torch.exp(-0.5 * d / torch.exp(2 * log_ls)) + torch.exp(log_noise) * torch.eye(x.shape[0], dtype=x.dtype)
    el = xt.potrf(k)
    a = xt.trsm(el, y)
    return 0.5 * (a * a).sum() + xt.sumlogdiag(el)


def _counting(monkeypatch):
    """Counts the compiled rules the custom operators run, by (name, kind)."""
    calls: dict = {}
    rule = torch_ops._compiled_rule

    def counted(op, kind):
        calls[(op.name, kind)] = calls.get((op.name, kind), 0) + 1
        return rule(op, kind)

    monkeypatch.setattr(torch_ops, "_compiled_rule", counted)
    return calls


def test_gp_nll_inductor_runs_the_kernels_forward_and_backward(monkeypatch):
    """Inductor, ``fullgraph``, silently: a GP negative log likelihood (potrf, trsm,
    sumlogdiag) and its gradient run the kernels, equal to eager."""
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.uniform(size=(16, 2)))
    y = torch.tensor(rng.standard_normal((16, 1)))

    def theta(a, b):
        return [torch.tensor(np.log(a), requires_grad=True), torch.tensor(np.log(b), requires_grad=True)]

    torch._dynamo.reset()
    with _silent():
        compiled = torch.compile(_gp_nll, fullgraph=True)
        t0 = theta(0.4, 0.05)
        torch.autograd.grad(compiled(x, y, *t0), t0)  # compiles forward and backward
        calls = _counting(monkeypatch)
        t1 = theta(0.3, 0.1)
        nll = compiled(x, y, *t1)
        forward_calls = dict(calls)
        grads = torch.autograd.grad(nll, t1)
    assert forward_calls == {("potrf", "forward"): 1, ("trsm", "forward"): 1, ("sumlogdiag", "forward"): 1}
    backward_calls = {k: v - forward_calls.get(k, 0) for k, v in calls.items() if v - forward_calls.get(k, 0)}
    assert backward_calls == {("potrf", "vjp"): 1, ("trsm", "vjp"): 1, ("sumlogdiag", "vjp"): 1}
    t2 = theta(0.3, 0.1)
    want = _gp_nll(x, y, *t2)
    torch.testing.assert_close(nll, want, rtol=1e-12, atol=0)
    for g, w in zip(grads, torch.autograd.grad(want, t2)):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_gp_nll_graphs_call_the_kernels():
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.uniform(size=(12, 2)))
    y = torch.tensor(rng.standard_normal((12, 1)))
    theta = [torch.tensor(np.log(0.4), requires_grad=True), torch.tensor(np.log(0.05), requires_grad=True)]
    torch._dynamo.reset()
    capture = Capture()
    torch.autograd.grad(torch.compile(_gp_nll, backend=capture, fullgraph=True)(x, y, *theta), theta)
    assert_uses_kernels(capture.forward, ["potrf", "trsm", "sumlogdiag"], "forward")
    assert_uses_kernels(capture.backward, ["potrf", "trsm", "sumlogdiag"], "vjp")


# ---- export, make_fx ------------------------------------------------------------------------------
class _Solve(torch.nn.Module):
    def forward(self, a, b):
        el = xt.potrf(a)
        return xt.trsm(el, b, transpose=True), xt.sumlogdiag(el)


def _spd(rng, batch, n):
    x = rng.standard_normal((*batch, n, n))
    return torch.tensor(x @ np.swapaxes(x, -1, -2) + n * np.eye(n))


@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
def test_export_graph_calls_the_kernels(strict):
    rng = np.random.default_rng(6)
    a, b = _spd(rng, (2,), 4), torch.tensor(rng.standard_normal((2, 4, 3)))
    program = torch.export.export(_Solve(), (a, b), strict=strict)
    assert_uses_kernels(_targets(program.graph_module), ["potrf", "trsm", "sumlogdiag"], "forward")
    for got, want in zip(program.module()(a, b), _Solve()(a, b)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["fake", "real"])
def test_make_fx_of_a_backward_calls_the_kernels(mode):
    """``make_fx`` records the custom operators (eagerly the kernels would run on the data and
    leave constants in the graph)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    def backward(a, g):
        a = a.detach().requires_grad_()
        return torch.autograd.grad(xt.potrf(a), a, g)

    rng = np.random.default_rng(7)
    a, g = _spd(rng, (2,), 4), torch.tensor(rng.standard_normal((2, 4, 4)))
    graph = make_fx(backward, tracing_mode=mode)(a, g)
    targets = _targets(graph)
    assert_uses_kernels(targets, ["potrf"], "forward")
    assert_uses_kernels(targets, ["potrf"], "vjp")
    torch.testing.assert_close(graph(a, g)[0], backward(a, g)[0], rtol=1e-12, atol=1e-12)


def test_compiled_without_grad_calls_the_kernels():
    rng = np.random.default_rng(9)
    a = _spd(rng, (2,), 5)
    torch._dynamo.reset()
    capture = Capture()
    got = torch.compile(xt.potrf, backend=capture, fullgraph=True)(a)
    assert_uses_kernels(capture.forward, ["potrf"], "forward")
    torch.testing.assert_close(got, xt.potrf(a), rtol=1e-12, atol=1e-12)


# ---- residuals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(rules.SAVING))
def test_eager_backward_reads_the_forwards_residuals(name, monkeypatch):
    """Eagerly through the ``autograd.Function`` (where the C++ node does not run the call),
    with a gradient to come, the forward keeps its residuals on the Function's context and the
    backward reads them (the residual reverse runs; the gradients are the plain reverse's, bit
    for bit); no attribute is left on the outputs, and without grad nothing is kept."""
    without_node(monkeypatch)
    params = get(name).param_grid()[0]
    rng = np.random.default_rng(12)
    xs = tensors(inputs(name, params, rng, n=5), requires_grad=True)
    f = structured(name, params)

    def gradients():
        ys = f(*xs)
        assert not any(hasattr(y, torch_adapter._RESIDUALS) for y in ys)
        return torch.autograd.grad(sum(y.sum() for y in ys), xs)

    calls = []
    reverse = rules.SAVING[name]["vjp"]
    monkeypatch.setitem(rules.SAVING[name], "vjp", lambda *a, **k: calls.append(1) or reverse(*a, **k))
    monkeypatch.setattr(rules, "_by_operator", {})
    kept = gradients()
    assert calls == [1]
    with torch.no_grad():
        forward = rules.SAVING[name]["forward"]
        monkeypatch.setitem(rules.SAVING[name], "forward", lambda *a: pytest.fail("residuals kept without grad"))
        f(*xs)
        monkeypatch.setitem(rules.SAVING[name], "forward", forward)
    monkeypatch.setattr(rules, "SAVING", {})
    monkeypatch.setattr(rules, "_by_operator", {})
    for got, want in zip(kept, gradients()):
        assert torch.equal(got, want)


def test_eager_batches_split_across_threads_only_when_large():
    """Beside torch's spinning OpenMP workers a small batch runs on one thread; a batch of
    SPLIT_MIN_ELEMENTS or more, or matrices large enough for BLAS threads, get torch's count."""
    from xlinalg.kernels import torch as torch_kernels
    from xlinalg.kernels.numpy import thread_split

    limit = torch_kernels.SPLIT_MIN_ELEMENTS
    small = torch.empty(256, 32, 32)
    large = torch.empty(limit // 64 + 1, 8, 8)
    big_matrix = torch.empty(lapack.BLAS_THREADS_MIN_ORDER, lapack.BLAS_THREADS_MIN_ORDER)
    assert thread_split(2, [small, small], limit) == (1, 1)
    assert thread_split(2, [large], limit) == (1, 2)
    assert thread_split(2, [big_matrix], limit) == (2, 2)
    assert thread_split(1, [large], limit) == (1, 1)
    assert thread_split(2, [small, small]) == (1, 2)  # NumPy, MXNet: no framework pool beside


# ---- failures ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["potrf", "trsm", "inverse"])
def test_compiled_failures_are_nan(name):
    """A failing batch entry comes out NaN (no error can be raised in a graph), the others are
    unchanged; through the custom operator."""
    a = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1) * 2
    a[1, 2, 2] = -1.0 if name == "potrf" else 0.0
    args = (a, torch.ones(2, 3, 2, dtype=torch.float64)) if name == "trsm" else (a,)
    fn = getattr(xt, name)
    torch._dynamo.reset()
    capture = Capture()
    out = torch.compile(fn, backend=capture, fullgraph=True)(*args)
    assert_uses_kernels(capture.forward, [name], "forward")
    assert torch.isnan(out[1]).all() and torch.isfinite(out[0]).all()
    torch.testing.assert_close(out[0], fn(*(x[:1] for x in args))[0])


# ---- what keeps the pure rules ------------------------------------------------------------------
def test_double_backward_differentiates_the_pure_rules():
    """Eager double backward: the first backward records a graph, so the kernels step aside
    (``compiled`` is None) and gradgradcheck passes."""
    kern = kernels_for(torch_adapter.xp)
    rng = np.random.default_rng(10)
    for name, params in [("potrf", {"lower": True}), ("trsm", {"transpose": True, "rightside": False, "lower": False, "alpha": -1.5})]:
        xs = tensors(inputs(name, params, rng), requires_grad=True)
        with torch.enable_grad():
            assert kern.compiled(get(name), "vjp", xs) is None
        assert kern.compiled(get(name), "vjp", tuple(x.detach() for x in xs)) is not None
        f = structured(name, params)
        assert torch.autograd.gradgradcheck(lambda *a: f(*a)[0], xs)


def test_func_transforms_under_compile_keep_the_pure_rules():
    """``torch.compile`` of ``vmap``: no custom operator (they have no batching rule), same
    values as eager."""
    rng = np.random.default_rng(11)
    a = _spd(rng, (3,), 4)
    w = torch.tensor(rng.standard_normal((4, 4)))

    def f(x):
        return (xt.potrf(x) * w).sum()

    torch._dynamo.reset()
    capture = Capture()
    got = torch.compile(torch.func.vmap(f), backend=capture, fullgraph=True)(a)
    assert not [t for t in capture.forward if t.startswith(f"{torch_ops.NAMESPACE}.")]
    torch.testing.assert_close(got, torch.func.vmap(f)(a), rtol=1e-12, atol=1e-12)
