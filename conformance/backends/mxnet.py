"""The MXNet backend: ``xlinalg.<op>`` on NDArrays (the MXNet adapter), reverse mode through
``mx.autograd`` with head gradients.

Capabilities: ``vjp`` (``mx.autograd.backward`` through the adapter's custom operators),
``jvp`` (MXNet 1.x has no forward mode: output tangents come from the core rules,
:func:`xlinalg.jvp` on NumPy copies — so ``adjoint`` checks the adapter's VJP against the core
JVP), ``errors`` (raised eagerly, at the call), ``accumulate`` (``attach_grad(grad_req="add")``
on buffers holding a value), ``partial_vjp`` (``mx.autograd.backward`` from the used outputs
only). MXNet's engine is asynchronous: ``synchronize`` waits for it (``mx.nd.waitall``), so
that an error is charged to the operation that raised it. Not declared: ``vmap`` (MXNet has none) and
``second_order`` (the custom operators' backward is not itself recorded).

The checks use the core's layouts: 0-d outputs (det of one matrix), empty batches and 0×0
matrices. MXNet expresses them only with NumPy shape semantics, so the backend runs every call
under ``mx.util.np_shape(True)``; MXNet's legacy shapes (``(1,)`` for det of a matrix) are
covered by ``tests/mxnet_adapter/test_parity.py``.
"""

from __future__ import annotations

import numpy as np

from . import Backend


class MxnetBackend(Backend):
    name = "mxnet"
    capabilities = frozenset({"vjp", "jvp", "errors", "accumulate", "partial_vjp"})
    #: where each capability comes from (reported with the results)
    sources = {
        "vjp": "mx.autograd.backward with head gradients",
        "jvp": "core rules: xlinalg.jvp on NumPy copies (MXNet has no forward mode)",
        "errors": "raised at the call by the adapter",
        "accumulate": 'attach_grad(grad_req="add") on buffers holding a value',
        "partial_vjp": "mx.autograd.backward from the used outputs only",
    }

    def available(self):
        try:
            import mxnet
        except ImportError as exc:
            return f"mxnet is not installed ({exc})"
        if not hasattr(mxnet, "nd"):
            return "mxnet is not installed (found a namespace package, not MXNet)"
        return None

    @staticmethod
    def _mx():
        import mxnet

        return mxnet

    def _np_shape(self):
        return self._mx().util.np_shape(True)

    def asarray(self, x):
        mx = self._mx()
        x = np.array(x, copy=True)
        if x.dtype.name not in ("float16", "float32", "float64", "uint8", "int8", "int32", "int64", "bool"):
            raise TypeError(f"MXNet NDArrays cannot hold dtype {x.dtype}")
        with self._np_shape():
            return mx.nd.array(x, dtype=x.dtype)

    def to_numpy(self, y):
        with self._np_shape():
            return np.array(y.asnumpy(), copy=True)

    def dtype_name(self, y):
        return np.dtype(y.dtype).name

    def device(self, y):
        return y.context

    def foreign(self, x):
        return np.array(x, copy=True)

    def call(self, op, arrays, params):
        with self._np_shape():
            return super().call(op, arrays, params)

    def _function(self, op):
        """The function under test: arrays in, a tuple of outputs out."""
        import xlinalg

        fn = getattr(xlinalg, op)

        def outputs(*arrays, **params):
            out = fn(*arrays, **params)
            return out if isinstance(out, tuple) else (out,)

        return outputs

    def vjp(self, op, arrays, params, cotangents):
        return self._backward(op, arrays, params, cotangents)

    def accumulate_vjp(self, op, arrays, params, cotangents, initial):
        return self._backward(op, arrays, params, cotangents, initial)

    def partial_vjp(self, op, arrays, params, cotangents):
        return self._backward(op, arrays, params, cotangents)

    def _backward(self, op, arrays, params, cotangents, initial=None):
        """The gradient buffers after ``mx.autograd.backward`` from the outputs whose cotangent
        is not ``None``; with ``initial``, buffers with ``grad_req="add"`` holding it."""
        mx = self._mx()
        with self._np_shape():
            for k, x in enumerate(arrays):
                x.attach_grad(grad_req="write" if initial is None else "add")
                if initial is not None:
                    x.grad[:] = initial[k]
            with mx.autograd.record():
                out = self._function(op)(*arrays, **params)
            used = [(y, g) for y, g in zip(out, cotangents) if g is not None]
            mx.autograd.backward([y for y, _ in used], [g.astype(y.dtype, copy=True) for y, g in used])
            return tuple(x.grad.copy() for x in arrays)

    def synchronize(self):
        self._mx().nd.waitall()

    def jvp(self, op, arrays, tangents, params):
        import xlinalg

        xs = [self.to_numpy(x) for x in arrays]
        ts = [self.to_numpy(t) for t in tangents]
        outputs, out_tangents = xlinalg.jvp(op, xs, ts, **params)
        out_tangents = tuple(out_tangents) if isinstance(outputs, tuple) else (out_tangents,)
        return tuple(self.asarray(t) for t in out_tangents)


BACKEND = MxnetBackend()
