"""PyTorch kernels: ``torch.linalg``'s own differentiable functions.

Every primitive here has a derivative in PyTorch's autograd and a batching rule in
``torch.func``, so a core rule run on tensors that require grad (the backward pass of
:mod:`xlinalg.adapters.torch`) is itself differentiable: double backward, ``jacfwd`` of
``jacrev`` and ``hessian`` need no extra code. CUDA tensors use torch's CUDA kernels.
"""

from __future__ import annotations

import math

import torch

from ..lapack import torch_node, use_blas_threads
from ..lapack.rules import rule as _compiled_rule
from ..lapack.table import TEAM_SPLIT
from . import torch_ops as _torch_ops
from .numpy import host_runner, thread_split
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
    for key in _MODE_KEYS:
        if torch._C._get_dispatch_mode(key) is not None:
            return True
    return False


try:
    from torch._subclasses.fake_tensor import FakeTensor as _FakeTensor
    from torch._subclasses.fake_tensor import is_fake as _is_fake
except ImportError:  # pragma: no cover
    class _FakeTensor:
        pass

    def _is_fake(x):
        return False


class TorchArrays:
    """Tensors for the GPU layer's rules (:class:`xlinalg.cuda.rules.Arrays`): on the tensor's
    device, on the current stream of that device (``None`` on the CPU)."""

    def empty(self, shape, like, dtype=None):
        return torch.empty(shape, dtype=like.dtype if dtype is None else getattr(torch, dtype), device=like.device)

    def contiguous(self, x):
        return x.contiguous()

    def broadcast(self, x, shape):
        return x.expand(shape).contiguous()

    def pointer(self, x):
        return x.data_ptr()

    def dtype(self, x):
        return str(x.dtype).removeprefix("torch.")

    def stream(self, x):
        return torch.cuda.current_stream(x.device).cuda_stream if x.is_cuda else None

    def device(self, x):
        return x.device.index if x.is_cuda else None

    def interleave(self, x, batch):
        return x.reshape(batch, -1).t().contiguous()

    def deinterleave(self, y, out):
        out.view(y.shape[1], -1).copy_(y.t())


def _one_device(arrays) -> bool:
    return all(x.device == arrays[0].device for x in arrays)


def _cuda_runner(op, kind, arrays):
    """The GPU layer's rule for CUDA tensors all on one device, or ``None`` (the pure rules run
    on torch's CUDA kernels)."""
    from ..cuda import rules as cuda_rules

    if not arrays or not _one_device(arrays):
        return None
    return cuda_rules.cuda_runner(op, kind, arrays, TorchArrays())


def _traced_runner(op, kind, arrays):
    """The custom operator's runner while a graph is traced: for CPU tensors wherever the CPU
    layer has the rule, for CUDA tensors where the GPU layer has it too (built, whether or not
    this machine has a GPU: the graph may run elsewhere) and the orders fit its entries."""
    if not arrays or not _one_device(arrays):
        return None
    device = arrays[0].device.type
    if device == "cuda" and not _cuda_traceable(op, kind, tuple(tuple(x.shape) for x in arrays)):
        return None
    return _torch_ops.runner(op, kind) if device in ("cpu", "cuda") else None


@torch.compiler.assume_constant_result
def _cuda_built() -> bool:
    from .. import cuda

    return cuda.library() is not None


def _cuda_traceable(op, kind, shapes) -> bool:
    from ..cuda import rules as cuda_rules

    return op.name in cuda_rules.RULES and _cuda_built() and cuda_rules.fits(op, shapes, kind)


def _placement(arrays):
    """Where :meth:`TorchKernels.compiled` runs a rule: ``"cpu"`` or ``"cuda"`` (eagerly, on
    the tensors' memory), ``"traced"`` (the custom operators) or ``None`` (the pure rules)."""
    if torch.is_grad_enabled() and any(x.requires_grad for x in arrays):
        return None
    return _data_placement(arrays)


def _data_placement(arrays):
    """:func:`_placement` whether or not autograd records the call."""
    if torch.compiler.is_compiling():
        return None if _functorch_active() else "traced"  # vmap, grad, jvp... traced: the pure rules
    traced, cpu = _tracing(), True
    for x in arrays:
        if _is_functorch_wrapped(x):
            return None
        traced = traced or (type(x) is not torch.Tensor and isinstance(x, _FakeTensor))
        cpu = cpu and x.is_cpu
    if traced:  # make_fx, fake tensors
        return "traced"
    if cpu:
        return "cpu"
    return "cuda" if arrays[0].is_cuda else None


def _host_view(x):
    return x.detach().numpy() if x.requires_grad else x.numpy()


#: Eager calls outside the C++ node (which splits batches on torch's own threads) split a batch
#: across ``torch.get_num_threads()`` threads of ours only from this many elements in all (or for
#: matrices large enough for BLAS threads:
#: :func:`xlinalg.kernels.numpy.thread_split`): torch's OpenMP workers keep spinning for a while
#: after each parallel operation, and threads of ours beside them oversubscribe the cores.
#: Measured with 2 threads, forward + backward of batches of 8×8 to 128×128 matrices (potrf,
#: trsm, syrk; 2.6·10⁵ elements or fewer): 0.5–1.2 (median 0.85) of the split's time on one
#: thread; with ``OMP_WAIT_POLICY=PASSIVE`` the split gained 1.0–1.3×.
SPLIT_MIN_ELEMENTS = 1 << 22


def eager_single_blas(name: str, arrays) -> bool:
    """Whether an eager call of operator ``name`` on ``arrays`` is on CPU tensors and keeps the
    BLAS on one thread (which this then sets up): the calls the C++ autograd node takes
    (:mod:`xlinalg.lapack.torch_node`), which runs a batch's matrices, or one matrix's large
    BLAS calls (:data:`xlinalg.lapack.table.TEAM_SPLIT`), in parts on torch's own threads.
    Matrices of order :data:`~xlinalg.lapack.BLAS_THREADS_MIN_ORDER` of the other operators,
    whose time is spent inside LAPACK, keep the BLAS's threads
    (:func:`~xlinalg.kernels.numpy.thread_split`) and so the ``autograd.Function``, unless the
    node's LAPACK is torch's MKL, on torch's threads
    (:func:`~xlinalg.lapack.torch_node.blas_on_torch_threads`)."""
    if _data_placement(arrays) != "cpu":
        return False
    lapack_threads = name not in TEAM_SPLIT and not torch_node.blas_on_torch_threads()
    if lapack_threads and thread_split(torch.get_num_threads(), arrays)[0] != 1:
        return False
    use_blas_threads(1)
    return True


def _host_runner(op, kind, arrays, *, saving=False):
    """:func:`~xlinalg.kernels.numpy.host_runner` for eager CPU tensors."""
    threads = torch.get_num_threads()
    return host_runner(op, kind, threads, arrays, _host_view, torch.from_numpy, saving=saving, split_min_elements=SPLIT_MIN_ELEMENTS)


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
        """The compiled rule for CPU and CUDA tensors, or ``None`` (the pure rules run).

        ``None`` while autograd records a graph through the call (grad mode on and a tensor
        requiring grad: double backward differentiates the pure rules), inside ``torch.func``
        transforms and for other devices. Eagerly the rule runs on the tensors' memory (no
        copy): the CPU layer's, or for CUDA tensors the GPU layer's (:mod:`xlinalg.cuda.rules`,
        where the CUDA library is built, a device is usable and the orders fit its entries).
        While ``torch.compile``/``torch.export`` trace, under ``make_fx`` and for fake tensors it
        is the custom operator of :mod:`xlinalg.kernels.torch_ops` (one graph node per call; no
        status: failing entries come out NaN), which runs either layer by the tensors' device."""
        where = _placement(arrays)
        if where == "traced":  # the graph gets the custom operator's node
            return _traced_runner(op, kind, arrays)
        if where == "cpu":
            return _host_runner(op, kind, arrays)
        return _cuda_runner(op, kind, arrays) if where == "cuda" else None

    def compiled_saving(self, op, kind, arrays):
        """The rules that keep residuals, for CPU tensors where :meth:`compiled` runs the CPU
        layer eagerly (the residuals stay NumPy arrays: the ``autograd.Function`` keeps them on
        its context); ``None`` elsewhere."""
        if _compiled_rule(op, kind, saving=True) is None or _placement(arrays) != "cpu":
            return None
        return _host_runner(op, kind, arrays, saving=True)

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
