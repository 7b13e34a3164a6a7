"""Traced graphs on CUDA tensors call the custom operators that run the GPU layer, with or without
a GPU: fake CUDA tensors trace on any machine (torch's CPU build included). The operators' CUDA
kernels themselves run in tests/test_cuda_rules.py and scripts/gpu_check.sh on a GPU."""

from __future__ import annotations

import pytest

import xlinalg.cuda
import xlinalg.torch as xt
from tests.torch_adapter._helpers import torch
from xlinalg import lapack
from xlinalg.core.operator import get
from xlinalg.cuda import rules as cuda_rules
from xlinalg.kernels import kernels_for, torch_ops

pytestmark = [
    pytest.mark.skipif(lapack.library() is None, reason="the compiled kernel layer is not active"),
    pytest.mark.skipif(xlinalg.cuda.library() is None, reason="the CUDA library is not built"),
]


def _fake_cuda(*shapes, dtype=torch.float64):
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode()
    with mode:
        return mode, [torch.empty(s, device="cuda", dtype=dtype) for s in shapes]


def _targets(graph) -> list[str]:
    return [str(node.target) for node in graph.graph.nodes if node.op == "call_function"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fake_cuda_graph_calls_the_custom_operators(dtype):
    from torch.fx.experimental.proxy_tensor import make_fx

    def f(a, b):
        el = xt.potrf(a)
        return xt.trsm(el, b, transpose=True), xt.sumlogdiag(el), xt.potri(el), xt.syevd(a)

    n = cuda_rules.MAX_ORDER
    mode, (a, b) = _fake_cuda((3, n, n), (3, n, 2), dtype=dtype)
    with mode:
        graph = make_fx(f)(a, b)
        outputs = graph(a, b)
    targets = _targets(graph)
    for name in ("potrf", "trsm", "sumlogdiag", "potri", "syevd"):
        assert f"{torch_ops.NAMESPACE}.{name}_forward.default" in targets, targets
    assert not [t for t in targets if t.startswith("aten.linalg")], targets
    shapes = [(3, n, 2), (3,), (3, n, n), (3, n, n), (3, n)]
    flat = [outputs[0], outputs[1], outputs[2], *outputs[3]]
    assert [tuple(y.shape) for y in flat] == shapes
    assert all(y.device.type == "cuda" and y.dtype == dtype for y in flat)


def test_vjp_operators_take_fake_cuda_tensors():
    n = 8
    mode, (f, g) = _fake_cuda((2, n, n), (2, n, n))
    with mode:
        ga = torch.ops.xlinalg.potrf_vjp(f, f, g, lower=True)
    assert tuple(ga.shape) == (2, n, n) and ga.device.type == "cuda"


def test_traced_cuda_calls_beyond_the_entries_or_without_a_gpu_rule_keep_the_pure_rules():
    import array_api_compat.torch as torch_xp

    kern = kernels_for(torch_xp)
    n = cuda_rules.MAX_ORDER
    mode, (small, large) = _fake_cuda((2, n, n), (2, n + 1, n + 1))
    with mode:
        assert kern.compiled(get("potrf"), "forward", (small,)) is not None
        assert kern.compiled(get("potrf"), "forward", (large,)) is None
        assert kern.compiled(get("gemm2"), "forward", (small, small)) is None  # no GPU rule: torch's kernels
    big = cuda_rules.BLOCK_MAX_ORDER  # syevd's forward: a block of threads per matrix to this order
    mode, (fits, too_big, u, w) = _fake_cuda((2, big, big), (2, big + 1, big + 1), (2, n + 1, n + 1), (2, n + 1))
    with mode:
        assert kern.compiled(get("syevd"), "forward", (fits,)) is not None
        assert kern.compiled(get("syevd"), "forward", (too_big,)) is None
        assert kern.compiled(get("syevd"), "vjp", (u, w, u, w)) is None  # the VJP: the thread entries' orders


@pytest.mark.parametrize("kind", ["forward", "vjp"])
def test_custom_operators_fallback_runs_the_pure_rules_on_torch(kind):
    """The CUDA kernel's fallback (no GPU rule for the call) runs the pure rules on the tensors'
    own library: the same values and status as on NumPy (checked here on CPU tensors)."""
    import array_api_compat.torch as torch_xp
    import numpy as np

    op = get("potrf")
    a = np.broadcast_to(np.eye(3) * 2.0, (3, 3, 3)).copy()
    a[1, 2, 2] = -1.0  # entry 1 fails
    params = {"lower": True}
    if kind == "forward":
        arrays = (a,)
    else:
        f = np.linalg.cholesky(np.broadcast_to(np.eye(3) * 2.0, (3, 3, 3)))
        arrays = (a, f, np.ones_like(f))
    want = torch_ops._pure(op, kind, arrays, params)
    got = torch_ops._pure(op, kind, tuple(torch.from_numpy(x) for x in arrays), params, torch_xp)
    if kind == "forward":
        (want, want_status), (got, got_status) = want, got
        np.testing.assert_array_equal(got_status.numpy(), want_status)
        assert want_status.tolist() == [0, 1, 0]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-12, atol=1e-12)
