"""The JAX backends: ``xlinalg.<op>`` on JAX arrays (the JAX adapter), derivatives through
JAX's own transformations.

``BACKEND`` (``jax``) runs eagerly; ``JIT_BACKEND`` (``jax_jit``) runs every call, VJP, JVP,
vmap and second derivative inside ``jax.jit``. Both enable ``jax_enable_x64`` (the checks
use float32 and float64).

Capabilities: ``vjp`` (``jax.vjp``: JAX's transpose of the adapter's ``custom_jvp`` rule),
``jvp`` (``jax.jvp``), ``second_order`` (``jax.grad`` of a ``jax.vjp`` pullback: reverse over
reverse), ``vmap`` (``jax.vmap``), and ``errors`` eagerly only: under ``jax.jit`` nothing can
raise on values, so failing batch entries come out NaN (shape, dtype and parameter errors are
still raised, at trace time).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from . import Backend


class JaxBackend(Backend):
    name = "jax"
    capabilities = frozenset({"vjp", "jvp", "second_order", "vmap", "errors"})
    sources = {
        "vjp": "jax.vjp (JAX's transpose of the custom_jvp rule)",
        "jvp": "jax.jvp (the custom_jvp rule)",
        "second_order": "jax.grad of a jax.vjp pullback (reverse over reverse)",
        "vmap": "jax.vmap",
        "errors": "raised eagerly by the adapter",
    }

    def __init__(self, jit: bool = False, name: str | None = None):
        self.jit = jit
        self._cache: dict = {}
        if jit:
            self.capabilities = self.capabilities - {"errors"}
            self.sources = {**self.sources, "errors": "none under jax.jit: failing entries are NaN"}
        if name is not None:
            self.name = name

    def available(self):
        spec = importlib.util.find_spec("jax")
        if spec is None or spec.origin is None:
            return "jax is not installed"
        return None

    @staticmethod
    def _jax():
        import jax

        jax.config.update("jax_enable_x64", True)
        return jax

    # -- arrays -------------------------------------------------------------------------------
    def asarray(self, x):
        jax = self._jax()
        return jax.numpy.array(np.array(x, copy=True), dtype=x.dtype, copy=True)

    def to_numpy(self, y):
        return np.array(np.asarray(y), copy=True)

    def dtype_name(self, y):
        return str(y.dtype)

    def device(self, y):
        return frozenset(y.devices())

    def foreign(self, x):
        """An array_api_strict array (or a torch tensor): JAX functions take NumPy arrays as
        their own, so a NumPy array is not foreign to the JAX adapter."""
        try:
            import array_api_strict

            return array_api_strict.asarray(np.array(x, copy=True))
        except ImportError:
            pass
        try:
            import torch

            return torch.tensor(np.array(x, copy=True))
        except ImportError:
            return None

    # -- functions ----------------------------------------------------------------------------
    def _fn(self, op, params):
        import xlinalg

        f = getattr(xlinalg, op)  # dispatches JAX arrays (and tracers) to the adapter

        def fn(*xs):
            out = f(*xs, **params)
            return tuple(out) if isinstance(out, tuple) else (out,)

        return fn

    def _compiled(self, kind, op, params, make):
        """``make()`` (a function of JAX arrays), jitted and cached for the jit backend."""
        if not self.jit:
            return make()
        key = (kind, op, tuple(sorted(params.items())))
        fn = self._cache.get(key)
        if fn is None:
            fn = self._cache[key] = self._jax().jit(make())
        return fn

    def call(self, op, arrays, params):
        jax = self._jax()
        if self.jit and not all(isinstance(x, jax.Array) for x in arrays):
            # another library's array cannot be a jit argument: close over it, so that the
            # adapter (not jax.jit) sees and rejects it
            fn = self._fn(op, params)
            held = {i: x for i, x in enumerate(arrays) if not isinstance(x, jax.Array)}
            free = [x for x in arrays if isinstance(x, jax.Array)]

            def partial(*xs):
                it = iter(xs)
                return fn(*(held[i] if i in held else next(it) for i in range(len(arrays))))

            return jax.jit(partial)(*free)
        return self._compiled("call", op, params, lambda: self._fn(op, params))(*arrays)

    def vjp(self, op, arrays, params, cotangents):
        jax = self._jax()

        def make():
            fn = self._fn(op, params)

            def vjp(xs, cts):
                _, pullback = jax.vjp(fn, *xs)
                return pullback(tuple(cts))

            return vjp

        return tuple(self._compiled("vjp", op, params, make)(tuple(arrays), tuple(cotangents)))

    def jvp(self, op, arrays, tangents, params):
        jax = self._jax()

        def make():
            fn = self._fn(op, params)
            return lambda xs, ts: jax.jvp(fn, tuple(xs), tuple(ts))[1]

        return tuple(self._compiled("jvp", op, params, make)(tuple(arrays), tuple(tangents)))

    def vmap(self, op, arrays, params):
        jax = self._jax()
        return tuple(self._compiled("vmap", op, params, lambda: jax.vmap(self._fn(op, params)))(*arrays))

    def grad_of_vjp(self, op, arrays, params, cotangents, weights):
        jax = self._jax()

        def make():
            fn = self._fn(op, params)

            def grad_of_vjp(xs, cts, ws):
                def inner(xs):
                    _, pullback = jax.vjp(fn, *xs)
                    return sum(jax.numpy.sum(g * w) for g, w in zip(pullback(tuple(cts)), ws))

                return jax.grad(inner)(tuple(xs))

            return grad_of_vjp

        return tuple(self._compiled("grad_of_vjp", op, params, make)(tuple(arrays), tuple(cotangents), tuple(weights)))


BACKEND = JaxBackend()
JIT_BACKEND = JaxBackend(jit=True, name="jax_jit")
