"""The one place where an operator's spec meets arrays.

Every entry point (the public functions, ``vjp``/``jvp``, the framework adapters) goes through
here: :func:`prepare` validates and broadcasts the inputs, :func:`forward` reads structured
arguments and runs the forward rule, :func:`jvp`/:func:`vjp` project tangents and cotangents
onto the arguments' structure around the rules, :func:`check_failure` applies the failure
policy (eagerly a :class:`~xlinalg.LinAlgError` naming the batch entry whose input is not finite
or whose output is not; traced, that entry's outputs entirely NaN).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import array_api_compat

from ..errors import LinAlgError, error_class  # noqa: F401  (LinAlgError: the documented type)
from ..kernels import kernels_for
from . import batch as _batch
from .matrix import from_triangle, sym, tri
from .memo import memo
from .operator import Operator
from .shapes import ShapeError, doc_shape, output_shapes

SUPPORTED_DTYPES = ("float32", "float64")


@dataclass(slots=True)
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
    """The operator's parameters with defaults filled in, each as a plain Python value.

    Parameters
    ----------
    op : Operator
        The operator called.
    params : mapping
        The keyword parameters of the call. A parameter whose default is a ``bool`` takes a
        bool, ``0``/``1`` or a 0-d boolean or integer array (``numpy.True_``); one whose default is
        an ``int`` an integral number or a 0-d integer array; one whose default is a ``float``
        any ``numbers.Real`` or a 0-d real array. Strings, ``None`` and arrays of more than one
        element are rejected.

    Returns
    -------
    dict
        Every parameter of ``op``, as ``bool``, ``int`` or ``float``.

    Raises
    ------
    TypeError
        For an unknown name or an ill-typed value, naming the operator, the parameter and the
        value with its type.
    """
    unknown = set(params) - set(op.params)
    if unknown:
        allowed = ", ".join(op.params) or "none"
        raise TypeError(f"{op.name}: unexpected parameter(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    out = dict(op.params)
    for name, value in params.items():
        default = op.params[name]
        if type(value) is type(default):  # the common case, also while a compiler traces
            out[name] = value
            continue
        kind = "bool" if isinstance(default, bool) else "int" if isinstance(default, int) else "float"
        out[name] = _param_value(op, name, value, kind)
    return out


_PARAM_KINDS = {"bool": "a bool", "int": "an int", "float": "a real number"}


def _param_value(op: Operator, name: str, value, kind: str):
    """``value`` as the Python ``bool``/``int``/``float`` a parameter of ``kind`` takes, or a
    ``TypeError`` naming the operator, the parameter and the value."""
    scalar = _python_scalar(value)
    if kind == "bool":
        if isinstance(scalar, bool) or (isinstance(scalar, int) and scalar in (0, 1)):
            return bool(scalar)
    elif kind == "int":
        if isinstance(scalar, int) and not isinstance(scalar, bool):
            return scalar
        if isinstance(scalar, float) and scalar.is_integer():
            return int(scalar)
    elif isinstance(scalar, (int, float)) and not isinstance(scalar, bool):
        return float(scalar)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    raise TypeError(f"{op.name}: parameter {name} must be {_PARAM_KINDS[kind]}, got {text} ({type(value).__name__})")


def _python_scalar(value):
    """``value`` as a Python ``bool``, ``int`` or ``float`` when it is a real number or a 0-d
    array holding one; otherwise ``None``."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    if isinstance(value, numbers.Number):
        if isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
        return None  # complex
    shape = getattr(value, "shape", None)
    if shape is None or tuple(shape) != () or not hasattr(value, "item"):
        return None  # not a 0-d array (NumPy's bool_ scalar is one: shape ())
    try:
        item = value.item()
    except Exception:  # a symbolic value without data
        return None
    return item if isinstance(item, (bool, int, float)) else None


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
    xp = namespace(op, arrays) if xp is None else xp
    shapes = tuple([tuple(x.shape) for x in arrays])
    dtypes = tuple([x.dtype for x in arrays])
    items = tuple([(name, type(value), value) for name, value in params.items()])
    checked = _check if items and not all(t in _PLAIN_PARAMS for _, t, _ in items) else _checked
    resolved, batch, targets = checked(op, xp, shapes, dtypes, items)
    if targets:
        inputs = tuple([x if t is None else xp.broadcast_to(x, t) for x, t in zip(arrays, targets)])
    else:
        inputs = tuple(arrays)
    return Call(op, xp, kernels_for(xp), inputs, shapes, batch, dict(resolved))


#: Parameter types whose values a cache of validated calls may hold as keys (a 0-d array is
#: hashed by identity, if at all, and its value may change).
_PLAIN_PARAMS = (bool, int, float)


def _check(op: Operator, xp, shapes: tuple, dtypes: tuple, items: tuple) -> tuple:
    """``(params, batch, targets)`` of a call to validate (:func:`prepare`): the resolved
    parameters, the broadcast batch shape and, per input, the shape it is broadcast to (``None``
    where it has it; ``()`` where every input has). ``items``: the call's parameters as
    ``(name, type, value)``."""
    params = resolve_params(op, {name: value for name, _, value in items})
    batch = check_signature(op, shapes, [_dtype_name(xp, d) for d in dtypes], params)[0]
    targets = []
    for arg, shape in zip(op.args, shapes):
        target = (*batch, *shape[len(shape) - arg.ndim:])
        targets.append(None if shape == target else target)
    return params, batch, tuple(targets) if any(t is not None for t in targets) else ()


#: :func:`_check` of calls whose parameters are plain Python values: an eager program repeats
#: few signatures, and a validated one costs a lookup.
_checked = memo(_check)


def validate(op: Operator, xp, arrays, params) -> tuple:
    """Check a call's arrays against ``op``'s signature; see :func:`check_signature`."""
    return check_signature(op, [tuple(x.shape) for x in arrays], [_dtype_name(xp, x.dtype) for x in arrays], params)


def check_signature(op: Operator, shapes, dtypes, params) -> tuple:
    """Validate argument ``shapes`` and ``dtypes`` (names) against ``op``'s signature and
    shape rule, with messages naming the operator, the arguments and their shapes.

    Returns ``(batch, output shapes, dtype)``: the broadcast batch shape, the full shape of
    each output and the outputs' dtype (the inputs' common dtype). A signature that passed
    once is remembered (:func:`~xlinalg.core.memo.memo`): eager calls repeat few of them."""
    return _check_signature(op, tuple(tuple(s) for s in shapes), tuple(dtypes), tuple(params.items()))


@memo
def _check_signature(op: Operator, shapes: tuple, dtypes: tuple, param_items: tuple) -> tuple:
    params = dict(param_items)

    def desc():  # only when raising: under torch.compile sizes may be symbolic
        return ", ".join(f"{a.name}: {s}" for a, s in zip(op.args, shapes))

    for arg, shape, dtype in zip(op.args, shapes, dtypes):
        if dtype not in SUPPORTED_DTYPES:
            raise TypeError(
                f"{op.name}: argument {arg.name} has unsupported dtype {dtype}; supported: {', '.join(SUPPORTED_DTYPES)}"
            )
        if len(shape) < arg.ndim:
            raise rank_error(op, arg, shape, params)
        if arg.square and shape[-1] != shape[-2]:
            raise ValueError(f"{op.name}: argument {arg.name} must be square, got shape {shape}")
    if len(set(dtypes)) > 1:
        kinds = ", ".join(f"{a.name}: {d}" for a, d in zip(op.args, dtypes))
        raise TypeError(f"{op.name}: arguments must share one dtype, got {kinds}")
    batch = _batch.broadcast_batch([_batch.batch_shape(s, a.ndim) for s, a in zip(shapes, op.args)])
    if batch is None:
        raise ValueError(f"{op.name}: batch dimensions do not broadcast ({desc()})")
    core = [s[len(s) - a.ndim:] for s, a in zip(shapes, op.args)]
    try:
        out = output_shapes(op, core, params)
    except ShapeError as exc:
        raise ValueError(f"{op.name}: {exc} ({desc()})") from None
    return batch, tuple(batch + s for s in out), dtypes[0] if dtypes else None


def _dtype_name(xp, dtype) -> str:
    for name in SUPPORTED_DTYPES:
        if dtype == getattr(xp, name, None):
            return name
    return str(dtype).rsplit(".", 1)[-1]


# ---- structure ------------------------------------------------------------------------------
def read(call: Call) -> tuple:
    """The inputs as the forward rule sees them: symmetric arguments completed from their
    named triangle, triangular arguments masked to it."""
    xp, lower = call.xp, call.op.lower(call.params)
    out = []
    for arg, x in zip(call.op.args, call.inputs):
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
def forward(call: Call, *, check: bool = True) -> tuple:
    """Outputs of the forward rule (a tuple) under the failure policy (:func:`check_failure`):
    raises on failure when ``check`` and eager; traced, or without ``check``, a failing batch
    entry's outputs are entirely NaN."""
    fast = call.kern.compiled(call.op, "forward", call.inputs)
    if fast is not None:  # the compiled layer: reads the named triangles itself, NaN-fills failures
        return checked(call, *fast(call.inputs, params=call.params), check)
    read_inputs = read(call)
    outputs = tuple(call.op.forward(call.xp, call.kern, *read_inputs, **call.params))
    return check_failure(call, read_inputs, outputs, eager=check)


def forward_saving(call: Call, *, check: bool = True) -> tuple:
    """``(outputs, residuals)``: :func:`forward`'s outputs, and what the compiled reverse can
    take from the forward instead of computing it again (an opaque tuple for :func:`vjp`'s
    ``residuals``; ``None`` where the kernel table keeps none for the operator). For callers
    that hold arrays from the forward to the backward pass (:func:`xlinalg.vjp`, eager
    PyTorch calls with a gradient to come, the MXNet binding)."""
    fast = call.kern.compiled_saving(call.op, "forward", call.inputs)
    if fast is None:
        return forward(call, check=check), None
    outputs, status, residuals = fast(call.inputs, params=call.params)
    return checked(call, outputs, status, check), residuals


def checked(call: Call, outputs, status, check: bool = True) -> tuple:
    """A compiled forward's ``outputs``, raising for the first failing entry of ``status``
    (its entries' LAPACK ``info``; ``None``: no status) when ``check``."""
    if check and status is not None and status.any():
        raise_failure(call, status.reshape(-1) != 0)
    return outputs


def jvp(call: Call, outputs, tangents) -> tuple:
    """Output tangents; ``tangents`` (``None``: zero) match the broadcast inputs."""
    tangents = tuple(
        call.xp.zeros_like(x) if t is None else _batch.broadcast_to_batch(call.xp, t, call.batch, a.ndim)
        for x, t, a in zip(call.inputs, tangents, call.op.args)
    )
    return tuple(call.op.jvp(call.xp, call.kern, read(call), tuple(outputs), project(call, tangents), **call.params))


def vjp(call: Call, outputs, cotangents, *, unbroadcast: bool = True, residuals=None, out=None) -> tuple:
    """Input cotangents, summed back to the inputs' original shapes when ``unbroadcast``;
    ``cotangents`` (``None``: zero) match ``outputs``; ``residuals``: those
    :func:`forward_saving` returned with ``outputs``, or ``None``. ``out``: optional, one
    writeable array (or ``None``) per input, overlapping none of the other arrays, that a
    compiled reverse on NumPy arrays writes the cotangent of that input into where it fits
    (the input's shape, unbroadcast, dtype and C order); that cotangent is then ``out[i]``
    itself (test with ``is``), any other a new array."""
    cotangents = tuple(call.xp.zeros_like(y) if g is None else g for y, g in zip(outputs, cotangents))
    outputs = tuple(outputs)
    arrays, groups = (*call.inputs, *outputs, *cotangents), (call.inputs, outputs, cotangents)
    fast = None if residuals is None else call.kern.compiled_saving(call.op, "vjp", arrays)
    if fast is not None:
        groups = (residuals, *groups)
    else:
        fast = call.kern.compiled(call.op, "vjp", arrays)
    if fast is not None:  # projected onto the structure already
        grads, _ = fast(*groups, params=call.params, **({} if out is None else {"out": out}))
    else:
        grads = project(call, call.op.vjp(call.xp, call.kern, read(call), outputs, cotangents, **call.params))
    if unbroadcast:
        grads = tuple(_batch.sum_to_shape(call.xp, g, s) for g, s in zip(grads, call.shapes))
    return grads


# ---- failures -------------------------------------------------------------------------------
def check_failure(call: Call, inputs, outputs, *, eager: bool = True) -> tuple:
    """The failure policy of operators that declare a ``failure`` (potrf, potri, potrs, trsm,
    inverse, ...), the same in every framework.

    A batch entry fails when an input it reads is not finite (only the named triangle of a
    symmetric or triangular argument is read) or when its outputs are not finite although its
    inputs are (the operator's ``failure``: not positive definite, singular). Eagerly the first
    failing entry raises; traced (``jax.jit``, ``vmap``, ``torch.compile``: no data to test)
    every element of every output of a failing entry is NaN and the other entries are
    unchanged. Operators without a ``failure`` keep IEEE semantics: outputs pass unchanged.

    Parameters
    ----------
    call : Call
        The prepared call.
    inputs : tuple of arrays
        The inputs as the forward rule read them (:func:`read`), batch axes broadcast.
    outputs : tuple of arrays
        The forward rule's outputs.
    eager : bool, default True
        ``False`` where a caller cannot raise at the call (a symbolic graph): failing entries
        come out NaN as when traced.

    Returns
    -------
    tuple of arrays
        ``outputs``, with failing entries NaN when traced or not ``eager``.

    Raises
    ------
    LinAlgError
        Eagerly, naming the operator, the cause (``input contains NaN or inf`` or the
        operator's ``failure``), the first failing batch index and the argument shapes. Its
        class is :func:`xlinalg.errors.error_class` of the kernel table's ``error_base``, so it
        is also the library's own error (``numpy.linalg.LinAlgError``,
        ``torch.linalg.LinAlgError``) where the library has one.
    """
    op, xp = call.op, call.xp
    outputs = tuple(outputs)
    if op.failure is None:
        return outputs
    if not eager or any(call.kern.is_traced(v) for v in (*outputs, *inputs)):
        return fill_failed(call, inputs, outputs)
    # The common case in one pass over each array and one sync: a sum is finite when every
    # term is (an overflowing sum of finite terms only costs the exact test below).
    total = None
    for v in (*outputs, *inputs):
        partial = xp.sum(v)
        total = partial if total is None else total + partial
    if total is None or bool(xp.isfinite(total)):
        return outputs
    bad_input = xp.reshape(_failed_entries(call, inputs, outputs=False), (-1,))
    bad = bad_input | xp.reshape(_failed_entries(call, outputs, outputs=True), (-1,))
    if bad.shape[0] == 0 or not bool(xp.any(bad)):
        return outputs
    raise_failure(call, bad, bad_input)


def raise_failure(call: Call, bad, bad_input=None):
    """Raise the :class:`~xlinalg.LinAlgError` of :func:`check_failure` for the first entry of
    the flat boolean ``bad``; ``bad_input`` (flat, or ``None``: computed from the inputs as
    read) tells whether a non-finite input caused it."""
    op, xp = call.op, call.xp
    if bad_input is None:
        bad_input = xp.reshape(_failed_entries(call, read(call), outputs=False), (-1,))
    first = int(xp.argmax(xp.astype(xp.asarray(bad), xp.int8)))
    cause = NON_FINITE_INPUT if bool(bad_input[first]) else op.failure
    index = _batch.unravel(first, call.batch)
    where = f"batch index {index}" if call.batch else "the input"
    desc = ", ".join(f"{a.name}: {s}" for a, s in zip(op.args, call.shapes))
    cls = error_class(getattr(call.kern, "error_base", None))
    raise cls(f"{op.name}: {cause} at {where} ({desc})", operator=op.name, index=index)


#: The cause named by :func:`check_failure` for a batch entry whose input is not finite.
NON_FINITE_INPUT = "input contains NaN or inf"


def fill_failed(call: Call, inputs, outputs) -> tuple:
    """``outputs`` with every element of the failing batch entries NaN (no data-dependent
    control flow: traceable by every compiler).

    Parameters
    ----------
    call : Call
        The prepared call.
    inputs : tuple of arrays
        The inputs as the forward rule read them (:func:`read`).
    outputs : tuple of arrays
        The forward rule's outputs.

    Returns
    -------
    tuple of arrays
        The outputs, each batch entry whose inputs are not finite or whose outputs are not
        finite entirely NaN, including elements the rule sets to zero (a factor's other
        triangle); dtypes and shapes unchanged.
    """
    xp = call.xp
    bad = _failed_entries(call, inputs, outputs=False) | _failed_entries(call, outputs, outputs=True)
    filled = []
    for y, spec in zip(outputs, call.op.outputs):
        mask = bad[(...,) + (None,) * spec.ndim] if spec.ndim else bad
        z = xp.where(mask, math.nan, y)
        filled.append(z if z.dtype == y.dtype else xp.astype(z, y.dtype))
    return tuple(filled)


def _failed_entries(call: Call, arrays, *, outputs: bool):
    """Boolean array of batch shape: which entries of ``arrays`` (the call's outputs, or its
    read inputs) hold a non-finite element."""
    specs = call.op.outputs if outputs else call.op.args
    bad = None
    for x, spec in zip(arrays, specs):
        entry = ~_all_finite(call.xp, x, spec.ndim)
        bad = entry if bad is None else bad | entry
    return bad


def rank_error(op: Operator, arg, shape, params: Mapping[str, Any] | None = None) -> ValueError:
    """The error for an argument with fewer axes than its core rank.

    Parameters
    ----------
    op : Operator
        The operator called.
    arg : Arg
        The argument's spec (one of ``op.args``).
    shape : tuple of int
        The shape the caller passed for it.
    params : mapping, optional
        The call's (resolved) parameters; a ``flip`` parameter (``rightside``) decides the
        orientation of the expected matrix and so how a vector becomes one.

    Returns
    -------
    ValueError
        Naming the operator, the argument, the shape expected and the shape given. For a vector
        passed as a non-square matrix argument that shares a dimension with a square argument
        (the right-hand side ``B`` of ``potrs``, ``trsm``, ``trmm``), it also says how to pass
        the vector: ``b[..., None]`` (a column) or, where the shared dimension is the columns
        (``rightside=True``), ``b[..., None, :]`` (a row).
    """
    shape = tuple(shape)
    dims = arg.dims_for(params or {})
    kind = "a matrix" if arg.ndim == 2 else "a vector"
    text = (
        f"{op.name}: argument {arg.name} must have at least {arg.ndim} dimensions ({kind} {doc_shape(dims)} "
        f"per batch entry), got shape {shape}"
    )
    if arg.ndim == 2 and len(shape) == 1 and not arg.square:
        square = {a.dims[0] for a in op.args if a.square}
        if dims[0] in square:
            text += "; for a vector b pass b[..., None]"
        elif dims[1] in square:
            text += "; for a vector b pass b[..., None, :]"
    return ValueError(text)


def _all_finite(xp, x, core_ndim: int):
    finite = xp.isfinite(x)
    if core_ndim:
        finite = xp.all(finite, axis=tuple(range(-core_ndim, 0)))
    return finite
