"""The JAX backends: ``xlinalg.<op>`` on JAX arrays (the JAX adapter), derivatives through
JAX's own transformations.

``BACKEND`` (``jax``) runs eagerly; ``JIT_BACKEND`` (``jax_jit``) runs every call, VJP, JVP,
vmap and second derivative inside ``jax.jit``. Both enable ``jax_enable_x64`` (the checks
use float32 and float64).

Capabilities: ``vjp`` (``jax.vjp``: JAX's transpose of the adapter's ``custom_jvp`` rule),
``jvp`` (``jax.jvp``), ``second_order`` (``jax.grad`` of a ``jax.vjp`` pullback: reverse over
reverse), ``vmap`` (``jax.vmap``), ``partial_vjp`` (``jax.vjp`` of the function restricted to
the outputs the loss uses), and ``errors`` eagerly only: under ``jax.jit`` nothing can
raise on values, so failing batch entries come out NaN (shape, dtype and parameter errors are
still raised, at trace time). Not declared: ``accumulate`` (JAX returns gradients, it has no
buffers to accumulate them in).

Compiled programs. The suite calls each operator on hundreds of input shapes, and compiling
(XLA) dominates: a separate ``jax.jit`` function for each call, JVP and VJP of each sample
compiles thousands of tiny programs. So each compiled function evaluates one kind of function
for *every* parameter combination of the operator's registry grid that accepts the same input
shapes and dtypes, in one ``jax.jit`` program compiled once and cached (a "bundle"):
``first`` — the call, the JVP and the VJP; ``grad_of_vjp``; ``vmap``. A request for one
combination runs the whole program, with its own arrays in its slot (the inputs and tangents
are shared by the combinations; the other slots get zero cotangents) and returns its slot. Each
slot is exactly the function a single-combination ``jax.jit`` would trace (``fn(*xs)``,
``jax.jvp``, the ``jax.vjp`` pullback, ...) of the same adapter function, so every result is
computed as before, only compiled together with its neighbours. Anything else — parameters
outside the grid (the ``errors`` check's bad parameters), shapes a combination rejects at trace
time, arrays of other libraries — goes through a plain ``jax.jit`` of the single function.

The fuzzer (:mod:`xlinalg_conformance.fuzz`) draws mostly new input signatures and free scalar
parameters, where a grid bundle would compile many combinations for one call: its variant
(:meth:`JaxBackend.for_fuzzing`) bundles only the requested combination, and it calls
:meth:`JaxBackend.release` every thousand cases to drop every compiled program.

The eager backend (``jax``) runs ``call`` eagerly, always: the ``forward``, ``batching``,
``dtype``, ``no_mutation``, ``cross`` and ``errors`` checks and every finite-difference point
of ``fd_grad`` and ``degenerate`` see the adapter as a user calling it on concrete arrays does
— eager validation, eager ``LinAlgError``, outputs computed operation by operation. Its
``vjp``, ``jvp``, ``grad_of_vjp`` and ``vmap`` run through the same compiled programs as
``jax_jit`` (one cache serves both backends, so running both compiles each program once).
What eager differentiation adds over compiled differentiation is only that the primal values
are concrete inside ``jax.jvp``/``jax.vjp``, where the forward rule can raise; that is tested
for every operator and grid combination by ``tests/jax_adapter/test_grads.py`` (eager
``check_grads`` to second order in both modes, eager ``jax.jvp``/``jax.vjp`` against the core
rules) and ``tests/jax_adapter/test_adapter.py`` (``LinAlgError`` from eager ``jax.grad``,
``jax.jvp``, ``jax.vjp``). Differentiating eagerly here would compile every primitive of every
rule at every sample shape one by one, which made this backend take minutes.
"""

from __future__ import annotations

import copy
import importlib.util

import numpy as np

from . import Backend

#: XLA options of every program the suite compiles: the cheapest code generation. The programs
#: are small and run once or a few times, so compiling is most of the time (a full run compiles
#: some 430): LLVM's expensive passes off, LLVM at optimization level 0 (XLA's own HLO passes
#: are untouched), and XLA's older loop emitters for fusions instead of its MLIR fusion emitters.
#: Measured on one full ``jax`` run: compiling 54 s -> 27 s, the run 103 s -> 78 s. They compute
#: the same operations, rounded differently in the last bits: the worst ratio of 9 of the 252
#: cells moves (e.g. gelqf adjoint 0.021 -> 0.014, det fd_grad 0.039107 -> 0.039106), no verdict
#: is near its tolerance. ``JaxBackend(compiler_options={})`` compiles as a user's ``jax.jit``.
COMPILER_OPTIONS = {
    "xla_llvm_disable_expensive_passes": True,
    "xla_backend_optimization_level": 0,
    "xla_cpu_use_fusion_emitters": False,
}

#: jitted single functions, by (kind, op, params), and bundles, by (kind, op, input avals)
_COMPILED: dict = {}
_BUNDLES: dict = {}
_ZEROS: dict = {}


def _params_key(params) -> tuple:
    """A hashable key for a parameter dict that tells ``True`` from ``1`` and ``1`` from ``1.0``."""
    return tuple(sorted((k, type(v).__name__, v) for k, v in params.items()))


def _aval(x) -> tuple:
    return tuple(x.shape), np.dtype(x.dtype)


class _Bundle:
    """The compiled programs of one kind for ``op`` at one input signature: one program per
    output signature, a ``lax.switch`` over the grid combinations that have it, each branch
    evaluating the functions named in ``parts`` (see the module docstring)."""

    def __init__(self, backend, parts, op, in_avals, members):
        """``members``: (params, output avals) of each grid combination that takes ``in_avals``."""
        jax = backend._jax()
        groups: dict = {}
        for p, out_avals in members:
            groups.setdefault(out_avals, []).append(p)
        self.parts, self.in_avals = parts, in_avals
        self.slots = {}  # params key -> (program, branch, output avals)
        for out_avals, ps in groups.items():
            branches = [self._branch([backend._functions(op, p)[name] for name in parts]) for p in ps]
            program = backend._jit(lambda i, xs, ts, cts, ws, branches=branches: jax.lax.switch(i, branches, xs, ts, cts, ws))
            for i, p in enumerate(ps):
                self.slots[_params_key(p)] = (program, np.int32(i), out_avals)

    def _branch(self, fns):
        def branch(xs, ts, cts, ws):
            return tuple(_ARGS[name](f, xs, ts, cts, ws) for name, f in zip(self.parts, fns))

        return branch

    def run(self, part, key, xs, ts=None, cts=None, ws=None):
        """``part`` of the combination ``key`` at ``xs`` (tangents ``ts``, cotangents ``cts``,
        weights ``ws`` as that function takes them; zeros for the others), or ``None`` when an
        argument does not have the signature the program was made for."""
        program, i, out_avals = self.slots[key]
        if any(a is not None and tuple(_aval(x) for x in a) != avals
               for a, avals in ((ts, self.in_avals), (cts, out_avals), (ws, self.in_avals))):
            return None
        z_in, z_out = _zeros(self.in_avals), _zeros(out_avals)
        out = program(i, tuple(xs), z_in if ts is None else tuple(ts), z_out if cts is None else tuple(cts),
                      z_in if ws is None else tuple(ws))
        return out[self.parts.index(part)]


#: how each function takes the program's arguments
_ARGS = {
    "call": lambda f, xs, ts, cts, ws: f(*xs),
    "jvp": lambda f, xs, ts, cts, ws: f(xs, ts),
    "vjp": lambda f, xs, ts, cts, ws: f(xs, cts),
    "grad_of_vjp": lambda f, xs, ts, cts, ws: f(xs, cts, ws),
    "vmap": lambda f, xs, ts, cts, ws: f(*xs),
}


def _zeros(avals) -> tuple:
    """Zero JAX arrays of these (shape, dtype) pairs (made once)."""
    z = _ZEROS.get(avals)
    if z is None:
        import jax

        z = _ZEROS[avals] = tuple(jax.device_put(np.zeros(s, d)) for s, d in avals)
    return z


class JaxBackend(Backend):
    name = "jax"
    capabilities = frozenset({"vjp", "jvp", "second_order", "vmap", "errors", "partial_vjp"})
    sources = {
        "partial_vjp": "jax.vjp of the function restricted to the used outputs",
        "vjp": "jax.vjp (JAX's transpose of the custom_jvp rule)",
        "jvp": "jax.jvp (the custom_jvp rule)",
        "second_order": "jax.grad of a jax.vjp pullback (reverse over reverse)",
        "vmap": "jax.vmap",
        "errors": "raised eagerly by the adapter",
    }

    def __init__(self, jit: bool = False, name: str | None = None, bundle: bool = True, compiler_options=None):
        self.jit = jit
        self.bundle = bundle  # compile per operator and input signature (module docstring)
        self.grid = True  # a bundle holds the whole grid (False: only the requested combination)
        self.compiler_options = COMPILER_OPTIONS if compiler_options is None else compiler_options
        # compiled functions, shared by every JaxBackend: they depend on nothing but (op, params)
        self._cache = _COMPILED
        self._bundles = _BUNDLES
        if jit:
            self.capabilities = self.capabilities - {"errors"}
            self.sources = {**self.sources, "errors": "none under jax.jit: failing entries are NaN"}
        else:
            self.sources = {**self.sources,
                            **{c: self.sources[c] + ", under jax.jit" for c in ("vjp", "jvp", "second_order", "vmap")}}
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

    def for_fuzzing(self):
        """This backend with bundles of one parameter combination: fuzzing draws mostly new
        input signatures and free scalar parameters, so the rest of the grid would be compiled
        for nothing."""
        fuzzing = copy.copy(self)
        fuzzing.grid = False
        return fuzzing

    def release(self):
        """Drop every compiled program. XLA's CPU JIT maps each loaded program's code into the
        process and the kernel allows a process only so many mappings (``vm.max_map_count``):
        a fuzzing run that kept every program ended after several thousand in "LLVM ERROR:
        Unable to allocate section memory". ``jax.clear_caches()`` releases them (dropping
        the jitted functions alone does not: JAX's own caches keep their executables)."""
        jax = self._jax()
        self._cache.clear()
        self._bundles.clear()
        _ZEROS.clear()
        jax.clear_caches()

    def _jit(self, fn):
        return self._jax().jit(fn, compiler_options=self.compiler_options)

    # -- arrays -------------------------------------------------------------------------------
    def asarray(self, x):
        return self._jax().device_put(np.array(x, copy=True))  # a transfer: nothing to compile

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

    def _functions(self, op, params) -> dict:
        """The functions of JAX arrays the capabilities evaluate, for one (op, params):
        ``call(*xs)``, ``jvp(xs, ts)``, ``vjp(xs, cts)``, ``grad_of_vjp(xs, cts, ws)``,
        ``vmap(*xs)`` (not jitted)."""
        jax = self._jax()
        fn = self._fn(op, params)

        def call(*xs):
            return fn(*xs)

        def jvp(xs, ts):
            return jax.jvp(fn, tuple(xs), tuple(ts))[1]

        def vjp(xs, cts):
            _, pullback = jax.vjp(fn, *xs)
            return pullback(tuple(cts))

        def grad_of_vjp(xs, cts, ws):
            def inner(xs):
                _, pullback = jax.vjp(fn, *xs)
                return sum(jax.numpy.sum(g * w) for g, w in zip(pullback(tuple(cts)), ws))

            return jax.grad(inner)(tuple(xs))

        return {"call": call, "jvp": jvp, "vjp": vjp, "grad_of_vjp": grad_of_vjp, "vmap": jax.vmap(fn)}

    def _compiled(self, kind, op, params):
        """The single function ``kind`` of (op, params), jitted and cached."""
        key = (kind, op, _params_key(params))
        fn = self._cache.get(key)
        if fn is None:
            fn = self._cache[key] = self._jit(self._functions(op, params)[kind])
        return fn

    def _parts(self, kind, arrays) -> tuple:
        """The functions a program of ``kind`` evaluates at these arrays: ``first`` holds the
        call, the JVP and the VJP, and, in float64 (where ``second_order`` differentiates
        twice), the second derivative too."""
        if kind != "first":
            return (kind,)
        second = all(np.dtype(x.dtype) == np.float64 for x in arrays)
        return ("call", "jvp", "vjp", "grad_of_vjp") if second else ("call", "jvp", "vjp")

    def _run(self, kind, part, op, arrays, params, **args):
        """``part`` (a function of ``_functions``) of (op, params) from the program of
        ``kind`` for the shapes and dtypes of ``arrays``; ``None`` where a single-function
        program must be used (see the module docstring)."""
        jax = self._jax()
        if not self.bundle or not all(isinstance(x, jax.Array) for x in arrays):
            return None
        k = _params_key(params)
        key = (kind, op, tuple(_aval(x) for x in arrays)) + (() if self.grid else (k,))
        b = self._bundles.get(key, False)
        if b is False:
            b = self._bundles[key] = self._make_bundle(self._parts(kind, arrays), op, arrays,
                                                       None if self.grid else [params])
        if b is None or k not in b.slots or part not in b.parts:
            return None
        try:
            return b.run(part, k, arrays, **args)
        except Exception:  # the program does not trace or compile: single functions from now on
            self._bundles[key] = None
            return None

    def _make_bundle(self, parts, op, arrays, combinations=None):
        """The programs of every grid combination of ``op`` (or of each of ``combinations``)
        that accepts these arrays' shapes and dtypes (by the registry's signature check, which
        the adapter applies first; for ``vmap``, by tracing), or ``None``."""
        from xlinalg.core import apply, operators

        jax = self._jax()
        o = operators()[op]
        members = []
        for p in o.param_grid() if combinations is None else combinations:
            try:  # the others raise at trace time
                if parts == ("vmap",):
                    outs = jax.eval_shape(self._functions(op, p)["vmap"], *arrays)
                    avals = tuple(_aval(y) for y in outs)
                else:
                    _, shapes, dtype = apply.check_signature(o, [x.shape for x in arrays], [str(x.dtype) for x in arrays], p)
                    avals = tuple((tuple(s), np.dtype(dtype)) for s in shapes)
            except (ValueError, TypeError):
                continue
            members.append((p, avals))
        if not members:
            return None
        return _Bundle(self, parts, op, tuple(_aval(x) for x in arrays), members)

    def call(self, op, arrays, params):
        jax = self._jax()
        if not self.jit:
            return self._fn(op, params)(*arrays)
        if not all(isinstance(x, jax.Array) for x in arrays):
            # another library's array cannot be a jit argument: close over it, so that the
            # adapter (not jax.jit) sees and rejects it
            fn = self._fn(op, params)
            held = {i: x for i, x in enumerate(arrays) if not isinstance(x, jax.Array)}
            free = [x for x in arrays if isinstance(x, jax.Array)]

            def partial(*xs):
                it = iter(xs)
                return fn(*(held[i] if i in held else next(it) for i in range(len(arrays))))

            return self._jit(partial)(*free)
        out = self._run("first", "call", op, arrays, params)
        return tuple(out) if out is not None else self._compiled("call", op, params)(*arrays)

    def vjp(self, op, arrays, params, cotangents):
        out = self._run("first", "vjp", op, arrays, params, cts=cotangents)
        if out is None:
            out = self._compiled("vjp", op, params)(tuple(arrays), tuple(cotangents))
        return tuple(out)

    def jvp(self, op, arrays, tangents, params):
        out = self._run("first", "jvp", op, arrays, params, ts=tangents)
        if out is None:
            out = self._compiled("jvp", op, params)(tuple(arrays), tuple(tangents))
        return tuple(out)

    def vmap(self, op, arrays, params):
        out = self._run("vmap", "vmap", op, arrays, params)
        if out is None:
            out = self._compiled("vmap", op, params)(*arrays)
        return tuple(out)

    def partial_vjp(self, op, arrays, params, cotangents):
        used = tuple(g is not None for g in cotangents)
        key = ("partial_vjp", op, _params_key(params), used)
        fn = self._cache.get(key)
        if fn is None:
            jax, f = self._jax(), self._fn(op, params)

            def restricted(*xs):
                return tuple(y for y, u in zip(f(*xs), used) if u)

            def pullback(xs, cts):
                return jax.vjp(restricted, *xs)[1](tuple(cts))

            fn = self._cache[key] = self._jit(pullback)
        return tuple(fn(tuple(arrays), tuple(g for g in cotangents if g is not None)))

    def grad_of_vjp(self, op, arrays, params, cotangents, weights):
        args = dict(cts=cotangents, ws=weights)
        out = self._run("first", "grad_of_vjp", op, arrays, params, **args)
        if out is None:
            out = self._run("grad_of_vjp", "grad_of_vjp", op, arrays, params, **args)
        if out is None:
            out = self._compiled("grad_of_vjp", op, params)(tuple(arrays), tuple(cotangents), tuple(weights))
        return tuple(out)


BACKEND = JaxBackend()
JIT_BACKEND = JaxBackend(jit=True, name="jax_jit")
