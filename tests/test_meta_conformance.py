"""Meta-tests: the conformance suite rejects deliberately broken backends for the right
reason, and passes the unbroken one. A suite that cannot fail proves nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from xlinalg_conformance.backends import NUMPY
from xlinalg_conformance.broken import BROKEN, Accumulating, LoopVmap, ReportsErrorsLate, WrappedBackend
from xlinalg_conformance.checks import CHECKS
from xlinalg_conformance.runner import run

import xlinalg

ROOT = Path(__file__).resolve().parents[1]

#: what the failure message of each broken backend must say (the right reason)
REASONS = {
    "potrf_vjp_unsymmetrized": {"structure": "gradient of symmetric A is not symmetric"},
    "potrf_jvp_unsymmetrized": {"structure": "unread triangle of symmetric A changes the JVP of out unlike its mirror image"},
    "trsm_jvp_transposed": {"fd_grad": "JVP of out along A", "adjoint": "argument A"},
    "trsm_vjp_ignores_alpha": {"fd_grad": "VJP of B", "adjoint": "argument B"},
    "vjp_float64_for_float32": {"dtype": "VJP of argument 0 has dtype float64, input float32"},
    "drops_last_batch_entry": {"batching": "batch entry", "forward": "batch index"},
    "potrf_never_raises": {"errors": "no error raised, expected LinAlgError", "nan_policy": "no error raised for a NaN"},
    "syevd_without_sign_rule": {"forward": "sign rule"},
    "syevd_unguarded_degeneracy": {"degenerate": "diag(1, 1, 2)"},
    "vmap_reversed": {"vmap": "vmap output", "nan_policy": "vmap"},
    "mutates_input": {"no_mutation": "input (forward) 0 was modified"},
    "accumulation_overwrites": {"accumulate": "holds only the new gradient (the initial value was overwritten)"},
    "accumulation_drops_gradient": {"accumulate": "kept only its initial value (the new gradient was dropped)"},
    "unused_outputs_not_zero": {"degenerate": "VJP of"},
    "errors_raised_late": {"errors": "surfaced only at the next operation", "nan_policy": "surfaced only at the next operation"},
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_backend_is_rejected_for_the_right_reason(name):
    factory, expected = BROKEN[name]
    results = run(factory(), list(expected))
    for op, failing in expected.items():
        got = {r.check for r in results if r.op == op and r.status == "fail"}
        assert got == failing, f"{name}/{op}: failing checks {sorted(got)}, expected {sorted(failing)}"
        passing = {r.check for r in results if r.op == op and r.status == "pass"}
        always_run = {"forward", "fd_grad", "adjoint", "batching", "dtype", "no_mutation", "errors", "cross"}  # numpy: no vmap, second order
        assert always_run - failing <= passing, f"{name}/{op}: untouched checks did not pass: {sorted(always_run - failing - passing)}"
    for check, text in REASONS[name].items():
        messages = [r.message for r in results if r.check == check and r.status == "fail"]
        assert messages and all(text in m for m in messages), (check, messages)


def test_every_check_can_fail():
    caught = set()
    for _, expected in BROKEN.values():
        for failing in expected.values():
            caught |= failing
    assert caught == set(CHECKS) - {"second_order"}  # see test_second_order_rejects_...


def test_alpha_bug_is_caught_only_where_alpha_is_not_one():
    from xlinalg_conformance.runner import run_one

    r = run_one(BROKEN["trsm_vjp_ignores_alpha"][0](), "trsm", "adjoint")
    assert r.status == "fail" and "alpha=-1.5" in r.sample
    assert 0 < r.failed < r.samples  # the alpha = 1 samples pass


def test_unbroken_numpy_backend_passes():
    results = run(NUMPY)
    failed = [f"{r.op}×{r.check}: {r.message}" for r in results if r.status == "fail"]
    assert not failed, failed
    for r in results:
        if r.check in ("vmap", "cross", "second_order", "accumulate"):
            assert r.status == "skip" and r.reason  # reported, with the reason
        elif r.check in ("structure", "degenerate", "nan_policy"):
            assert r.status in ("pass", "n/a")
            applies = {"structure": ("trmm", "trsm", "potrf", "potri", "potrs", "syevd"), "degenerate": ("syevd",),
                       "nan_policy": tuple(op for op, s in xlinalg.core.operators().items() if s.failure)}[r.check]
            assert (r.status == "pass") == (r.op in applies), (r.op, r.check, r.status)
        else:
            assert r.status == "pass" and r.samples > 0, (r.op, r.check, r.status)


def test_correct_vmap_passes():
    results = run(LoopVmap(NUMPY, "numpy-loop-vmap"), ["gemm", "syevd"], ["vmap"])
    assert all(r.status == "pass" and r.samples > 0 for r in results)


def test_correct_accumulation_passes():
    results = run(Accumulating(NUMPY, "numpy-accumulating"), ["gemm", "potrf", "syevd"], ["accumulate"])
    assert all(r.status == "pass" and r.samples > 0 for r in results), [(r.op, r.message) for r in results]


def test_errors_raised_by_synchronize_are_charged_to_their_call():
    """An asynchronous backend that raises a failure at its synchronize() passes: the suite
    synchronizes after every operation (without that, the errors would surface late)."""
    backend = ReportsErrorsLate(NUMPY, "numpy-async", synchronizes=True)
    results = run(backend, ["potrf", "inverse"], ["errors", "nan_policy", "forward", "no_mutation"])
    assert all(r.status == "pass" for r in results), [(r.op, r.check, r.message) for r in results]


class _JvpFailsOnOneSample(WrappedBackend):
    """A JVP that fails in the computation for potrf's float64 n = 32 sample with lower=True."""

    @staticmethod
    def failing(arrays, params) -> bool:
        x = arrays[0]
        return str(x.dtype) == "float64" and x.shape[-1] == 32 and params.get("lower", True)

    def jvp(self, op, arrays, tangents, params):
        if self.failing(arrays, params):
            raise RuntimeError("the kernel failed")
        return self.base.jvp(op, arrays, tangents, params)


def test_an_asynchronous_failure_is_charged_to_the_sample_that_caused_it():
    """The JVP is the last operation of a no_mutation sample and its result is never read: an
    asynchronous library reports its failure at the next operation, which belongs to the next
    sample — unless the suite synchronizes right after each operation."""
    from xlinalg_conformance.runner import run_one

    backend = ReportsErrorsLate(_JvpFailsOnOneSample(NUMPY, "numpy-jvp-fails"), "numpy-async-jvp-fails", synchronizes=True)
    r = run_one(backend, "potrf", "no_mutation")
    assert r.status == "fail" and r.failed == 1, (r.failed, r.message)
    assert r.sample == "potrf[lower=T]n=32,batch=(),float64", r.sample
    assert "RuntimeError: the kernel failed" in r.message


def test_cli_exits_nonzero_on_failure(capsys):
    from xlinalg_conformance.__main__ import main

    assert main(["--backend", "xlinalg_conformance.broken:POTRF_NEVER_RAISES", "--ops", "potrf", "--checks", "errors", "forward"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "LinAlgError" in out


def test_pytest_plugin_reports_each_cell(tmp_path):
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "xlinalg_conformance.plugin",
           "--conformance-backend=xlinalg_conformance.broken:POTRF_NEVER_RAISES", "--conformance-ops", "potrf",
           "--conformance-checks", "errors", "forward", "vmap", "-rs", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed, 1 passed, 1 skipped" in out, out
    assert "conformance[xlinalg_conformance.broken:POTRF_NEVER_RAISES-potrf-errors]" in out
    assert "lacks vmap" in out


# ---- second order: a minimal backend over torch's own functions ---------------------------------
def _torch_native_backend(detached_backward: bool):
    torch = pytest.importorskip("torch")
    from xlinalg_conformance.backends import Backend

    class BadInverse(torch.autograd.Function):
        """Inverse whose backward uses a detached X: first derivatives right, second ones lost."""

        @staticmethod
        def forward(ctx, a):
            x = torch.linalg.inv(a)
            ctx.save_for_backward(x)
            return x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            xt = x.detach().mT
            return -xt @ g @ xt

    def gemm2(a, b, *, transpose_a, transpose_b, alpha):
        return alpha * ((a.mT if transpose_a else a) @ (b.mT if transpose_b else b))

    functions = {"gemm2": gemm2, "inverse": BadInverse.apply if detached_backward else torch.linalg.inv}

    class TorchNative(Backend):
        name = "torch-native-detached" if detached_backward else "torch-native"
        capabilities = frozenset({"vjp", "second_order", "errors"})

        def asarray(self, x):
            return torch.from_numpy(x.copy())

        def to_numpy(self, y):
            return y.detach().numpy().copy()

        def call(self, op, arrays, params):
            return (functions[op](*arrays, **params),)

        def _grads(self, op, arrays, params, cotangents, create_graph):
            xs = [x.detach().requires_grad_() for x in arrays]
            (y,) = self.call(op, xs, params)
            return xs, torch.autograd.grad(y, xs, cotangents[0], create_graph=create_graph)

        def vjp(self, op, arrays, params, cotangents):
            return tuple(g.detach() for g in self._grads(op, arrays, params, cotangents, False)[1])

        def grad_of_vjp(self, op, arrays, params, cotangents, weights):
            xs, gs = self._grads(op, arrays, params, cotangents, True)
            total = sum((g * w).sum() for g, w in zip(gs, weights))
            if not total.requires_grad:
                return tuple(torch.zeros_like(x) for x in xs)
            hs = torch.autograd.grad(total, xs, allow_unused=True)
            return tuple(torch.zeros_like(x) if h is None else h for x, h in zip(xs, hs))

    return TorchNative()


def test_second_order_passes_for_differentiable_backward():
    results = run(_torch_native_backend(False), ["gemm2", "inverse"], ["second_order", "fd_grad"])
    assert all(r.status == "pass" and r.samples > 0 for r in results), [(r.op, r.check, r.message) for r in results]


def test_second_order_rejects_a_non_differentiable_backward():
    results = {(r.op, r.check): r for r in run(_torch_native_backend(True), ["gemm2", "inverse"], ["second_order", "fd_grad"])}
    assert results["inverse", "second_order"].status == "fail"
    assert "argument A" in results["inverse", "second_order"].message
    assert results["inverse", "fd_grad"].status == "pass"  # first derivatives are right
    assert results["gemm2", "second_order"].status == "pass"
