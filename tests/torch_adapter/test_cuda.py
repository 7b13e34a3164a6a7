"""CUDA tensors keep their device and use torch's CUDA kernels (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest

import xlinalg
import xlinalg.torch as xt
from tests.torch_adapter._helpers import OPS, inputs, structured, torch

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@cuda
@pytest.mark.parametrize("name, params", OPS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_device_dtype_values_and_gradients(name, params, dtype, rng):
    arrays = inputs(name, params, rng, dtype=dtype)
    f = structured(name, params)
    cpu = [torch.tensor(x, requires_grad=True) for x in arrays]
    gpu = [torch.tensor(x, device="cuda", requires_grad=True) for x in arrays]
    out_cpu, out_gpu = f(*cpu), f(*gpu)
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == "float64" else {"rtol": 1e-4, "atol": 1e-4}
    for yc, yg in zip(out_cpu, out_gpu):
        assert yg.device.type == "cuda" and yg.dtype == yc.dtype
        torch.testing.assert_close(yg.cpu(), yc, **tol)
    weights = [torch.tensor(np.linspace(-1, 1, y.numel()).reshape(tuple(y.shape)), dtype=y.dtype) for y in out_cpu]
    g_cpu = torch.autograd.grad(sum((y * w).sum() for y, w in zip(out_cpu, weights)), cpu)
    g_gpu = torch.autograd.grad(sum((y * w.cuda()).sum() for y, w in zip(out_gpu, weights)), gpu)
    for gc, gg in zip(g_cpu, g_gpu):
        assert gg.device.type == "cuda" and gg.dtype == gc.dtype
        torch.testing.assert_close(gg.cpu(), gc, **tol)


@cuda
def test_failure_names_batch_index_on_cuda():
    a = torch.eye(3, dtype=torch.float64, device="cuda").repeat(2, 3, 1, 1)
    a[1, 2, 0, 0] = -1.0
    with pytest.raises(xlinalg.LinAlgError, match=r"batch index \(1, 2\)"):
        xt.potrf(a)


@cuda
def test_gradgradcheck_on_cuda(rng):
    (a,) = inputs("potrf", {}, rng)
    x = torch.tensor(a, device="cuda", requires_grad=True)
    tol = {"eps": 1e-6, "atol": 1e-7, "rtol": 1e-6}
    assert torch.autograd.gradgradcheck(structured("potrf", {}), (x,), **tol)
    (s,) = inputs("syevd", {}, rng)
    y = torch.tensor(s, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(structured("syevd", {}), (y,), check_forward_ad=True, **tol)


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="fewer than two CUDA devices")
def test_calls_run_on_their_tensors_device_and_leave_the_current_device_alone():
    a = 4 * torch.eye(8, dtype=torch.float32).repeat(64, 1, 1)
    for current, on in ((0, 1), (1, 0)):
        x = a.to(f"cuda:{on}").requires_grad_()
        with torch.cuda.device(current):
            factor = xt.potrf(x)
            factor.sum().backward()
            assert torch.cuda.current_device() == current
        assert factor.device == x.device == x.grad.device
        torch.testing.assert_close(factor.cpu(), 2 * torch.eye(8).repeat(64, 1, 1))
