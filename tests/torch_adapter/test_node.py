"""The C++ autograd node of eager CPU calls (:mod:`xlinalg.lapack.torch_node`): it runs every
compiled rule with the ``autograd.Function``'s results, records what torch's own nodes record
(saved-tensor hooks, the version check, freed buffers), hands recorded backward passes to the
composed rules, and stays out of the calls it cannot take."""

from __future__ import annotations

import ctypes
import os
import sys

import numpy as np
import pytest

import xlinalg.torch as xt
from tests.mappings import mapping_flags
from tests.torch_adapter._helpers import inputs, structured, tensors, torch, without_node
from xlinalg import lapack
from xlinalg.adapters import torch as torch_adapter
from xlinalg.core.operator import get
from xlinalg.lapack import table, torch_node
from xlinalg.lapack.rules import RULES

pytestmark = pytest.mark.skipif(torch_node.library() is None, reason=f"no C++ node ({torch_node.reason()})")

CASES = [pytest.param(name, params, id=f"{name}-{i}") for name in RULES for i, params in enumerate(get(name).param_grid())]


def _node_name(name):
    return f"{name.capitalize()}Backward"


def _run(name, params, xs, weights):
    ys = structured(name, params)(*xs)
    loss = sum((w * y).sum() for w, y in zip(weights, ys))
    return ys, torch.autograd.grad(loss, xs)


def _with_threads(count, run):
    """``run()`` with ``count`` torch threads (the count restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        return run()
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name, params", CASES)
def test_node_gives_the_functions_results(name, params, monkeypatch):
    """Outputs and gradients through the node are the ``autograd.Function``'s on the same
    kernels, bit for bit, for every compiled rule and parameter combination (a broadcast batch
    included: autograd sums the gradients of the expanded inputs)."""
    rng = np.random.default_rng(3)
    arrays = inputs(name, params, rng, batch=(2, 3), n=4)
    arrays = (arrays[0][:1],) + arrays[1:]  # the first argument broadcast along the batch
    xs = tensors(arrays, requires_grad=True)
    ys = structured(name, params)(*xs)
    assert all(y.grad_fn.name() == _node_name(name) for y in ys)
    weights = [torch.tensor(rng.standard_normal(tuple(y.shape))) for y in ys]
    got = _run(name, params, xs, weights)
    without_node(monkeypatch)
    want = _run(name, params, xs, weights)
    assert want[0][0].grad_fn.name() != _node_name(name)
    for a, b in zip((*got[0], *got[1]), (*want[0], *want[1])):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(table.SAVING))
def test_node_keeps_the_residuals_of_a_recorded_call(name):
    """A recorded call runs the variant that keeps residuals; a call without grad does not."""
    op = get(name)
    assert torch_node.plan(op, True).spec is table.SAVING[name]
    assert torch_node.plan(op, False).spec is table.TABLE[name]


def test_outputs_the_user_does_not_use_get_zero_cotangents():
    """syevd with only the eigenvalues in the loss: the eigenvectors' cotangent is zero."""
    a = torch.tensor(inputs("syevd", {}, np.random.default_rng(4), n=4)[0], requires_grad=True)
    u, lam = xt.syevd(a)
    (g,) = torch.autograd.grad(lam.sum(), a)
    torch.testing.assert_close(g, torch.eye(4, dtype=a.dtype).expand_as(a), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("beta", [1.0, -0.5])
def test_gemm_hands_back_the_cotangent_of_c(beta):
    """gemm's C̄ = β Ḡ comes from the node, not the VJP entry: at β = 1 the output's cotangent
    itself (no pass over memory, as torch's addmm), else β times it; Ā and B̄ from the entry."""
    rng = np.random.default_rng(5)
    a, b, c = tensors(tuple(rng.standard_normal((2, 6, 6)) for _ in range(3)), requires_grad=True)
    y = xt.gemm(a, b, c, alpha=0.5, beta=beta)
    assert y.grad_fn.name() == "GemmBackward"
    g = torch.tensor(rng.standard_normal((2, 6, 6)))
    ga, gb, gc = torch.autograd.grad(y, (a, b, c), g)
    assert (gc.data_ptr() == g.data_ptr()) == (beta == 1.0)
    torch.testing.assert_close(gc, beta * g, rtol=0, atol=0)
    torch.testing.assert_close(ga, 0.5 * g @ b.detach().mT, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(gb, 0.5 * a.detach().mT @ g, rtol=1e-14, atol=1e-14)


def test_double_backward_runs_the_composed_rules():
    """create_graph=True: the node's backward hands over to the composed, differentiable rules
    (gradgradcheck through potrf, potrs and sumlogdiag)."""
    rng = np.random.default_rng(5)
    a = torch.tensor(inputs("potrf", {}, rng, n=3)[0], requires_grad=True)
    b = torch.tensor(rng.standard_normal((2, 3, 2)), requires_grad=True)

    def loss(a, b):
        el = xt.potrf((a + a.mT) / 2)
        assert el.grad_fn.name() == "PotrfBackward"
        return (b * xt.potrs(el, b)).sum() + 2 * xt.sumlogdiag(el).sum()

    assert torch.autograd.gradgradcheck(loss, (a, b), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_saved_tensor_hooks_see_the_saved_inputs_and_outputs():
    """The node saves SavedVariables: the default saved-tensor hooks pack and unpack them."""
    a, b = tensors(inputs("trsm", {}, np.random.default_rng(6), n=3), requires_grad=True)
    packed, unpacked = [], []

    def pack(x):
        packed.append(x)
        return x.clone()

    def unpack(x):
        unpacked.append(x)
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = xt.trsm(a, b)
    assert y.grad_fn.name() == "TrsmBackward" and len(packed) == 3  # a, b and the output
    ga, gb = torch.autograd.grad(y.sum(), (a, b))
    assert len(unpacked) == 3
    want = torch.autograd.grad(xt.trsm(a, b).sum(), (a, b))
    assert torch.equal(ga, want[0]) and torch.equal(gb, want[1])


def test_an_input_modified_in_place_fails_the_backward_pass():
    a = torch.tensor(inputs("potrf", {}, np.random.default_rng(7), n=3)[0], requires_grad=True)
    x = a.detach().clone().requires_grad_()
    y = xt.potrf(x * 1)  # a non-leaf input, modified after the call
    z = x * 1
    el = xt.potrf(z)
    with torch.no_grad():
        z.mul_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.autograd.grad(el.sum(), x)
    torch.autograd.grad(y.sum(), x)  # the unmodified call differentiates


def test_a_second_backward_pass_needs_retain_graph():
    a = torch.tensor(inputs("potrf", {}, np.random.default_rng(8), n=3)[0], requires_grad=True)
    y = xt.potrf(a)
    torch.autograd.grad(y.sum(), a)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        torch.autograd.grad(y.sum(), a)
    y = xt.potrf(a)
    first = torch.autograd.grad(y.sum(), a, retain_graph=True)
    assert torch.equal(first[0], torch.autograd.grad(y.sum(), a)[0])


def test_calls_with_other_autograd_modes_use_the_function():
    """Forward-mode dual tensors and torch.func transforms need the Function's jvp and vmap
    rules; grad mode off records nothing."""
    import torch.autograd.forward_ad as fwAD

    a = torch.tensor(inputs("potrf", {}, np.random.default_rng(9), n=3)[0], requires_grad=True)
    with fwAD.dual_level():
        y = xt.potrf(fwAD.make_dual(a, torch.ones_like(a)))
        assert y.grad_fn.name() == "PotrfFunctionBackward"
    g = torch.func.grad(lambda x: xt.potrf(x).sum())(a.detach())
    torch.testing.assert_close(g, torch.autograd.grad(xt.potrf(a).sum(), a)[0], rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        assert xt.potrf(a).grad_fn is None


def test_a_failing_entry_raises_at_the_call():
    a = torch.tensor(inputs("potrf", {}, np.random.default_rng(10), n=3)[0], requires_grad=True)
    bad = a.detach().clone()
    bad[1] = -bad[1]
    with pytest.raises(torch.linalg.LinAlgError, match=r"potrf: .* at batch index \(1,\)"):
        xt.potrf(bad.requires_grad_())


def test_two_threads_put_the_blas_on_one_before_the_reverse(monkeypatch):
    """With several torch threads the reverse of a small call sets the BLAS to one thread first
    (another call may have set it to more in between)."""
    calls = []
    monkeypatch.setattr(lapack, "use_blas_threads", lambda n: calls.append(n))
    a = torch.tensor(inputs("potrf", {}, np.random.default_rng(11), n=3)[0], requires_grad=True)

    def reverse_calls():
        y = xt.potrf(a)
        calls.clear()
        torch.autograd.grad(y.sum(), a)
        return list(calls)

    assert _with_threads(1, reverse_calls) == []
    assert _with_threads(2, reverse_calls) == [1]


def test_calls_the_node_cannot_take_use_the_function(monkeypatch):
    """Without the module (or a modified operator spec) the Function runs the call."""
    a = torch.tensor(inputs("potrf", {}, np.random.default_rng(12), n=3)[0], requires_grad=True)
    monkeypatch.setattr(torch_node, "plan", lambda op, saving: None)
    monkeypatch.setattr(torch_node, "fast_path", lambda: None)
    assert xt.potrf(a).grad_fn.name() == "PotrfFunctionBackward"


@pytest.mark.parametrize("name, params", CASES)
def test_batches_split_across_torchs_threads_give_one_threads_results(name, params):
    """With two torch threads a batch of enough matrices runs in parts on torch's own pool
    (at::parallel_for), forward and backward: every output and gradient is the one-thread
    result, bit for bit (each part starts at its own batch entries of every array)."""
    rng = np.random.default_rng(13)
    xs = tensors(inputs(name, params, rng, batch=(3, 211), n=5), requires_grad=True)  # > 32768 elements
    weights = [torch.tensor(rng.standard_normal(tuple(y.shape))) for y in structured(name, params)(*xs)]
    (ys1, gs1), (ys2, gs2) = (_with_threads(count, lambda: _run(name, params, xs, weights)) for count in (1, 2))
    for a, b in zip((*ys1, *gs1), (*ys2, *gs2)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name, params", CASES)
def test_one_large_matrix_splits_its_blas_calls_across_torchs_threads(name, params):
    """With two torch threads the large level-3 BLAS calls of one matrix run in parts of their
    columns (or rows) on torch's pool (the team of blas.hpp), forward and backward: every output
    and gradient is the one-thread result up to rounding (a part reading or writing the wrong
    columns would be off by far more)."""
    rng = np.random.default_rng(14)
    xs = tensors(inputs(name, params, rng, batch=(), n=160), requires_grad=True)
    ys = structured(name, params)(*xs)
    weights = [torch.tensor(rng.standard_normal(tuple(y.shape))) for y in ys]
    (ys1, gs1), (ys2, gs2) = (_with_threads(count, lambda: _run(name, params, xs, weights)) for count in (1, 2))
    for a, b in zip((*ys1, *gs1), (*ys2, *gs2)):
        assert a.shape == b.shape
        assert (a - b).abs().max() <= 1e-10 * a.abs().max()


@pytest.mark.parametrize("name", ["gemm", "trsm", "potrs", "potrf"])
def test_large_copies_split_across_torchs_threads(name):
    """With two torch threads an input of 32768 values or more is copied into the output in parts
    of whole pages on torch's pool (``team_copy``; order 203: the last page partly filled):
    every output and gradient is the one-thread result up to rounding."""
    rng = np.random.default_rng(16)
    xs = tensors(inputs(name, {}, rng, batch=(), n=203), requires_grad=True)
    weights = [torch.tensor(rng.standard_normal(tuple(y.shape))) for y in structured(name, {})(*xs)]
    before = torch_node.team_splits()
    (ys1, gs1), (ys2, gs2) = (_with_threads(count, lambda: _run(name, {}, xs, weights)) for count in (1, 2))
    assert torch_node.team_splits() > before
    for a, b in zip((*ys1, *gs1), (*ys2, *gs2)):
        assert (a - b).abs().max() <= 1e-10 * a.abs().max()


@pytest.mark.parametrize("name, n", [("gemm", 160), ("trsm", 160), ("trmm", 160), ("syrk", 160), ("potrf", 400)])
def test_calls_split_only_with_several_threads(name, n):
    """The split happens (torch_node.team_splits counts the calls run in parts): with two
    threads (forward and backward; potrf's blocked reverse from blocks of 64), never with one.
    Where the node calls torch's MKL, which runs its products and solves whole on torch's
    threads itself, only the triangular products (SciPy's ``trmm``) and copies of 32768 values
    or more (potrf's of its 400 × 400 input) are split."""
    rng = np.random.default_rng(15)
    xs = tensors(inputs(name, {}, rng, batch=(), n=n), requires_grad=True)

    def splits():
        before = torch_node.team_splits()
        ys = structured(name, {})(*xs)
        torch.autograd.grad(sum(y.sum() for y in ys), xs)
        return torch_node.team_splits() - before

    assert _with_threads(1, splits) == 0
    if torch_node.blas_on_torch_threads() and name not in ("trmm", "potrf"):
        assert _with_threads(2, splits) == 0
    else:
        assert _with_threads(2, splits) > 0


def test_large_matrices_of_lapack_bound_operators_keep_the_blas_threads():
    """With two threads and matrices of order BLAS_THREADS_MIN_ORDER, an operator whose time is
    its own BLAS calls takes the node (the BLAS on one thread, the calls split), one whose time
    is inside LAPACK (inverse) the Function, with the BLAS on both threads; where the node calls
    torch's MKL, which runs on torch's threads, every operator takes the node."""
    a = torch.eye(lapack.BLAS_THREADS_MIN_ORDER, dtype=torch.float64, requires_grad=True) * 2.0
    controller = lapack._blas_controller()
    assert "potrf" in table.TEAM_SPLIT and "inverse" not in table.TEAM_SPLIT

    def names():
        got = []
        for f in (xt.potrf, xt.inverse):
            got.append((f(a).grad_fn.name(), controller.num_threads if controller else None))
        return got

    (potrf, blas_potrf), (inverse, blas_inverse) = _with_threads(2, names)
    if torch_node.blas_on_torch_threads():
        assert (potrf, inverse) == ("PotrfBackward", "InverseBackward")
        return
    assert potrf == "PotrfBackward" and inverse == "InverseFunctionBackward"
    if controller is not None:
        assert (blas_potrf, blas_inverse) == (1, min(2, os.cpu_count() or 1))


def test_strided_inputs_and_partial_grads_under_create_graph():
    """A transposed (non-contiguous) input is read as its values; with create_graph=True and
    only one input requiring grad, the recorded backward gives that input's gradient (the
    Function's) and none for the other, and it differentiates again."""
    rng = np.random.default_rng(14)
    a_np, b_np = inputs("trsm", {}, rng, n=4)
    a = torch.tensor(np.ascontiguousarray(np.swapaxes(a_np, -1, -2))).mT  # a transposed view
    b = torch.tensor(b_np, requires_grad=True)
    assert not a.is_contiguous()
    y = xt.trsm(a, b)
    assert y.grad_fn.name() == "TrsmBackward"
    torch.testing.assert_close(y, xt.trsm(a.contiguous(), b), rtol=0, atol=0)
    (gb,) = torch.autograd.grad(y.pow(2).sum(), b, create_graph=True)
    (ggb,) = torch.autograd.grad(gb.sum(), b)
    with torch.no_grad():
        want = torch.linalg.solve_triangular(torch.tril(a), b, upper=False)
    torch.testing.assert_close(gb, 2 * torch.linalg.solve_triangular(torch.tril(a).mT, want, upper=True), rtol=1e-10, atol=1e-10)
    m = torch.linalg.inv(torch.tril(a))
    torch.testing.assert_close(ggb, 2 * m.mT @ m @ torch.ones_like(b), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["auto", "compiled"])
def test_a_failed_build_falls_back_or_raises(mode, failing_compiler):
    """Without a working compiler (and nothing cached) the auto mode runs the calls through the
    Function and says why; XLINALG_KERNELS=compiled makes it an ImportError."""
    a = torch.tensor(inputs("potrf", {}, np.random.default_rng(15), n=3)[0], requires_grad=True)
    failing_compiler.setenv("XLINALG_KERNELS", mode)
    failing_compiler.setattr(torch_node, "_state", {})
    if mode == "auto":
        assert torch_node.library() is None
        assert "building the PyTorch autograd node failed" in torch_node.reason()
        y = xt.potrf(a)
        assert y.grad_fn.name() == "PotrfFunctionBackward"
        torch.autograd.grad(y.sum(), a)
    else:
        with pytest.raises(ImportError, match="the PyTorch autograd node cannot be loaded"):
            torch_node.library()



@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="huge pages are advised on Linux only")
def test_large_outputs_lie_on_huge_pages_and_are_ordinary_tensors():
    """From 32 MiB on the node allocates an output itself, 2 MiB-aligned and, where its memory is
    fresh, advised onto huge pages: it holds the Function's values and behaves like any tensor
    (its memory kept while a view lives, written in place, resized).

    glibc may serve the allocation from free memory of its heap that earlier calls of this
    process wrote (once freed blocks have raised its mapping threshold), which is mapped already
    and rightly left without advice; ``malloc_trim`` hands such memory back to the system first,
    so that the output is fresh whatever ran before in this process."""
    n = 2048  # the gradient: n² float64 = 32 MiB
    a = torch.diag(torch.linspace(1.0, 2.0, n, dtype=torch.float64)).requires_grad_()
    y = xt.sumlogdiag(a)
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc's
    if trim is not None:
        trim(0)
    (got,) = torch.autograd.grad(y, [a])
    assert got.data_ptr() % (1 << 21) == 0 and "hg" in mapping_flags(got.data_ptr())
    assert torch.equal(got, torch.diag(1.0 / torch.diagonal(a.detach())))
    view = got[:2, :2]
    del got
    torch.full((n, n), 7.0, dtype=torch.float64)  # (memory freed too early would be overwritten here)
    assert torch.equal(view, torch.tensor([[1.0, 0.0], [0.0, 1.0 / (1.0 + 1.0 / (n - 1))]], dtype=torch.float64))
    (got,) = torch.autograd.grad(xt.sumlogdiag(a), [a])
    got.add_(1.0).resize_(n * n + 5)
    assert got.shape == (n * n + 5,) and got[0].item() == 2.0 and got[1].item() == 1.0


# ---- remembered calls ------------------------------------------------------------------------------
@pytest.fixture
def forgetting():
    """No signature remembered at the start (other tests' calls are)."""
    torch_node.forget()


def _python_path_fails(monkeypatch):
    """From now on a call that takes the adapter's Python path raises ``LookupError``."""

    def prepare(*args):
        raise LookupError("the Python path ran")

    monkeypatch.setattr(torch_adapter, "prepare", prepare)


def _spd(n=4, batch=(2,), dtype=torch.float64, seed=20):
    return torch.tensor(inputs("potrf", {}, np.random.default_rng(seed), batch=batch, n=n)[0], dtype=dtype)


@pytest.mark.parametrize("name, params", CASES)
def test_a_repeated_call_runs_as_remembered(name, params, monkeypatch):
    """A call whose signature ran before (its operator, dtypes, shapes, keyword parameters,
    recording and thread count) runs from the node's memory, without the adapter's Python path,
    and gives that path's outputs and gradients, bit for bit."""
    rng = np.random.default_rng(21)
    xs = tensors(inputs(name, params, rng, batch=(2,), n=4), requires_grad=True)
    weights = [torch.tensor(rng.standard_normal(tuple(y.shape))) for y in structured(name, params)(*xs)]
    first = _run(name, params, xs, weights)
    _python_path_fails(monkeypatch)
    again = _run(name, params, xs, weights)
    assert all(y.grad_fn.name() == _node_name(name) for y in again[0])
    for a, b in zip((*first[0], *first[1]), (*again[0], *again[1])):
        assert torch.equal(a, b)


def test_a_new_signature_takes_the_python_path(monkeypatch, forgetting):
    """Each part of the signature tells calls apart: another dtype, shape, keyword value or
    keyword type (``1`` for ``True``), recording or not, grad mode, thread count."""
    a = _spd().requires_grad_(True)
    xt.potrf(a, lower=True)
    _python_path_fails(monkeypatch)
    xt.potrf(a, lower=True)  # remembered
    for call in (
        lambda: xt.potrf(_spd(dtype=torch.float32), lower=True),
        lambda: xt.potrf(_spd(n=5).requires_grad_(True), lower=True),
        lambda: xt.potrf(_spd(batch=(3,)).requires_grad_(True), lower=True),
        lambda: xt.potrf(a, lower=False),
        lambda: xt.potrf(a, lower=1),
        lambda: xt.potrf(a),
        lambda: xt.potrf(a.detach(), lower=True),
    ):
        with pytest.raises(LookupError):
            call()
    with torch.no_grad(), pytest.raises(LookupError):
        xt.potrf(a, lower=True)
    with pytest.raises(LookupError):
        _with_threads(torch.get_num_threads() + 1, lambda: xt.potrf(a, lower=True))


def test_calls_that_are_never_remembered(monkeypatch, forgetting):
    """Broadcast inputs, tensor subclasses, array parameters and calls under forward-mode AD
    or fake tensors take the Python path every time."""

    class Sub(torch.Tensor):
        pass

    x, a, b = _spd(), _spd(batch=(1,)), torch.ones(3, 4, 2, dtype=torch.float64)
    sub = _spd().as_subclass(Sub)
    calls = {
        "broadcast": lambda: xt.potrs(a, b),
        "subclass": lambda: xt.potrf(sub),
        "array parameter": lambda: xt.trsm(x, x, alpha=torch.tensor(2.0, dtype=torch.float64)),
    }
    for call in calls.values():
        call()
    xt.potrf(x)
    _python_path_fails(monkeypatch)
    for call in calls.values():
        with pytest.raises(LookupError):
            call()
    xt.potrf(x)  # remembered
    with pytest.raises(LookupError), torch.autograd.forward_ad.dual_level():
        xt.potrf(x)
    from torch._subclasses.fake_tensor import FakeTensorMode

    with pytest.raises(LookupError), FakeTensorMode():
        xt.potrf(torch.empty(2, 4, 4, dtype=torch.float64))


def test_remembered_calls_follow_the_layer_and_blas_settings(monkeypatch, forgetting):
    """With the layer switched off (``XLINALG_KERNELS=python``, read again after
    :func:`xlinalg.lapack.reset`) or SciPy's BLAS on more than one thread, a remembered
    signature takes the Python path."""
    x = _spd()
    xt.potrf(x)
    assert torch_node.fast_path() is not None
    with monkeypatch.context() as m:
        m.setenv("XLINALG_KERNELS", "python")
        lapack.reset()
        try:
            assert torch_node.fast_path() is None
            _python_path_fails(m)
            with pytest.raises(LookupError):
                xt.potrf(x)
        finally:
            m.undo()
            lapack.reset()
    xt.potrf(x)  # reads the mode again
    lapack.use_blas_threads(2)
    try:
        assert torch_node.fast_path() is None
    finally:
        lapack.use_blas_threads(1)
    assert torch_node.fast_path() is not None


@pytest.mark.parametrize("recorded", [False, True])
def test_a_remembered_call_that_fails_raises_as_the_python_path_does(recorded, monkeypatch):
    """A failing batch entry in a remembered call raises the adapter's ``LinAlgError``, naming
    the entry, from the outputs and status of its one forward (the node's forward is not run
    again through the Python path)."""
    x = _spd().requires_grad_(recorded)
    xt.potrf(x)
    bad = x.detach().clone()
    bad[1] = -torch.eye(4, dtype=torch.float64)
    bad.requires_grad_(recorded)

    def forward(*args, **kwargs):
        raise LookupError("the forward ran again")

    monkeypatch.setattr(torch_node, "forward", forward)
    with pytest.raises(torch.linalg.LinAlgError, match=r"potrf: .* at batch index \(1,\)"):
        xt.potrf(bad)
    xt.potrf(x)  # still remembered
