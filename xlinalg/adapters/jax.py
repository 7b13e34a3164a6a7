"""The JAX adapter: every operator becomes a ``jax.custom_jvp`` function made from its spec.

One generic factory, :func:`bind`, serves every operator. The primal is the core's forward
rule on the JAX kernel table (:mod:`xlinalg.kernels.jax`); the JVP is the core's JVP rule
(:func:`xlinalg.core.apply.jvp`), whose tangent path holds only linear, transposable JAX
operations (matmul, triangular solves against primal factors, masks, gathers). JAX
linearizes and transposes it for reverse mode, so ``grad``/``vjp``/``jacrev`` use the same
rules as ``jvp``/``jacfwd``; the JVP rule evaluates the outputs through the bound function
itself, so derivatives of any order keep using xlinalg's rules; ``jit`` and ``vmap`` trace
through both. The contract this needs — every JVP rule linear in the tangents in a way JAX can
transpose, its transpose equal to the VJP rule — is tested for every operator. An operator
whose JVP cannot be written that way declares ``jax_reverse="vjp"`` and gets a
``jax.custom_vjp`` over the core VJP rule instead, giving up forward mode (``jax.jvp``,
``jax.hessian``); none of the built-in operators needs it.

Parameters (``lower``, ``alpha``, ...) are static Python values: each (operator, parameters)
pair gets its own ``custom_jvp`` function, made once and cached.

Failures: with concrete inputs (eagerly, including eager ``grad``/``jvp``, whose primals are
concrete) the forward rule raises :class:`xlinalg.LinAlgError` naming the batch index; under
``jit`` or ``vmap`` the values are tracers, nothing can raise, and the failing batch entries
come out NaN (or inf) while the others are unaffected.

The compiled layer (XLA FFI, :mod:`xlinalg.lapack.jax_ffi` on the CPU,
:mod:`xlinalg.cuda.jax_ffi` on CUDA GPUs, one target name per entry for both): for a
registered operator with FFI entries, the primal and the JVP rule go through three generic
primitives, parametrized by the operator and its parameters, whose lowerings choose per
platform. ``forward_p`` (the primal) lowers to the FFI forward on the CPU, and on CUDA where the
operator has GPU entries (:data:`xlinalg.cuda.rules.RULES`) and its shapes
:func:`~xlinalg.cuda.rules.fits`; elsewhere to the composed forward rule. The JVP rule returns
``tangent_p`` of the primals, outputs and tangents, which evaluates and lowers to the core JVP
rule, so forward mode is unchanged; its transpose is ``vjp_p``, lowered like ``forward_p`` (the
FFI VJP entry or the core VJP rule), whose own JVP is that of the core VJP rule, so ``hessian``
and ``grad`` of ``grad`` differentiate the composed rules. Operators whose reverse reads what the
forward computed (:func:`xlinalg.lapack.jax_ffi.saves`: potrs, det, slogdet) take, in the JVP
rule, ``forward_saving_p`` instead: the outputs and the residuals (on the CPU the FFI forward that
keeps them; elsewhere zeros that nothing reads), which ``tangent_p`` and ``vjp_p`` carry as
further non-linear operands to the VJP entry that reads them; its own JVP rule gives the
outputs' tangents through ``tangent_p`` and the residuals' as zero (their composed rules do not
read them). All four are batched by binding them
again with a leading batch axis (every rule is batched over leading axes).

Where they run: traced (``jit``, ``vmap``) the platform is the one the program is lowered for,
whatever JAX's default backend is. Eagerly, concrete CPU arrays run the CPU entries on NumPy
views of their memory (the same failure policy: the status raises, naming the batch index);
concrete arrays on another device run the primitives in a jitted call, lowered for that device's
platform (the FFI entries on CUDA where they apply), never through host memory; its status
raises as on the CPU. Operators without FFI entries and ``XLINALG_KERNELS=python`` run the
composed rules everywhere.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import array_api_compat
import jax
import jax.numpy as jnp
import numpy as np

from ..core import apply
from ..core.docs import bind_metadata
from ..core.memo import memo
from ..core.operator import Operator
from ..cuda import jax_ffi as cuda_ffi
from ..kernels.jax import ffi_kernels, placement
from ..lapack import jax_ffi

_functions: dict[tuple, object] = {}


def is_array(x) -> bool:
    """Whether ``x`` is a JAX array (concrete or a tracer)."""
    return isinstance(x, jax.Array)


def differentiable(op: Operator, params: dict):
    """The differentiable JAX function of ``op`` with fixed (resolved) ``params``: arrays in, a
    tuple of outputs out. Cached per (operator object, parameters)."""
    key = (op, tuple(sorted(params.items())))
    fn = _functions.get(key)
    if fn is None:
        make = _make_vjp if op.jax_reverse == "vjp" else _make
        fn = _functions[key] = make(op, dict(params))
    return fn


def uses_ffi(op: Operator) -> bool:
    """Whether ``op`` runs through the compiled layer's primitives: the registered operator has
    FFI entries, the layer is on and JAX has the (semi-internal) APIs the primitives below need.
    Which platform runs which rules is decided by the primitives' lowerings."""
    return tangent_p is not None and jax_ffi.entry(op) is not None


def _primal(op: Operator, params: dict):
    key = tuple(sorted(params.items()))

    def primal(*arrays):
        arrays = tuple(jnp.asarray(x) for x in arrays)
        call = apply.prepare(op, arrays, params, xp=jnp)
        where = placement(call.inputs)
        if uses_ffi(op):
            if where == "traced":  # the rules of the platform the program is lowered for
                return tuple(forward_p.bind(*call.inputs, op=op, params=key, status=False))
            if where == "device":
                return _device_forward(call, key)
        if where == "cpu":  # concrete CPU arrays: the compiled rule (where there is one) on NumPy views
            call = replace(call, kern=ffi_kernels())
        return apply.forward(call)  # raises LinAlgError only for concrete values

    primal.__name__ = primal.__qualname__ = op.name
    return primal


def _device_forward(call: apply.Call, key: tuple) -> tuple:
    """The forward of concrete arrays on a device other than the CPU: ``forward_p`` jitted,
    lowered for that device's platform; a non-zero status raises as the CPU entries' does."""
    status = call.op.failure is not None
    outputs = _jitted(forward_p, call.op, key, (("status", status),))(*call.inputs)
    if status:
        *outputs, code = outputs
        bad = np.asarray(code).reshape(-1) != 0
        if bad.any():
            apply.raise_failure(call, bad)
    return tuple(outputs)


def _make(op: Operator, params: dict):
    """A ``jax.custom_jvp`` whose rule is the core JVP; JAX transposes it for reverse mode
    (through ``tangent_p`` and ``vjp_p`` where the compiled layer runs)."""
    fn = jax.custom_jvp(_primal(op, params))
    key = tuple(sorted(params.items()))

    def fn_jvp(primals, tangents):
        primals = tuple(jnp.asarray(x) for x in primals)
        tangents = tuple(jnp.asarray(t) for t in tangents)
        call = apply.prepare(op, primals, params, xp=jnp)
        if uses_ffi(op) and jax_ffi.saves(op) and placement(call.inputs) != "device":
            # the forward that keeps residuals for the reverse (differentiated again, its JVP rule
            # does what this branch does: _forward_saving_jvp)
            kept = forward_saving_p.bind(*call.inputs, op=op, params=key)
            outputs, residuals = tuple(kept[: len(op.outputs)]), tuple(kept[len(op.outputs) :])
            saved = dict(op=op, params=key, saved=len(residuals))
            return outputs, tuple(tangent_p.bind(*primals, *outputs, *residuals, *tangents, **saved))
        outputs = fn(*primals)  # through fn, so higher orders use these rules again
        if uses_ffi(op):
            return outputs, tuple(tangent_p.bind(*primals, *outputs, *tangents, op=op, params=key, saved=0))
        return outputs, apply.jvp(call, outputs, tangents)

    fn.defjvp(fn_jvp)
    return fn


# ---- the primitives of the compiled layer -----------------------------------------------------
# Operands: the inputs with their batch axes broadcast (forward_p, forward_saving_p); the primals
# as passed (before broadcasting), the outputs, ``saved`` residuals of forward_saving_p, then the
# tangents (tangent_p) or the output cotangents (vjp_p).
# Parameters: ``op`` (the Operator) and ``params`` (its resolved parameters as sorted (name,
# value) pairs: hashable, so jit caches work); forward_p's ``status``: whether an int32 status of
# the batch shape follows the outputs (non-zero: that entry failed); tangent_p's and vjp_p's
# ``saved``: how many residuals follow the outputs (0 or the operator's
# :data:`~xlinalg.lapack.table.SAVING` count). forward_saving_p's results are the outputs and
# then the residuals its reverse reads (the FFI entries of the CPU; on another platform zeros
# that nothing reads: its vjp_p lowering computes them again).
# JAX APIs used beyond jax.ffi (tested with jax 0.10.2): jax.extend.core.Primitive,
# jax.interpreters.ad (primitive_jvps, primitive_transposes, instantiate_zeros,
# is_undefined_primal, Zero), jax.interpreters.batching.primitive_batchers,
# jax.interpreters.mlir (register_lowering, lower_fun), jax.core.ShapedArray. Where one is
# missing the primitives are not defined and every operator keeps the composed rules.
try:
    from jax.extend.core import Primitive
    from jax.interpreters import ad, batching, mlir

    _ = (ad.primitive_jvps, ad.primitive_transposes, ad.instantiate_zeros, ad.is_undefined_primal, ad.Zero)
    _ = (batching.primitive_batchers, mlir.register_lowering, mlir.lower_fun, jax.core.ShapedArray)
except (ImportError, AttributeError):  # pragma: no cover - another JAX
    Primitive = None


def _split(op: Operator, args, saved: int = 0) -> tuple:
    """``(inputs, outputs, residuals, tangents or cotangents)`` of tangent_p's or vjp_p's operands."""
    n, m = len(op.args), len(op.outputs)
    return tuple(args[:n]), tuple(args[n : n + m]), tuple(args[n + m : n + m + saved]), tuple(args[n + m + saved :])


def _composed_tangent(*args, op, params, saved=0):
    """The core JVP rule: output tangents of the outputs' shapes (residuals unread)."""
    inputs, outputs, _, tangents = _split(op, args, saved)
    call = apply.prepare(op, inputs, dict(params), xp=jnp)
    return [jnp.asarray(t, y.dtype) for t, y in zip(apply.jvp(call, outputs, tangents), outputs)]


def _composed_vjp(*args, op, params, saved=0, ffi=False, residuals=False):
    """The core VJP rule (``ffi``: the FFI VJP entry; ``residuals``: the one that reads the
    residuals, where there are some): input cotangents of the inputs' shapes."""
    inputs, outputs, kept, cotangents = _split(op, args, saved)
    call = apply.prepare(op, inputs, dict(params), xp=jnp)
    if ffi:
        call = replace(call, kern=ffi_kernels())
    kept = kept if ffi and residuals and kept else None
    return [jnp.asarray(g, x.dtype) for g, x in zip(apply.vjp(call, outputs, cotangents, residuals=kept), inputs)]


def _ffi_on(platform: str | None, op: Operator, arrays) -> bool:
    """Whether a program lowered for ``platform`` runs ``op``'s FFI entries on ``arrays`` (every
    operand): on the CPU always, on CUDA where :func:`xlinalg.cuda.jax_ffi.supports` says so."""
    if platform == "cpu":
        return jax_ffi.entry(op) is not None
    if platform == "cuda":
        return cuda_ffi.supports(op, [tuple(x.shape) for x in arrays])
    return False


def _lowered_vjp(*args, op, params, saved=0, platform=None):
    """``vjp_p`` lowered for ``platform``: the FFI VJP entry where it runs there (on the CPU the
    one that reads the residuals, where there are some), else the core VJP rule."""
    ffi = _ffi_on(platform, op, _split(op, args, saved)[0])
    return _composed_vjp(*args, op=op, params=params, saved=saved, ffi=ffi, residuals=platform == "cpu")


def _lowered_forward(*args, op, params, status, platform=None):
    """``forward_p`` lowered for ``platform``: the FFI forward entry where it runs there (its
    failing entries NaN), else the composed forward rule (traced: failing entries NaN); with
    ``status``, the int32 status after the outputs (the composed rule's: which entries are not
    finite, for an operator that can fail)."""
    call = apply.prepare(op, args, dict(params), xp=jnp)
    code = None
    if _ffi_on(platform, op, call.inputs):
        outputs, code = jax_ffi.forward(op, call.params, call.inputs)
    else:
        outputs = apply.forward(call, check=False)
    outputs = list(outputs)
    if status:
        if code is None:
            bad = jnp.zeros(call.batch, dtype=bool)
            if op.failure is not None:
                for y, spec in zip(outputs, op.outputs):
                    bad = bad | ~jnp.all(jnp.isfinite(y), axis=tuple(range(y.ndim - spec.ndim, y.ndim)))
            code = bad.astype(jnp.int32)
        outputs.append(code)
    return outputs


def _lowered_forward_saving(*args, op, params, platform=None):
    """``forward_saving_p`` lowered for ``platform``: on the CPU the FFI forward that keeps the
    residuals; elsewhere ``forward_p``'s lowering and zeros in their place (that platform's
    ``vjp_p`` does not read them)."""
    call = apply.prepare(op, args, dict(params), xp=jnp)
    if platform == "cpu" and jax_ffi.saves(op):
        outputs, _, residuals = jax_ffi.forward(op, call.params, call.inputs, saving=True)
        return [*outputs, *residuals]
    outputs = _lowered_forward(*args, op=op, params=params, status=False, platform=platform)
    shapes = jax_ffi.residual_shapes(op, call.params, [tuple(x.shape) for x in call.inputs])
    return [*outputs, *(jnp.zeros(s, call.inputs[0].dtype) for s in shapes)]


def _forward_abstract(*avals, op, params, status):
    batch, shapes, _ = apply.check_signature(op, [a.shape for a in avals], [np.dtype(a.dtype).name for a in avals], dict(params))
    out = [jax.core.ShapedArray(s, avals[0].dtype) for s in shapes]
    return out + [jax.core.ShapedArray(batch, np.int32)] if status else out


def _saving_abstract(*avals, op, params):
    shapes = jax_ffi.residual_shapes(op, dict(params), [tuple(a.shape) for a in avals])
    outputs = _forward_abstract(*avals, op=op, params=params, status=False)
    return outputs + [jax.core.ShapedArray(s, avals[0].dtype) for s in shapes]


def _tangent_abstract(*avals, op, params, saved=0):
    return [jax.core.ShapedArray(y.shape, y.dtype) for y in _split(op, avals, saved)[1]]


def _vjp_abstract(*avals, op, params, saved=0):
    return [jax.core.ShapedArray(x.shape, x.dtype) for x in _split(op, avals, saved)[0]]


def _tangent_impl(*args, op, params, saved=0):
    # (eager operands may be NumPy arrays, e.g. cotangents handed to a pullback: as JAX arrays
    # the rules see one library and the FFI test sees their devices)
    return _composed_tangent(*map(jnp.asarray, args), op=op, params=params, saved=saved)


def _vjp_impl(*args, op, params, saved=0):
    args = tuple(map(jnp.asarray, args))
    entry = jax_ffi.entry(op) is not None
    where = placement(args)
    if entry and where == "device":  # jitted: the device's platform lowers it, not host memory
        return _jitted(vjp_p, op, params, (("saved", saved),))(*args)
    cpu = entry and where == "cpu"
    return _composed_vjp(*args, op=op, params=params, saved=saved, ffi=cpu, residuals=cpu)


def _forward_impl(*args, op, params, status):
    # bound eagerly (the batching rule under an eager vmap): a jitted call, lowered for the
    # arrays' platform
    return _jitted(forward_p, op, params, (("status", status),))(*args)


def _forward_saving_impl(*args, op, params):
    # bound eagerly (the primal of an eager jax.grad or jax.jvp): on concrete CPU arrays the
    # compiled rule, which raises LinAlgError for a failing entry; else a jitted call
    args = tuple(map(jnp.asarray, args))
    if placement(args) == "cpu":
        call = replace(apply.prepare(op, args, dict(params), xp=jnp), kern=ffi_kernels())
        outputs, residuals = apply.forward_saving(call)
        if residuals is not None:
            return [*outputs, *map(jnp.asarray, residuals)]
    return _jitted(forward_saving_p, op, params)(*args)


def _forward_saving_jvp(primals, tangents, *, op, params):
    """The JVP of ``forward_saving_p``: its outputs' tangents through ``tangent_p`` (whose own
    JVP differentiates the composed rules), the residuals' zero (only ``tangent_p`` and
    ``vjp_p`` read them, and their composed rules, which JAX differentiates, do not)."""
    kept = forward_saving_p.bind(*primals, op=op, params=params)
    outputs, residuals = kept[: len(op.outputs)], kept[len(op.outputs) :]
    tangents = [ad.instantiate_zeros(t) for t in tangents]
    dout = tangent_p.bind(*primals, *outputs, *residuals, *tangents, op=op, params=params, saved=len(residuals))
    return kept, [*dout, *(ad.Zero(jax.typeof(r).to_tangent_aval()) for r in residuals)]


@memo
def _jitted(prim, op: Operator, params: tuple, extra: tuple = ()):
    """``prim`` bound with these parameters (and the (name, value) pairs ``extra``: forward_p's
    ``status``, vjp_p's ``saved``), as a ``jax.jit`` function (made once per distinct call: a
    bounded memo, since every new value of a float parameter is a new one)."""
    return jax.jit(partial(prim.bind, op=op, params=params, **dict(extra)))


def _jvp_of(fn):
    """The JVP rule of a primitive evaluating ``fn``: JAX's JVP of ``fn`` (the composed rules,
    so derivatives of any order differentiate them)."""

    def rule(primals, tangents, *, op, params, **extra):
        tangents = [ad.instantiate_zeros(t) for t in tangents]
        out, dout = jax.jvp(partial(fn, op=op, params=params, **extra), tuple(primals), tuple(tangents))
        return out, dout

    return rule


def _tangent_transpose(cts, *args, op, params, saved=0):
    """The transpose of ``tangent_p`` in its tangents: ``vjp_p``. The primals, outputs and
    residuals are not linear operands (they are residuals of the linearization)."""
    inputs, outputs, kept, tangents = _split(op, args, saved)
    if any(ad.is_undefined_primal(x) for x in (*inputs, *outputs, *kept)):
        raise NotImplementedError(f"{op.name}: the JVP is linear in the tangents only")
    linear = [ad.is_undefined_primal(t) for t in tangents]
    none = [None] * (len(inputs) + len(outputs) + len(kept))
    if not any(linear):
        return none + [None] * len(tangents)
    if all(type(c) is ad.Zero for c in cts):
        return none + [ad.Zero(t.aval) if lin else None for t, lin in zip(tangents, linear)]
    cts = [ad.instantiate_zeros(c) for c in cts]
    grads = vjp_p.bind(*inputs, *outputs, *kept, *cts, op=op, params=params, saved=saved)
    return none + [g if lin else None for g, lin in zip(grads, linear)]


def _batcher(prim, cores):
    """The batching rule of ``prim``: the vmapped axis moved to the front of every operand
    (unbatched ones broadcast to it) and singleton axes after it so that every operand has the
    same number of batch axes, then ``prim`` again; ``vjp_p``'s results (cotangents of the
    inputs) get their inputs' shapes back."""

    def rule(args, dims, *, op, params, **extra):
        size = next(x.shape[d] for x, d in zip(args, dims) if d is not None)
        moved = [jnp.moveaxis(x, d, 0) if d is not None else jnp.broadcast_to(x, (size, *x.shape)) for x, d in zip(args, dims)]
        ranks = [x.ndim - 1 - c for x, c in zip(moved, cores(op, extra.get("saved", 0)))]
        top = max(ranks)
        padded = [jnp.reshape(x, (size, *(1,) * (top - r), *x.shape[1:])) for x, r in zip(moved, ranks)]
        outs = prim.bind(*padded, op=op, params=params, **extra)
        if prim is vjp_p:
            outs = [jnp.reshape(g, x.shape) for g, x in zip(outs, moved)]
        return outs, [0] * len(outs)

    return rule


def _residual_cores(op: Operator, saved: int) -> list:
    return list(jax_ffi.SAVING[op.name].residual_cores) if saved else []


def _tangent_cores(op: Operator, saved: int) -> list:
    return [a.ndim for a in op.args] + [o.ndim for o in op.outputs] + _residual_cores(op, saved) + [a.ndim for a in op.args]


def _vjp_cores(op: Operator, saved: int) -> list:
    return [a.ndim for a in op.args] + [o.ndim for o in op.outputs] + _residual_cores(op, saved) + [o.ndim for o in op.outputs]


def _forward_cores(op: Operator, saved: int) -> list:
    return [a.ndim for a in op.args]


def _per_platform(prim, fn, **fixed) -> None:
    """Lower ``prim`` through ``fn(*args, **params, platform=...)``: for the CPU, for CUDA and
    (``platform=None``) for any other platform."""
    mlir.register_lowering(prim, mlir.lower_fun(partial(fn, **fixed), multiple_results=True))
    for platform in ("cpu", "cuda"):
        rule = mlir.lower_fun(partial(fn, platform=platform, **fixed), multiple_results=True)
        mlir.register_lowering(prim, rule, platform=platform)


def _primitives():
    """``(forward_p, forward_saving_p, tangent_p, vjp_p)`` with their rules registered, or
    ``(None,) * 4``."""
    if Primitive is None:  # pragma: no cover
        return None, None, None, None
    forward = Primitive("xlinalg_forward")
    forward.multiple_results = True
    forward.def_impl(_forward_impl)
    forward.def_abstract_eval(_forward_abstract)
    _per_platform(forward, _lowered_forward)
    batching.primitive_batchers[forward] = _batcher(forward, _forward_cores)
    # (no JVP rule: it is the primal of a custom_jvp, whose rule differentiates it)

    saving = Primitive("xlinalg_forward_saving")
    saving.multiple_results = True
    saving.def_impl(_forward_saving_impl)
    saving.def_abstract_eval(_saving_abstract)
    _per_platform(saving, _lowered_forward_saving)
    ad.primitive_jvps[saving] = _forward_saving_jvp
    batching.primitive_batchers[saving] = _batcher(saving, _forward_cores)

    tangent = Primitive("xlinalg_tangent")
    tangent.multiple_results = True
    tangent.def_impl(_tangent_impl)
    tangent.def_abstract_eval(_tangent_abstract)
    mlir.register_lowering(tangent, mlir.lower_fun(_composed_tangent, multiple_results=True))
    ad.primitive_jvps[tangent] = _jvp_of(_composed_tangent)
    ad.primitive_transposes[tangent] = _tangent_transpose
    batching.primitive_batchers[tangent] = _batcher(tangent, _tangent_cores)

    vjp = Primitive("xlinalg_vjp")
    vjp.multiple_results = True
    vjp.def_impl(_vjp_impl)
    vjp.def_abstract_eval(_vjp_abstract)
    _per_platform(vjp, _lowered_vjp)
    ad.primitive_jvps[vjp] = _jvp_of(_composed_vjp)
    batching.primitive_batchers[vjp] = _batcher(vjp, _vjp_cores)
    return forward, saving, tangent, vjp


#: The forward of an operator run by the compiled layer (and the one that keeps residuals for
#: the reverse), its linear tangent map and the transpose of that.
forward_p, forward_saving_p, tangent_p, vjp_p = _primitives()


def _make_vjp(op: Operator, params: dict):
    """A ``jax.custom_vjp`` whose backward pass is the core VJP (``jax_reverse="vjp"``): for an
    operator whose JVP JAX cannot transpose; forward mode is unavailable for it."""
    primal = _primal(op, params)
    fn = jax.custom_vjp(primal)

    def fwd(*arrays):
        outputs = primal(*arrays)
        return outputs, (tuple(jnp.asarray(x) for x in arrays), outputs)

    def bwd(residuals, cotangents):
        arrays, outputs = residuals
        call = apply.prepare(op, arrays, params, xp=jnp)
        return tuple(apply.vjp(call, outputs, cotangents))

    fn.defvjp(fwd, bwd)
    return fn


def bind(op: Operator):
    """``op`` as a JAX function ``f(*arrays, **params)``: differentiable in every mode,
    ``jit``- and ``vmap``-compatible; one array out, or a tuple for several outputs."""

    def fn(*arrays, **params):
        for name, value in params.items():
            if isinstance(value, jax.core.Tracer):
                raise TypeError(
                    f"{op.name}: parameter {name} must be a static Python value, got a traced value "
                    "(mark it static in jax.jit, or close over it)"
                )
        params = apply.resolve_params(op, params)
        if len(arrays) != len(op.args):
            raise TypeError(
                f"{op.name}: expected {len(op.args)} array argument(s) ({', '.join(op.arg_names)}), got {len(arrays)}"
            )
        # NumPy arrays are taken as JAX functions take them (jnp.asarray); any other library
        # mixed in is rejected by the namespace check.
        arrays = tuple(jnp.asarray(x) if isinstance(x, (np.ndarray, np.generic)) else x for x in arrays)
        if not any(isinstance(x, jax.Array) for x in arrays):
            _reject_other_library(op, arrays)
        xp = apply.namespace(op, arrays)
        apply.validate(op, xp, arrays, params)
        outputs = differentiable(op, params)(*arrays)
        return tuple(outputs) if op.multiple_outputs else outputs[0]

    return bind_metadata(fn, op, "xlinalg.jax", _NOTE)


def _reject_other_library(op: Operator, arrays) -> None:
    """Raise ``TypeError`` when arrays of another library (torch, MXNet, ...) and no JAX array
    are passed to a JAX function; anything else is left to the namespace check.

    Parameters
    ----------
    op : Operator
        The operator called.
    arrays : tuple
        The call's array arguments, NumPy arrays already converted.

    Raises
    ------
    TypeError
        ``"<op>: expected JAX arrays (or NumPy arrays), got torch.Tensor for A"``.
    """
    other = [(name, x) for name, x in zip(op.arg_names, arrays) if array_api_compat.is_array_api_obj(x) or _is_ndarray_like(x)]
    if other:
        kinds = ", ".join(f"{_kind(x)} for {name}" for name, x in other)
        raise TypeError(f"{op.name}: expected JAX arrays (or NumPy arrays), got {kinds}")


def _is_ndarray_like(x) -> bool:
    """Arrays that are no Array API objects but plainly arrays (MXNet's NDArray)."""
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, (list, tuple))


def _kind(x) -> str:
    cls = type(x)
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"


_NOTE = """

JAX
---
A ``jax.custom_jvp`` function: ``jax.grad``, ``jax.vjp``, ``jax.jvp``, ``jax.jacfwd``,
``jax.jacrev``, ``jax.hessian``, ``jax.jit`` and ``jax.vmap`` all apply. Parameters are static
Python values. Under ``jit``/``vmap`` failing batch entries come out NaN instead of raising."""
