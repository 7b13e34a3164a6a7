"""Backends: how the conformance suite runs an operator in one array library.

A backend turns NumPy samples into its arrays, calls ``xlinalg``'s operators on them and
differentiates them with its own machinery (``torch.autograd``, ``jax.vjp``, MXNet autograd,
or :func:`xlinalg.vjp`/:func:`xlinalg.jvp` for libraries without autograd). Checks compare
everything in NumPy float64, so a backend only has to convert.

Select one by name (see :data:`BACKENDS`) or as ``module:attr`` for a third-party backend
object with the same methods.

Required methods: :meth:`Backend.asarray`, :meth:`Backend.to_numpy`, :meth:`Backend.call`
and, for each declared capability, :meth:`Backend.vjp` (``"vjp"``), :meth:`Backend.jvp`
(``"jvp"``), :meth:`Backend.vmap` (``"vmap"``), :meth:`Backend.grad_of_vjp`
(``"second_order"``), :meth:`Backend.accumulate_vjp` (``"accumulate"``),
:meth:`Backend.partial_vjp` (``"partial_vjp"``). Optional: :meth:`Backend.dtype_name`,
:meth:`Backend.device`, :meth:`Backend.foreign`, :meth:`Backend.synchronize` (asynchronous
libraries).
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
    "errors",  # raises the documented errors eagerly (else failing entries must come out NaN)
    "accumulate",  # gradients added into existing buffers (torch's .grad, MXNet's grad_req="add")
    "partial_vjp",  # the VJP of a loss that uses only some of the outputs
)


class Backend:
    """Interface of a conformance backend (and the shared conversions)."""

    name = "abstract"
    capabilities: frozenset = frozenset()
    #: where each capability comes from, e.g. ``{"vjp": "torch.autograd.grad"}`` (in the JSON report)
    sources: dict = {}

    # -- declarations (xlinalg_conformance.declarations; the defaults declare nothing) -------
    #: ``{operator: reason}``: operators the library lacks (every check a declared skip)
    unsupported: dict = {}
    #: an :class:`~xlinalg_conformance.declarations.ErrorContract`, or ``None`` for xlinalg's
    error_contract = None
    #: representation of symmetric-argument gradients (``declarations.SYMMETRIC_GRADIENTS``)
    symmetric_gradient: str = "symmetric"
    #: sample kinds the library does not support (keys of ``declarations.RESTRICTIONS``)
    sample_restrictions: frozenset = frozenset()
    #: path of a known-failures file (``xlinalg_conformance.known_failures``), or ``None``
    known_failures = None
    #: run every operator in its own process (a crash fails that operator only)
    isolate: bool = False

    def available(self) -> str | None:
        """``None`` when usable, else the reason it is not (e.g. a missing import)."""
        return None

    def asarray(self, x: np.ndarray):
        """The backend array holding ``x`` (same dtype; a fresh copy). Raise ``TypeError``
        for a dtype the library cannot hold (the dtype error cases are then skipped)."""
        raise NotImplementedError

    def to_numpy(self, y) -> np.ndarray:
        """A NumPy copy of the backend array ``y`` (same dtype)."""
        return np.array(np.asarray(y), copy=True)

    def dtype_name(self, y) -> str:
        """``"float32"``/``"float64"``/... of the backend array ``y``, without converting it."""
        name = str(getattr(y, "dtype", type(y).__name__))
        return name.rsplit(".", 1)[-1].replace("'>", "").replace("torch.", "")

    def device(self, y):
        """The device of ``y`` (compared between inputs and outputs), or ``None``."""
        return None

    def foreign(self, x: np.ndarray):
        """An array of a *different* library holding ``x``, for the mixed-library error
        check; ``None`` when the backend cannot make one (the case is then skipped)."""
        return None

    def sample_restriction(self, sample) -> str | None:
        """Why ``sample`` is excluded by :attr:`sample_restrictions`, or ``None``; override
        for finer rules."""
        from ..declarations import restriction_of

        return restriction_of(self.sample_restrictions, sample, self.name)

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

    def grad_of_vjp(self, op: str, arrays, params, cotangents, weights) -> tuple:
        """Reverse over reverse (capability ``"second_order"``): the gradient with respect to
        every array of ``⟨vjp(arrays)(cotangents), weights⟩`` (``weights``: one per array),
        with the cotangents held fixed."""
        raise NotImplementedError

    def accumulate_vjp(self, op: str, arrays, params, cotangents, initial) -> tuple:
        """Capability ``"accumulate"``: the gradient buffers of ``arrays`` after they held
        ``initial`` (one array per argument) and a backward pass with output ``cotangents``
        ran, i.e. what the framework's accumulating gradients hold (``initial + vjp``)."""
        raise NotImplementedError

    def partial_vjp(self, op: str, arrays, params, cotangents) -> tuple:
        """Capability ``"partial_vjp"``: like :meth:`vjp`, but ``None`` in ``cotangents`` marks
        an output the loss does not use; differentiate only the others, as a user would
        (backward from those outputs alone), never by passing zeros for the unused ones."""
        raise NotImplementedError

    def for_fuzzing(self) -> Backend:
        """The backend the fuzzer runs: this one, or a variant tuned for calls that rarely
        repeat an input signature (e.g. compiling less per signature)."""
        return self

    def release(self) -> None:
        """Free what the backend keeps from earlier calls (e.g. compiled programs); the fuzzer
        calls it every :data:`~xlinalg_conformance.fuzz.RELEASE_EVERY` cases. Nothing by default."""

    def synchronize(self) -> None:
        """Wait until every operation issued so far has finished, raising any error one of
        them produced. The checks call it after each operation so that an asynchronous
        library's deferred error is charged to the operation that caused it; a library that
        computes (and raises) at the call has nothing to do."""

    def __repr__(self):
        return f"<conformance backend {self.name}>"


class CoreRulesBackend(Backend):
    """A library without autograd: derivatives from :func:`xlinalg.vjp` / :func:`xlinalg.jvp`.

    ``operators`` (name -> :class:`xlinalg.core.Operator`) replaces registered operators by
    other specs, run through the same generic pipeline (:mod:`xlinalg.core.apply`); operators
    not named there run as registered, through the public functions.
    """

    capabilities = frozenset({"vjp", "jvp", "errors", "partial_vjp"})
    sources = {"vjp": "xlinalg.vjp (the core VJP rules)", "jvp": "xlinalg.jvp (the core JVP rules)",
               "errors": "raised eagerly by the core",
               "partial_vjp": "xlinalg.vjp with None for the unused outputs' cotangents"}

    def __init__(self, operators=None, name=None):
        self.operators = dict(operators or {})
        if name is not None:
            self.name = name

    def _spec(self, op):
        return self.operators.get(op, op)

    def call(self, op, arrays, params):
        if op not in self.operators:
            return super().call(op, arrays, params)
        from xlinalg import api

        spec = self.operators[op]
        out = api.call(spec, tuple(arrays), params)
        return tuple(out) if spec.multiple_outputs else (out,)

    def vjp(self, op, arrays, params, cotangents):
        import xlinalg

        outputs, pullback = xlinalg.vjp(self._spec(op), *arrays, **params)
        return tuple(pullback(tuple(cotangents) if isinstance(outputs, tuple) else cotangents[0]))

    def partial_vjp(self, op, arrays, params, cotangents):
        return self.vjp(op, arrays, params, cotangents)  # the pullback takes None as "unused"

    def jvp(self, op, arrays, tangents, params):
        import xlinalg

        outputs, out_tangents = xlinalg.jvp(self._spec(op), arrays, tangents, **params)
        return tuple(out_tangents) if isinstance(outputs, tuple) else (out_tangents,)


class NumpyBackend(CoreRulesBackend):
    name = "numpy"

    def asarray(self, x):
        return np.array(x, copy=True)

    def dtype_name(self, y):
        return str(np.asarray(y).dtype)

    def foreign(self, x):
        try:
            import array_api_strict
        except ImportError:
            return None
        return array_api_strict.asarray(np.array(x, copy=True))


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
        return np.array(np.asarray(y), copy=True)

    def dtype_name(self, y):
        return str(y.dtype).rsplit(".", 1)[-1]

    def device(self, y):
        return y.device

    def foreign(self, x):
        return np.array(x, copy=True)


#: name -> "module:attribute" of a backend object, loaded on demand.
BACKENDS = {
    "numpy": f"{__name__}:NUMPY",
    "array_api_strict": f"{__name__}:ARRAY_API_STRICT",
    "torch": f"{__name__}.torch:BACKEND",
    "jax": f"{__name__}.jax:BACKEND",
    "jax_jit": f"{__name__}.jax:JIT_BACKEND",
    "mxnet": f"{__name__}.mxnet:BACKEND",
    "cupy": f"{__name__}.cupy:BACKEND",
    # the frameworks' own functions in place of xlinalg's operators (docs/native-conformance.md)
    "torch-native": f"{__name__}.torch_native:BACKEND",
    "jax-native": f"{__name__}.jax_native:BACKEND",
    "jax-native-jit": f"{__name__}.jax_native:JIT_BACKEND",
    "mxnet-native": f"{__name__}.mxnet_native:BACKEND",
}

NUMPY = NumpyBackend()
ARRAY_API_STRICT = ArrayApiStrictBackend()


def get_backend(name) -> Backend:
    """The backend called ``name``, the object at ``module:attr``, or ``name`` itself when it
    already is a backend object."""
    if not isinstance(name, str):
        return name
    target = BACKENDS.get(name, name)
    if ":" not in target:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)} (or module:attr)")
    module, attr = target.split(":", 1)
    return getattr(importlib.import_module(module), attr)


def backend_for_command(parser, name):
    """The backend ``name`` for a command line: an unknown or unloadable name is ``parser``'s
    usage error; ``None`` (with the reason on stderr) when the backend cannot run here."""
    import sys

    try:
        backend = get_backend(name)
    except (ValueError, ImportError, AttributeError) as exc:
        parser.error(f"cannot load backend {name!r}: {exc}")
    why = backend.available()
    if why:
        print(f"backend {backend.name} is not available: {why}", file=sys.stderr)
        return None
    return backend
