"""Backends: how the conformance suite runs an operator in one array library.

A backend turns NumPy samples into its arrays, calls ``xlinalg``'s operators on them and
differentiates them with its own machinery (``torch.autograd``, ``jax.vjp``, MXNet autograd,
or :func:`xlinalg.vjp`/:func:`xlinalg.jvp` for libraries without autograd). Checks compare
everything in NumPy float64, so a backend only has to convert.

Select one by name (see :data:`BACKENDS`) or as ``module:attr`` for a third-party backend
object with the same methods.
"""

from __future__ import annotations

import importlib

import numpy as np

#: Capabilities a backend may declare; checks that need one it lacks are reported "skipped
#: (capability)" rather than silently omitted.
CAPABILITIES = (
    "vjp",  # reverse mode
    "jvp",  # forward mode
    "second_order",  # derivatives of derivatives
    "vmap",  # a vectorizing map over a batch axis
    "errors",  # raises the documented errors eagerly
)


class Backend:
    """Interface of a conformance backend (and the shared conversions)."""

    name = "abstract"
    capabilities: frozenset = frozenset()

    def available(self) -> str | None:
        """``None`` when usable, else the reason it is not (e.g. a missing import)."""
        return None

    def asarray(self, x: np.ndarray):
        """The backend array holding ``x`` (same dtype)."""
        raise NotImplementedError

    def to_numpy(self, y) -> np.ndarray:
        return np.asarray(y)

    def call(self, op: str, arrays, params) -> tuple:
        """The outputs of ``xlinalg.<op>(*arrays, **params)`` as a tuple."""
        import xlinalg

        out = getattr(xlinalg, op)(*arrays, **params)
        return tuple(out) if isinstance(out, tuple) else (out,)

    def vjp(self, op: str, arrays, params, cotangents) -> tuple:
        """Cotangents of all ``arrays`` for output ``cotangents`` (a tuple, one per output)."""
        raise NotImplementedError

    def jvp(self, op: str, arrays, tangents, params) -> tuple:
        """Output tangents (a tuple) along input ``tangents`` (one per array)."""
        raise NotImplementedError

    def vmap(self, op: str, arrays, params) -> tuple:
        """Outputs of ``op`` mapped over axis 0 of every array with the library's vmap."""
        raise NotImplementedError

    def __repr__(self):
        return f"<conformance backend {self.name}>"


class CoreRulesBackend(Backend):
    """A library without autograd: derivatives from :func:`xlinalg.vjp` / :func:`xlinalg.jvp`."""

    capabilities = frozenset({"vjp", "jvp", "errors"})

    def vjp(self, op, arrays, params, cotangents):
        import xlinalg

        outputs, pullback = xlinalg.vjp(op, *arrays, **params)
        return tuple(pullback(cotangents if isinstance(outputs, tuple) else cotangents[0]))

    def jvp(self, op, arrays, tangents, params):
        import xlinalg

        outputs, out_tangents = xlinalg.jvp(op, arrays, tangents, **params)
        return tuple(out_tangents) if isinstance(outputs, tuple) else (out_tangents,)


class NumpyBackend(CoreRulesBackend):
    name = "numpy"

    def asarray(self, x):
        return np.array(x, copy=True)


class ArrayApiStrictBackend(CoreRulesBackend):
    name = "array_api_strict"

    def available(self):
        try:
            import array_api_strict  # noqa: F401
        except ImportError as exc:
            return f"array_api_strict is not installed ({exc})"
        return None

    def asarray(self, x):
        import array_api_strict as xp

        return xp.asarray(np.array(x, copy=True))

    def to_numpy(self, y):
        return np.asarray(y.__array__() if hasattr(y, "__array__") else y)


#: name -> "module:attribute" of a backend object, loaded on demand.
BACKENDS = {
    "numpy": "conformance.backends:NUMPY",
    "array_api_strict": "conformance.backends:ARRAY_API_STRICT",
    "torch": "conformance.backends.torch:BACKEND",
    "jax": "conformance.backends.jax:BACKEND",
    "jax_jit": "conformance.backends.jax:JIT_BACKEND",
    "mxnet": "conformance.backends.mxnet:BACKEND",
    "cupy": "conformance.backends.cupy:BACKEND",
}

NUMPY = NumpyBackend()
ARRAY_API_STRICT = ArrayApiStrictBackend()


def get_backend(name: str) -> Backend:
    """The backend called ``name``, or the object at ``module:attr``."""
    target = BACKENDS.get(name, name)
    if ":" not in target:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)} (or module:attr)")
    module, attr = target.split(":", 1)
    return getattr(importlib.import_module(module), attr)
