"""The PyTorch backend: ``xlinalg.<op>`` on tensors (the torch adapter), derivatives through
PyTorch's own machinery.

Capabilities: ``vjp`` (``torch.autograd.grad`` with the cotangents as ``grad_outputs``),
``jvp`` (``torch.func.jvp``, forward mode through the adapter's ``jvp``), ``second_order``
(``torch.autograd.grad`` of the VJP built with ``create_graph=True``: double backward),
``vmap`` (``torch.func.vmap``), ``errors`` (raised eagerly, at the call), ``accumulate``
(``Tensor.backward`` into leaves whose ``.grad`` already holds a value), ``partial_vjp``
(``torch.autograd.grad`` from the used outputs only).

``BACKEND`` runs on the CPU; ``CUDA_BACKEND`` (``--backend xlinalg_conformance.backends.torch:CUDA_BACKEND``)
puts every tensor on the current CUDA device and is available only where torch sees a GPU.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np

from . import Backend


class TorchBackend(Backend):
    name = "torch"
    capabilities = frozenset({"vjp", "jvp", "second_order", "vmap", "errors", "accumulate", "partial_vjp"})
    #: where each capability comes from (reported with the results)
    sources = {
        "vjp": "torch.autograd.grad",
        "jvp": "torch.func.jvp (the adapter's forward-mode rule)",
        "second_order": "torch.autograd.grad of a create_graph=True VJP (double backward)",
        "vmap": "torch.func.vmap",
        "errors": "raised at the call by the adapter",
        "accumulate": "torch.autograd.backward into leaves with a .grad",
        "partial_vjp": "torch.autograd.grad from the used outputs only",
    }

    def __init__(self, device: str = "cpu", name: str | None = None):
        self.device_name = device
        if name is not None:
            self.name = name

    def available(self):
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.origin is None:  # absent, or only a namespace package
            return "torch is not installed"
        import torch

        if self.device_name.startswith("cuda") and not torch.cuda.is_available():
            return "no CUDA device is available to torch"
        return None

    @staticmethod
    def _torch():
        import torch

        return torch

    def asarray(self, x):
        return self._torch().tensor(np.array(x, copy=True), device=self.device_name)

    def to_numpy(self, y):
        return np.array(y.detach().cpu().numpy(), copy=True)

    def dtype_name(self, y):
        return str(y.dtype).replace("torch.", "")

    def device(self, y):
        return y.device

    def foreign(self, x):
        return np.array(x, copy=True)

    @staticmethod
    def _fn(op, params):
        import xlinalg.torch

        f = getattr(xlinalg.torch, op)

        def fn(*xs):
            out = f(*xs, **params)
            return tuple(out) if isinstance(out, tuple) else (out,)

        return fn

    def _vjp(self, op, arrays, params, cotangents, create_graph):
        torch = self._torch()
        leaves = [x.detach().requires_grad_() for x in arrays]
        outs = self._fn(op, params)(*leaves)
        grads = torch.autograd.grad(
            outs, leaves, grad_outputs=tuple(cotangents), create_graph=create_graph,
            allow_unused=True, materialize_grads=True,
        )
        return leaves, grads

    def vjp(self, op, arrays, params, cotangents):
        _, grads = self._vjp(op, arrays, params, cotangents, create_graph=False)
        return tuple(g.detach() for g in grads)

    def accumulate_vjp(self, op, arrays, params, cotangents, initial):
        torch = self._torch()
        leaves = [x.detach().requires_grad_() for x in arrays]
        for x, g in zip(leaves, initial):
            x.grad = g.detach().clone()
        with warnings.catch_warnings():  # empty buffers have no strides to match: a performance note
            warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
            torch.autograd.backward(self._fn(op, params)(*leaves), grad_tensors=tuple(cotangents))
        return tuple(x.grad.detach() for x in leaves)

    def partial_vjp(self, op, arrays, params, cotangents):
        torch = self._torch()
        leaves = [x.detach().requires_grad_() for x in arrays]
        used = [(y, g) for y, g in zip(self._fn(op, params)(*leaves), cotangents) if g is not None]
        grads = torch.autograd.grad([y for y, _ in used], leaves, grad_outputs=[g for _, g in used],
                                    allow_unused=True, materialize_grads=True)
        return tuple(g.detach() for g in grads)

    def synchronize(self):
        torch = self._torch()
        if self.device_name.startswith("cuda"):
            torch.cuda.synchronize()

    def jvp(self, op, arrays, tangents, params):
        torch = self._torch()
        _, out_tangents = torch.func.jvp(self._fn(op, params), tuple(arrays), tuple(tangents))
        return tuple(out_tangents)

    def vmap(self, op, arrays, params):
        torch = self._torch()
        return tuple(torch.func.vmap(self._fn(op, params))(*arrays))

    def grad_of_vjp(self, op, arrays, params, cotangents, weights):
        torch = self._torch()
        leaves, grads = self._vjp(op, arrays, params, cotangents, create_graph=True)
        s = sum((g * w).sum() for g, w in zip(grads, weights))
        if not s.requires_grad:  # the VJP does not depend on the inputs (a linear operator)
            return tuple(torch.zeros_like(x) for x in leaves)
        return tuple(
            g.detach() for g in torch.autograd.grad(s, leaves, allow_unused=True, materialize_grads=True)
        )


BACKEND = TorchBackend()
CUDA_BACKEND = TorchBackend(device="cuda", name="torch_cuda")
