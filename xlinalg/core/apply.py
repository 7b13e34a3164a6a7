"""The one place where an operator's spec meets arrays.

Every entry point (the public functions, ``vjp``/``jvp``, the framework adapters) goes through
here: :func:`prepare` validates and broadcasts the inputs, :func:`forward` reads structured
arguments and runs the forward rule, :func:`jvp`/:func:`vjp` project tangents and cotangents
onto the arguments' structure around the rules, :func:`check_failure` turns non-finite outputs
of finite inputs into :class:`~xlinalg.LinAlgError` (eagerly only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import array_api_compat

from ..errors import LinAlgError
from ..kernels import kernels_for
from . import batch as _batch
from .matrix import from_triangle, sym, tri
from .operator import Operator

SUPPORTED_DTYPES = ("float32", "float64")


@dataclass
class Call:
    """A validated call: namespace, kernel table, broadcast inputs and their shapes."""

    op: Operator
    xp: Any
    kern: Any
    inputs: tuple
    shapes: tuple  # the inputs' shapes before broadcasting
    batch: tuple
    params: dict


def resolve_params(op: Operator, params: Mapping[str, Any]) -> dict:
    """Defaults filled in; unknown names and ill-typed values rejected."""
    unknown = set(params) - set(op.params)
    if unknown:
        allowed = ", ".join(op.params) or "none"
        raise TypeError(f"{op.name}: unexpected parameter(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    out = dict(op.params)
    out.update(params)
    for name, value in out.items():
        default = op.params[name]
        if isinstance(default, bool):
            if not isinstance(value, (bool, int)) or value not in (0, 1):
                raise TypeError(f"{op.name}: parameter {name} must be a bool, got {value!r}")
            out[name] = bool(value)
        elif isinstance(default, int):
            if isinstance(value, bool) or int(value) != value:
                raise TypeError(f"{op.name}: parameter {name} must be an int, got {value!r}")
            out[name] = int(value)
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise TypeError(f"{op.name}: parameter {name} must be a real number, got {value!r}") from None
            out[name] = float(value)
    return out


def namespace(op: Operator, arrays) -> Any:
    """The Array API namespace shared by ``arrays``, or a ``TypeError`` naming the operator."""
    for name, x in zip(op.arg_names, arrays):
        if not array_api_compat.is_array_api_obj(x):
            raise TypeError(f"{op.name}: argument {name} must be an array, got {type(x).__name__}")
    try:
        return array_api_compat.array_namespace(*arrays)
    except TypeError:
        raise mixed_libraries(op, arrays) from None


def mixed_libraries(op: Operator, arrays) -> TypeError:
    """The error for arguments from different array libraries."""
    kinds = ", ".join(f"{n}: {type(x).__module__}.{type(x).__name__}" for n, x in zip(op.arg_names, arrays))
    return TypeError(f"{op.name}: arrays of different libraries ({kinds})")


def prepare(op: Operator, arrays, params: Mapping[str, Any], xp=None) -> Call:
    """Validate a call (count, dtypes, ranks, shapes) and broadcast the batch axes."""
    if len(arrays) != len(op.args):
        raise TypeError(f"{op.name}: expected {len(op.args)} array argument(s) ({', '.join(op.arg_names)}), got {len(arrays)}")
    params = resolve_params(op, params)
    xp = namespace(op, arrays) if xp is None else xp
    validate(op, xp, arrays, params)
    shapes = tuple(tuple(x.shape) for x in arrays)
    batch = _batch.broadcast_batch([_batch.batch_shape(s, a.ndim) for s, a in zip(shapes, op.args)])
    inputs = tuple(_batch.broadcast_to_batch(xp, x, batch, a.ndim) for x, a in zip(arrays, op.args))
    return Call(op, xp, kernels_for(xp), inputs, shapes, batch, params)


def validate(op: Operator, xp, arrays, params) -> None:
    dtypes = set()
    for arg, x in zip(op.args, arrays):
        dtype = _dtype_name(xp, x.dtype)
        if dtype not in SUPPORTED_DTYPES:
            raise TypeError(
                f"{op.name}: argument {arg.name} has unsupported dtype {dtype}; supported: {', '.join(SUPPORTED_DTYPES)}"
            )
        dtypes.add(dtype)
        if x.ndim < arg.ndim:
            kind = "a matrix" if arg.ndim == 2 else "a vector"
            raise ValueError(
                f"{op.name}: argument {arg.name} must have at least {arg.ndim} dimensions ({kind} per batch entry), got shape {tuple(x.shape)}"
            )
        if arg.square and x.shape[-1] != x.shape[-2]:
            raise ValueError(f"{op.name}: argument {arg.name} must be square, got shape {tuple(x.shape)}")
    if len(dtypes) > 1:
        desc = ", ".join(f"{a.name}: {_dtype_name(xp, x.dtype)}" for a, x in zip(op.args, arrays))
        raise TypeError(f"{op.name}: arguments must share one dtype, got {desc}")
    batches = [_batch.batch_shape(tuple(x.shape), a.ndim) for x, a in zip(arrays, op.args)]
    if _batch.broadcast_batch(batches) is None:
        desc = ", ".join(f"{a.name}: {tuple(x.shape)}" for a, x in zip(op.args, arrays))
        raise ValueError(f"{op.name}: batch dimensions do not broadcast ({desc})")
    if op.check is not None:
        core = tuple(tuple(x.shape[x.ndim - a.ndim:]) for x, a in zip(arrays, op.args))
        message = op.check(core, params)
        if message:
            desc = ", ".join(f"{a.name}: {tuple(x.shape)}" for a, x in zip(op.args, arrays))
            raise ValueError(f"{op.name}: {message} ({desc})")


def _dtype_name(xp, dtype) -> str:
    for name in ("float32", "float64"):
        if dtype == getattr(xp, name, None):
            return name
    return str(dtype).rsplit(".", 1)[-1]


# ---- structure ------------------------------------------------------------------------------
def read(call: Call, inputs=None) -> tuple:
    """The inputs as the forward rule sees them: symmetric arguments completed from their
    named triangle, triangular arguments masked to it."""
    xp, lower = call.xp, call.op.lower(call.params)
    out = []
    for arg, x in zip(call.op.args, call.inputs if inputs is None else inputs):
        if arg.structure == "symmetric":
            x = from_triangle(xp, x, lower)
        elif arg.structure == "triangular":
            x = tri(xp, x, lower)
        out.append(x)
    return tuple(out)


def project(call: Call, values) -> tuple:
    """Tangents/cotangents projected onto each argument's structure (an orthogonal
    projection, so the JVP and VJP stay adjoint): ``sym`` or the triangle mask."""
    xp, lower = call.xp, call.op.lower(call.params)
    out = []
    for arg, v in zip(call.op.args, values):
        if arg.structure == "symmetric":
            v = sym(xp, v)
        elif arg.structure == "triangular":
            v = tri(xp, v, lower)
        out.append(v)
    return tuple(out)


# ---- rules ----------------------------------------------------------------------------------
def forward(call: Call, inputs=None, *, check: bool = True) -> tuple:
    """Outputs of the forward rule (a tuple); raises on failure when ``check`` and eager."""
    read_inputs = read(call, inputs)
    outputs = tuple(call.op.forward(call.xp, call.kern, *read_inputs, **call.params))
    if check:
        check_failure(call, read_inputs, outputs)
    return outputs


def jvp(call: Call, outputs, tangents, inputs=None) -> tuple:
    """Output tangents; ``tangents`` (``None``: zero) match the broadcast inputs."""
    inputs = call.inputs if inputs is None else inputs
    tangents = tuple(
        call.xp.zeros_like(x) if t is None else _batch.broadcast_to_batch(call.xp, t, call.batch, a.ndim)
        for x, t, a in zip(inputs, tangents, call.op.args)
    )
    return tuple(call.op.jvp(call.xp, call.kern, read(call, inputs), tuple(outputs), project(call, tangents), **call.params))


def vjp(call: Call, outputs, cotangents, inputs=None, *, unbroadcast: bool = True) -> tuple:
    """Input cotangents, summed back to the inputs' original shapes when ``unbroadcast``;
    ``cotangents`` (``None``: zero) match ``outputs``."""
    inputs = call.inputs if inputs is None else inputs
    cotangents = tuple(call.xp.zeros_like(y) if g is None else g for y, g in zip(outputs, cotangents))
    grads = call.op.vjp(call.xp, call.kern, read(call, inputs), tuple(outputs), cotangents, **call.params)
    grads = project(call, grads)
    if unbroadcast:
        grads = tuple(_batch.sum_to_shape(call.xp, g, s) for g, s in zip(grads, call.shapes))
    return grads


# ---- failures -------------------------------------------------------------------------------
def check_failure(call: Call, inputs, outputs) -> None:
    """Raise :class:`LinAlgError` naming the first batch entry whose outputs are not finite
    although its inputs are (skipped for traced values and for operators without failures)."""
    op, xp = call.op, call.xp
    if op.failure is None or any(call.kern.is_traced(y) for y in outputs):
        return
    if all(bool(xp.all(xp.isfinite(y))) for y in outputs):  # the common case: one pass each
        return
    bad = None
    for y, spec in zip(outputs, op.outputs):
        entry_ok = _all_finite(xp, y, spec.ndim)
        bad = ~entry_ok if bad is None else bad | ~entry_ok
    bad = xp.reshape(bad, (-1,))
    if bad.shape[0] == 0 or not bool(xp.any(bad)):
        return
    for x, arg in zip(inputs, op.args):  # non-finite inputs give non-finite outputs: no error
        bad = bad & xp.reshape(_all_finite(xp, x, arg.ndim), (-1,))
    if not bool(xp.any(bad)):
        return
    first = int(xp.argmax(xp.astype(bad, xp.int8)))
    index = _batch.unravel(first, call.batch)
    where = f"batch index {index}" if call.batch else "the input"
    desc = ", ".join(f"{a.name}: {s}" for a, s in zip(op.args, call.shapes))
    raise LinAlgError(f"{op.name}: {op.failure} at {where} ({desc})", operator=op.name, index=index)


def _all_finite(xp, x, core_ndim: int):
    finite = xp.isfinite(x)
    if core_ndim:
        finite = xp.all(finite, axis=tuple(range(-core_ndim, 0)))
    return finite
