"""PyTorch kernels: ``torch.linalg``'s own differentiable functions.

Every primitive here has a derivative in PyTorch's autograd and a batching rule in
``torch.func``, so a core rule run on tensors that require grad (the backward pass of
:mod:`xlinalg.adapters.torch`) is itself differentiable: double backward, ``jacfwd`` of
``jacrev`` and ``hessian`` need no extra code. CUDA tensors use torch's CUDA kernels.
"""

from __future__ import annotations

import math

import torch

from .. import lapack
from ..lapack.rules import rule as _compiled_rule
from .numpy import numpy_runner
from .portable import Kernels

try:  # present in every torch >= 2.1; guarded for older ones
    from torch._C._functorch import is_functorch_wrapped_tensor as _is_functorch_wrapped
except ImportError:  # pragma: no cover
    def _is_functorch_wrapped(x):
        return False

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
        """The compiled rule for eager CPU tensors, on their memory (no copy), when no autograd
        graph is being recorded (double backward differentiates the pure rules)."""
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return None
        for x in arrays:
            if x.device.type != "cpu" or _is_functorch_wrapped(x) or isinstance(x, _FakeTensor):
                return None
        fn = _compiled_rule(op, kind)
        if fn is None:
            return None
        threads = torch.get_num_threads()
        lapack.use_blas_threads(threads)
        inner = numpy_runner(fn, kind, threads)

        def run(*groups, params):
            values, status = inner(*(tuple(x.detach().numpy() for x in g) for g in groups), params=params)
            return tuple(torch.from_numpy(v) for v in values), status

        return run

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
