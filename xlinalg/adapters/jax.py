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
"""

from __future__ import annotations

import array_api_compat
import jax
import jax.numpy as jnp
import numpy as np

from ..core import apply
from ..core.docs import bind_metadata
from ..core.operator import Operator

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


def _primal(op: Operator, params: dict):
    def primal(*arrays):
        arrays = tuple(jnp.asarray(x) for x in arrays)
        call = apply.prepare(op, arrays, params, xp=jnp)
        return apply.forward(call)  # raises LinAlgError only for concrete values

    primal.__name__ = primal.__qualname__ = op.name
    return primal


def _make(op: Operator, params: dict):
    """A ``jax.custom_jvp`` whose rule is the core JVP; JAX transposes it for reverse mode."""
    fn = jax.custom_jvp(_primal(op, params))

    def fn_jvp(primals, tangents):
        primals = tuple(jnp.asarray(x) for x in primals)
        tangents = tuple(jnp.asarray(t) for t in tangents)
        call = apply.prepare(op, primals, params, xp=jnp)
        outputs = fn(*primals)  # through fn, so higher orders use these rules again
        return outputs, apply.jvp(call, outputs, tangents)

    fn.defjvp(fn_jvp)
    return fn


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
