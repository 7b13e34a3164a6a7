"""PyTorch kernels: ``torch.linalg``'s own differentiable functions.

Every primitive here has a derivative in PyTorch's autograd and a batching rule in
``torch.func``, so a core rule run on tensors that require grad (the backward pass of
:mod:`xlinalg.adapters.torch`) is itself differentiable: double backward, ``jacfwd`` of
``jacrev`` and ``hessian`` need no extra code. CUDA tensors use torch's CUDA kernels.
"""

from __future__ import annotations

import math

import torch

from . import torch_ops as _torch_ops
from .numpy import host_runner
from .portable import Kernels

try:  # present in every torch >= 2.1; guarded for older ones
    from torch._C._functorch import is_functorch_wrapped_tensor as _is_functorch_wrapped
except ImportError:  # pragma: no cover
    def _is_functorch_wrapped(x):
        return False


@torch.compiler.assume_constant_result
def _functorch_active() -> bool:
    """Whether a ``torch.func`` transform is running (its interpreter stack is not empty).
    Dynamo runs it while tracing (the transforms' interpreters are live then) and records the
    answer as a constant: a plain ``is None`` test of the stack does not trace."""
    return torch._C._functorch.peek_interpreter_stack() is not None


_MODE_KEYS = tuple(
    getattr(torch._C._TorchDispatchModeKey, k) for k in ("PROXY", "FAKE") if hasattr(torch._C, "_TorchDispatchModeKey")
)


def _tracing() -> bool:
    """Whether ``make_fx`` traces or a fake tensor mode is active (no data: the eager path would
    run on none, or bake its result into the graph as a constant)."""
    return any(torch._C._get_dispatch_mode(k) is not None for k in _MODE_KEYS)


try:
    from torch._subclasses.fake_tensor import FakeTensor as _FakeTensor
    from torch._subclasses.fake_tensor import is_fake as _is_fake
except ImportError:  # pragma: no cover
    class _FakeTensor:
        pass

    def _is_fake(x):
        return False


class TorchKernels(Kernels):
    """Kernels over ``array_api_compat.torch`` (the namespace of torch tensors)."""

    name = "torch"
    error_base = torch.linalg.LinAlgError

    def cholesky(self, a):
        el, info = torch.linalg.cholesky_ex(a)
        return self._fill_failed(el, info)

    def eigh(self, a):
        w, v = torch.linalg.eigh(a, UPLO="L")
        return w, v

    def qr(self, a):
        q, r = torch.linalg.qr(a, mode="reduced")
        return q, r

    def inv(self, a):
        x, info = torch.linalg.inv_ex(a)
        return self._fill_failed(x, info)

    def det(self, a):
        return torch.linalg.det(a)

    def slogdet(self, a):
        sign, logabsdet = torch.linalg.slogdet(a)
        return sign, logabsdet

    def solve_triangular(self, a, b, *, lower, transpose=False, left=True):
        if transpose:
            a, lower = a.mT, not lower
        if a.shape[-1] == 0 or b.shape[-1] == 0 or b.shape[-2] == 0:
            batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            return b.new_zeros((*batch, *b.shape[-2:]))
        return torch.linalg.solve_triangular(a, b, upper=not lower, left=left)

    def compiled(self, op, kind, arrays):
        """The compiled rule for CPU tensors, or ``None`` (the pure rules run).

        ``None`` while autograd records a graph through the call (grad mode on and a tensor
        requiring grad: double backward differentiates the pure rules), inside ``torch.func``
        transforms and for non-CPU tensors. Eagerly the rule runs on the tensors' memory (no
        copy). While ``torch.compile``/``torch.export`` trace, under ``make_fx`` and for fake
        tensors it is the custom operator of :mod:`xlinalg.kernels.torch_ops` (one graph node
        per call; no status: failing entries come out NaN)."""
        if torch.is_grad_enabled() and any(x.requires_grad for x in arrays):
            return None
        if torch.compiler.is_compiling():
            if _functorch_active():  # vmap, grad, jvp, jacrev... traced: the pure rules
                return None
            for x in arrays:
                if not x.is_cpu:
                    return None
            return _torch_ops.runner(op, kind)
        traced = _tracing()
        for x in arrays:
            if not x.is_cpu or _is_functorch_wrapped(x):
                return None
            traced = traced or isinstance(x, _FakeTensor)
        if traced:  # make_fx, fake tensors: the graph gets the custom operator's node
            return _torch_ops.runner(op, kind)
        return host_runner(op, kind, torch.get_num_threads(), arrays, lambda x: x.detach().numpy(), torch.from_numpy)

    def _fill_failed(self, x, info):
        """``x`` with the batch entries whose LAPACK ``info`` is non-zero set to NaN (eagerly
        only when there are some: one pass over ``x`` less in the common case)."""
        if not self.is_traced(x) and not bool(info.any()):
            return x
        failed = (info != 0)[..., None, None]
        return torch.where(failed, torch.full((), math.nan, dtype=x.dtype, device=x.device), x)

    def is_traced(self, x) -> bool:
        """True under ``torch.compile``, for ``torch.func`` wrapper tensors (vmap, grad),
        fake and meta tensors: no data to check eagerly."""
        if torch.compiler.is_compiling():
            return True
        if not isinstance(x, torch.Tensor):
            return False
        return bool(_is_functorch_wrapped(x)) or _is_fake(x) or x.device.type == "meta"
