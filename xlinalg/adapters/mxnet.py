"""MXNet adapter: every operator as an MXNet custom operator, made from its spec.

:func:`bind` turns an :class:`~xlinalg.core.operator.Operator` into a function of NDArrays or
Symbols with the signature of ``mx.nd.linalg.<op>``. One generic custom operator
(``mx.operator.CustomOp``/``CustomOpProp``) is registered per operator under the name
``xlinalg_<op>``; it runs the core rules (:mod:`xlinalg.core.apply`) on NumPy views of the
data (CPU; DLPack, zero-copy) or on CuPy views (GPU; DLPack), so the operators work in
imperative autograd (``grad_req`` "write" and "add"), in ``mx.sym`` graphs and in hybridized
blocks. On the CPU the core runs with :mod:`xlinalg.kernels.mxnet`'s table (NumPy's, with
MXNet's own batched LAPACK calls for the factorizations and solves; :func:`cpu_kernels`).

Imperatively the forward rule runs at the call, in the calling thread, so bad input raises
:class:`~xlinalg.LinAlgError` (or ``ValueError``/``TypeError``) synchronously; the custom
operator recorded for autograd receives the computed outputs instead of computing them again.
With the compiled layer a recorded call's forward kernel runs inside the recorded operator
instead (:func:`_computed_in_operator`), and the call waits for it and raises there.
In symbolic graphs no data exists at the call: failing batch entries come out NaN, as under
``jax.jit``.

MXNet's own conventions that differ from the core's are declared in one place:
:data:`ARG_NAMES`, :data:`EXTRA_PARAMS` and :func:`mxnet_shape` (MXNet has no 0-d arrays).
"""

from __future__ import annotations

import contextlib
import ctypes
import inspect
import itertools
import json
import math
import sys
import threading

import array_api_compat
import numpy as np

from .. import lapack
from ..core import apply, operators
from ..core.memo import memo
from ..kernels.mxnet_memory import DLPACK, copy_to_ndarray, to_ndarray, to_numpy
from ..lapack import mxnet_op
from . import mxnet_grad_req

#: MXNet names the array arguments of every linalg operator A, B, C in order.
ARG_NAMES = ("A", "B", "C")

#: Parameters MXNet has beyond the core's, with their defaults. ``axis`` is the axis of the
#: matrix rows (the columns are always the last axis): ``gemm(A, B, C, axis=k)`` is
#: ``swapaxes(gemm(swapaxes(A, k, -2), ...), k, -2)``.
EXTRA_PARAMS = {
    "gemm": {"axis": -2},
    "gemm2": {"axis": -2},
}

#: Keywords every MXNet operator function takes besides its parameters.
CALL_KEYWORDS = ("out", "name")

_OP_PREFIX = "xlinalg_"
_registered: set[str] = set()
_lock = threading.Lock()


def _mx():
    import mxnet

    return mxnet


def is_array(x) -> bool:
    """Whether ``x`` is an MXNet NDArray or Symbol (never imports MXNet)."""
    mx = sys.modules.get("mxnet")
    nd, sym = getattr(mx, "nd", None), getattr(mx, "sym", None)
    if nd is None or sym is None:  # not imported, or not the real package
        return False
    return isinstance(x, (nd.NDArray, sym.Symbol))


# ---- MXNet's conventions ------------------------------------------------------------------------
def mxnet_shape(shape: tuple) -> tuple:
    """MXNet's shape for a core output shape. With MXNet's legacy shape semantics (the
    default) there are no 0-d arrays: one number per unbatched matrix (sumlogdiag, det,
    slogdet of a 2-D input) has shape ``(1,)``; with NumPy shape semantics
    (``mx.util.set_np_shape(True)``) it has shape ``()``, as MXNet's own operators do."""
    if len(shape) or _mx().util.is_np_shape():
        return tuple(shape)
    return (1,)


def _row_axis(op, params, ndim: int) -> int | None:
    """The normalized ``axis`` of ``op`` for ``ndim``-dimensional arrays, or ``None`` when it is
    the default (second to last)."""
    if "axis" not in EXTRA_PARAMS.get(op.name, {}):
        return None
    axis = params["axis"]
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op.name}: axis {axis} is out of range for {ndim}-dimensional arrays")
    axis %= ndim
    if axis == ndim - 1:
        raise ValueError(f"{op.name}: axis {params['axis']} is the column axis; the row axis must differ from the last axis")
    return None if axis == ndim - 2 else axis


def _swap(x, axis):
    """Swap ``axis`` and the second-to-last axis of an array (or a shape tuple)."""
    if axis is None:
        return x
    if isinstance(x, tuple):
        s = list(x)
        s[axis], s[-2] = s[-2], s[axis]
        return tuple(s)
    return x.swapaxes(axis, x.ndim - 2)


# ---- parameters -----------------------------------------------------------------------------------
def split_params(op, params: dict) -> tuple[dict, dict]:
    """``(core parameters resolved with defaults, MXNet extras resolved with defaults)``."""
    extras = dict(EXTRA_PARAMS.get(op.name, {}))
    core = {}
    for k, v in params.items():
        if k in extras:
            if isinstance(v, bool) or int(v) != v:
                raise TypeError(f"{op.name}: parameter {k} must be an int, got {v!r}")
            extras[k] = int(v)
        else:
            core[k] = v
    return apply.resolve_params(op, core), extras


@memo
def _resolved(op, params: tuple) -> tuple:
    """``(core parameters, MXNet extras, their encoding)`` of a call's ``(name, type, value)``
    triples."""
    core, extras = split_params(op, {k: v for k, _, v in params})
    return core, extras, _encode(core, extras)


def _encode(core: dict, extras: dict) -> str:
    return json.dumps({**core, **extras}, sort_keys=True)


def _decode(op, text: str) -> tuple[dict, dict]:
    return split_params(op, json.loads(text))


# ---- validation and shapes without data -------------------------------------------------------------
def _dtype(d):
    try:
        return np.dtype(d)
    except TypeError:
        return np.dtype(object)


def validate(op, shapes, dtypes, core: dict, extras: dict) -> tuple:
    """Check a call from shapes and dtypes alone (the core's signature check, same messages);
    return the shapes as the core sees them (``axis`` moved to the second-to-last place)."""
    if len(shapes) != len(op.args):
        raise TypeError(f"{op.name}: expected {len(op.args)} array argument(s), got {len(shapes)}")
    shapes = tuple(_swap(tuple(s), _row_axis(op, extras, len(s)) if len(s) >= 2 else None) for s in shapes)
    apply.check_signature(op, shapes, [_dtype(d).name for d in dtypes], core)
    return shapes


@memo
def _validated(op, text: str, shapes: tuple, dtypes: tuple) -> tuple:
    """The MXNet output shapes of a call with the parameters ``text`` (:func:`_encode`) on arrays
    of ``shapes`` and ``dtypes``, after :func:`validate` (which raises for a bad call; remembered
    for a good one)."""
    core, extras = _decode(op, text)
    return output_shapes(op, validate(op, shapes, dtypes, core, extras), core, extras)


def output_shapes(op, core_shapes_in, core: dict, extras: dict) -> tuple:
    """MXNet output shapes for (validated, axis-moved) input shapes: the spec's shape rule."""
    _, outs, _ = apply.check_signature(op, core_shapes_in, ["float64"] * len(op.args), core)
    return tuple(
        mxnet_shape(_swap(s, _row_axis(op, extras, len(s)) if extras and o.ndim == 2 else None))
        for s, o in zip(outs, op.outputs)
    )


# ---- data between MXNet and the core -------------------------------------------------------------------
def to_core(x, axis=None, shape=None, device=None):
    """The data of NDArray ``x`` as an array the core runs on: on the CPU a read-only NumPy
    view (DLPack, zero-copy; a copy with NumPy < 1.22), on a GPU a CuPy view (DLPack).
    ``shape``, ``device``: ``x``'s shape and device type where the caller has them (each
    query is a call into MXNet)."""
    if (device or x.context.device_type) == "gpu":  # pragma: no cover - no GPU build of MXNet here
        import cupy

        y = cupy.from_dlpack(x.to_dlpack_for_read())
    else:
        y = to_numpy(x, None if shape is None else math.prod(shape))
    return _swap(y, axis)


def from_core(y, ctx, dtype):
    """An NDArray on ``ctx`` holding the core's output ``y`` (sharing its memory when ``y``
    is a contiguous, writeable NumPy array; a copy of a CuPy array, :func:`_gpu_copy`)."""
    if isinstance(y, np.generic):  # NumPy reductions of one matrix give scalars
        y = np.asarray(y)
    if not isinstance(y, np.ndarray):
        return _gpu_copy(y, ctx, dtype)
    if DLPACK and y.size and ctx.device_type == "cpu" and y.dtype == np.dtype(dtype):
        return to_ndarray(y)
    return copy_to_ndarray(y, ctx, dtype)


def _gpu_copy(y, ctx, dtype):  # pragma: no cover - no GPU build of MXNet here
    """A new NDArray on the GPU ``ctx`` holding the CuPy array ``y`` (any strides) as ``dtype``,
    with ``ctx``'s device current (:func:`_on_device`, around every call of the core). MXNet's
    memory, written by CuPy through DLPack on its current stream, which is synchronized before
    MXNet's engine (whose streams know nothing of CuPy's) may read it; never CuPy's own memory,
    whose release from MXNet would call back into Python."""
    import cupy

    out = _mx().nd.empty(y.shape, ctx=ctx, dtype=dtype)
    if y.size:
        cupy.from_dlpack(out.to_dlpack_for_write())[...] = y
        cupy.cuda.get_current_stream().synchronize()
    return out


def _on_device(ctx):
    """A context manager: CuPy's current device is ``ctx``'s inside it, where ``ctx`` is a GPU
    (the core's CuPy calls, its status checks and copies run there, not on whatever device the
    thread had current); nothing for the CPU."""
    if ctx.device_type != "gpu":
        return contextlib.nullcontext()
    import cupy  # pragma: no cover - no GPU build of MXNet here

    return cupy.cuda.Device(ctx.device_id)  # pragma: no cover


def _write(dst, req, value):
    """Store ``value`` (a core array) into the NDArray ``dst`` as ``req`` asks (an MXNet copy
    or add pushed to the engine; the custom operator completes when it has run)."""
    if req == "null":
        return
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if value.size == 0:
        return
    if dst.ndim == 0:
        # 0-d arrays (NumPy shape semantics) are unknown to MXNet's engine threads: copy here
        value = _host(value).reshape(dst.shape).astype(dst.dtype, copy=False)
        dst._sync_copyfrom(value + dst.asnumpy() if req == "add" else value)
        return
    src = from_core(value.reshape(dst.shape), dst.context, dst.dtype)
    mx = _mx()
    if req == "add":
        mx.nd.elemwise_add(dst, src, out=dst)
    else:
        src.copyto(dst)


def _host(value):
    """A NumPy array holding ``value`` (a NumPy array or scalar, or a CuPy array)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    return value.get()  # pragma: no cover - CuPy on a GPU


# ---- kernels ----------------------------------------------------------------------------------------
_cpu_kernels = None


def cpu_kernels():
    """The kernel table the core runs with on data from CPU NDArrays: NumPy's, with MXNet's own
    batched LAPACK calls for the factorizations and solves
    (:class:`xlinalg.kernels.mxnet.MxnetKernels`; imported, with MXNet, on first use)."""
    global _cpu_kernels
    if _cpu_kernels is None:
        from ..kernels import mxnet as _kernels

        _cpu_kernels = _kernels.cpu_kernels()
    return _cpu_kernels


def _prepare(op, inputs, core):
    """:func:`apply.prepare` on the core arrays, with the adapter's CPU kernels for NumPy."""
    call = apply.prepare(op, inputs, core, xp=_namespace(inputs))
    if isinstance(inputs[0], np.ndarray):
        call.kern = cpu_kernels()
    return call


# ---- the custom operator ---------------------------------------------------------------------------------
#: Outputs computed eagerly at the call, handed to the recorded custom operator by token.
_stash: dict[str, tuple] = {}
_tokens = itertools.count()


def _core_outputs(op, call, values):
    """MXNet-shaped outputs back to the core's shapes (undo :func:`mxnet_shape`)."""
    return tuple(
        v.reshape(()) if spec.ndim == 0 and not call.batch else v for v, spec in zip(values, op.outputs)
    )


def _vjp(op, core: dict, extras: dict, inputs, outputs, cotangents, residuals=None, out=None) -> tuple:
    """The input cotangents (core arrays in MXNet's layout) of a call with MXNet-laid-out core
    arrays: ``axis`` moved to the core's place and back, MXNet's output shapes undone;
    ``residuals`` those of :func:`xlinalg.core.apply.forward_saving` (core layout) or ``None``;
    ``out``: the arrays the cotangents are to end in, written directly where the compiled
    reverse can (:func:`xlinalg.core.apply.vjp`; a cotangent that *is* its ``out`` is there)."""

    rows = {}  # row axis by rank

    def axis(x, matrix=True):
        if not (extras and matrix):
            return None
        if x.ndim not in rows:
            rows[x.ndim] = _row_axis(op, extras, x.ndim)
        return rows[x.ndim]

    call = _prepare(op, [_swap(x, axis(x)) for x in inputs], core)
    outs = [_swap(y, axis(y, s.ndim == 2)) for y, s in zip(outputs, op.outputs)]
    cots = [_swap(g, axis(g, s.ndim == 2)) for g, s in zip(cotangents, op.outputs)]
    if out is not None:  # (not where an axis is moved: not the core's layout)
        out = [d if axis(x) is None else None for d, x in zip(out, inputs)]
    grads = apply.vjp(call, _core_outputs(op, call, outs), _core_outputs(op, call, cots), residuals=residuals, out=out)
    return tuple(_swap(g, axis(x)) for g, x in zip(grads, inputs))


def register(op) -> str:
    """Register the custom operator ``xlinalg_<op>`` with MXNet (once) and return its name
    (graphs exported with it load wherever it is registered: ``import xlinalg.mxnet``)."""
    op_type = _OP_PREFIX + op.name
    with _lock:
        if op_type in _registered:
            return op_type
        mx = _mx()
        mxnet_grad_req.watch()  # before the variables the caller marks next
        nargs = len(op.args)

        class Op(mx.operator.CustomOp):
            def __init__(self, core, extras, token):
                super().__init__()
                self.core, self.extras, self.token = core, extras, token

            def _axis(self, x):
                return _row_axis(op, self.extras, x.ndim) if self.extras else None

            def forward(self, is_train, req, in_data, out_data, aux):
                outs = _stash.pop(self.token, None) if self.token else None
                with _on_device(in_data[0].context):
                    if outs is None:
                        inputs = [to_core(x, self._axis(x)) for x in in_data]
                        call = _prepare(op, inputs, self.core)
                        outs = apply.forward(call, check=False)  # no data at the call: NaN on failure
                        outs = tuple(_swap(y, self._axis(y)) if y.ndim >= 2 and s.ndim == 2 else y for y, s in zip(outs, op.outputs))
                    for dst, r, y in zip(out_data, req, outs):
                        _write(dst, r, y)

            def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
                if all(r == "null" for r in req):
                    return
                data = (in_data, out_data, out_grad)
                with _on_device(in_data[0].context):
                    grads = _vjp(op, self.core, self.extras, *([to_core(x) for x in arrays] for arrays in data))
                    for dst, r, g in zip(in_grad, req, grads):
                        _write(dst, r, g)

        class Prop(mx.operator.CustomOpProp):
            def __init__(self, params="{}", token=""):
                super().__init__(need_top_grad=True)
                self.core, self.extras = _decode(op, params)
                self.token = token

            def list_arguments(self):
                return list(ARG_NAMES[:nargs])

            def list_outputs(self):
                return list(op.output_names)

            def infer_shape(self, in_shape):
                shapes = [tuple(s) for s in in_shape]
                moved = validate(op, shapes, [np.float64] * nargs, self.core, self.extras)
                return in_shape, list(output_shapes(op, moved, self.core, self.extras)), []

            def infer_type(self, in_type):
                names = [np.dtype(t).name for t in in_type]
                for name, arg in zip(names, op.args):
                    if name not in apply.SUPPORTED_DTYPES:
                        raise TypeError(f"{op.name}: argument {arg.name} has unsupported dtype {name}; supported: {', '.join(apply.SUPPORTED_DTYPES)}")
                if len(set(names)) > 1:
                    raise TypeError(f"{op.name}: arguments must share one dtype, got {', '.join(names)}")
                return in_type, [in_type[0]] * len(op.outputs), []

            def create_operator(self, ctx, in_shapes, in_dtypes):
                return Op(self.core, self.extras, self.token)

        mx.operator.register(op_type)(Prop)
        _registered.add(op_type)
    return op_type


#: The Array API namespace of each array type the core has run on here (NumPy's, CuPy's).
_namespaces: dict[type, object] = {}


def _namespace(arrays):
    """The namespace of ``arrays`` (array_api_compat's answer, looked up once per array type)."""
    kind = type(arrays[0])
    if any(type(x) is not kind for x in arrays):
        return array_api_compat.array_namespace(*arrays)
    if kind not in _namespaces:
        _namespaces[kind] = array_api_compat.array_namespace(*arrays)
    return _namespaces[kind]


# ---- the public function -----------------------------------------------------------------------------------
def signature(op) -> inspect.Signature:
    """``mx.nd.linalg.<op>``'s signature: arrays A, B, C, the parameters with their defaults
    (MXNet's extras included), ``out`` and ``name``."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(n, kind) for n in ARG_NAMES[: len(op.args)]]
    defaults = {**op.params, **EXTRA_PARAMS.get(op.name, {})}
    params += [inspect.Parameter(k, kind, default=v) for k, v in defaults.items()]
    params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=None) for k in CALL_KEYWORDS]
    return inspect.Signature(params)


def bind(op):
    """``op`` as a function of NDArrays (differentiable with ``mx.autograd``) or Symbols, with
    ``mx.nd.linalg.<op>``'s signature and output layout (a tuple for several outputs, a
    multi-output Symbol for Symbols)."""
    sig = signature(op)
    nargs = len(op.args)
    names = ARG_NAMES[:nargs]

    def fn(*args, **kwargs):
        if kwargs or len(args) != nargs:
            try:
                values = sig.bind(*args, **kwargs).arguments
            except TypeError as exc:
                raise TypeError(f"{op.name}: {exc}; signature: {op.name}{sig}") from None
        else:  # the common call, the arrays alone: nothing to bind
            values = dict(zip(names, args))
        arrays = [values.get(n) for n in names]
        for n, x in zip(names, arrays):
            if not is_array(x):
                raise TypeError(f"{op.name}: argument {n} must be an MXNet NDArray or Symbol, got {type(x).__name__}")
        mx = _mx()
        for n, x in zip(names, arrays):
            if isinstance(x, mx.numpy.ndarray):
                raise TypeError(f"{op.name}: argument {n} is an mx.np array; MXNet's custom operators take legacy NDArrays (use x.as_nd_ndarray())")
        out, name = values.get("out"), values.get("name")
        # typed pairs: a key must tell True from 1 (a bool parameter rejects the int)
        params = tuple((k, type(v), v) for k, v in values.items() if k not in names and k not in CALL_KEYWORDS)
        core, extras, text = _resolved(op, params)
        op_type = register(op)
        if any(isinstance(x, mx.sym.Symbol) for x in arrays):
            if not all(isinstance(x, mx.sym.Symbol) for x in arrays):
                raise TypeError(f"{op.name}: cannot mix NDArrays and Symbols")
            return mx.sym.Custom(*arrays, op_type=op_type, params=text, name=name)
        return _imperative(op, op_type, text, arrays, core, extras, out)

    fn.__signature__ = sig
    fn.__name__ = fn.__qualname__ = op.name
    fn.operator = op
    return fn


def _imperative(op, op_type, text, arrays, core, extras, out):
    ctxs = {x.context for x in arrays}
    if len(ctxs) > 1:
        raise ValueError(f"{op.name}: arrays on different devices ({', '.join(map(str, ctxs))})")
    (ctx,) = ctxs
    with _on_device(ctx):
        return _imperative_on(ctx, op, op_type, text, arrays, core, extras, out)


def _imperative_on(ctx, op, op_type, text, arrays, core, extras, out):
    mx = _mx()
    shapes = [tuple(x.shape) for x in arrays]
    dtypes = [x.dtype for x in arrays]
    out_shapes = _validated(op, text, tuple(shapes), tuple(dtypes))
    if ctx.device_type == "cpu" and mx.autograd.is_recording():
        results = _computed_in_operator(op, text, arrays, shapes, out_shapes, core, extras, out)
        if results is not None:
            return results if op.multiple_outputs else results[0]
    inputs = [
        to_core(x, _row_axis(op, extras, len(s)) if extras else None, s, ctx.device_type) for x, s in zip(arrays, shapes)
    ]
    call = _prepare(op, inputs, core)
    if mx.autograd.is_recording() and ctx.device_type == "cpu":  # the recorded operator keeps residuals
        outs, residuals = apply.forward_saving(call)  # raises LinAlgError here, at the call
    else:
        outs, residuals = apply.forward(call), None
    ndim = len(call.batch) + 2
    axis = _row_axis(op, extras, ndim) if extras else None
    outs = tuple(_swap(y, axis if s.ndim == 2 else None) for y, s in zip(outs, op.outputs))
    outs = tuple(y.reshape(mxnet_shape(y.shape)) for y in outs)
    dtype = dtypes[0]
    if out is None and not mx.autograd.is_recording():
        # outputs share memory with nothing the caller holds (the inputs are views of NDArrays;
        # CuPy's outputs are copied into MXNet's memory by from_core)
        outs = tuple(y.copy() if isinstance(y, np.ndarray) and any(np.may_share_memory(y, x) for x in inputs) else y for y in outs)
        results = tuple(from_core(y, ctx, dtype) for y in outs)
    else:
        recorded = _recorded_operator() if _recordable(ctx.device_type, shapes, [y.shape for y in outs]) else None
        if recorded is not None:
            # The outputs and the forward's residuals (hidden outputs): copied by the operator's
            # forward from the computed arrays, staged under a token and alive until it has run
            # (the wait in _record). The graph holds them in MXNet's memory, not NumPy's (MXNet's
            # engine releases them, at exit too, and the release of NumPy-backed NDArrays calls
            # into Python: an abort when Python is shutting down).
            computed = [np.ascontiguousarray(y, dtype) for y in outs]
            saved = [np.ascontiguousarray(_host(r), dtype) for r in residuals or ()]
            reverse = _reverse(call, len(saved), computed) if axis is None else ""
            staged = [*computed, *saved]
            results = _record(op, text, recorded, arrays, shapes, [y.shape for y in staged], staged, "", reverse, out)
        else:
            token = f"{next(_tokens)}"
            _stash[token] = outs
            try:
                results = mx.nd.Custom(*arrays, op_type=op_type, params=text, token=token, out=out)
            except BaseException:
                _stash.pop(token, None)
                raise
        results = tuple(results) if isinstance(results, (list, tuple)) else (results,)
    return results if op.multiple_outputs else results[0]


# ---- the recorded operator ---------------------------------------------------------------------------
def _record(op, text, recorded, arrays, shapes, out_shapes, staged, forward, reverse, out) -> tuple:
    """The outputs of ``op`` from the recorded operator called on ``arrays`` (of ``shapes``), with
    outputs of ``out_shapes`` (``op``'s, then the residuals its reverse reads, which the caller
    does not see), after its forward has run: ``staged`` (NumPy arrays) are staged under the
    call's token for that forward, the computed outputs and residuals it copies or, with a
    ``forward`` entry, the status that entry writes; ``reverse``: the entry of its backward
    (:func:`xlinalg.lapack.mxnet_op.call_attribute`)."""
    # A marked variable gets its gradient through a recorded reshape (a view: no copy), whose
    # backward honours grad_req="add": extension operators are not told the request and always
    # write. Variables known to be marked "write" need none.
    args = [_recorded_view(x, s) if _needs_view(x) else x for x, s in zip(arrays, shapes)]
    visible = len(op.outputs)
    if out is not None:  # the caller's arrays, then the residuals'
        x = arrays[0]
        out = [*(out if isinstance(out, (list, tuple)) else [out])]
        out += [_mx().nd.empty(s, x.context, x.dtype) for s in out_shapes[visible:]]
    token = next(_tokens)
    call = mxnet_op.call_attribute(len(args), tuple(out_shapes), token, forward, reverse, f"{op.name} {text}")
    mxnet_op.stage(token, staged)
    try:
        results = recorded(args, call, out)
        results[0].wait_to_read()
    finally:
        mxnet_op.discard(token)
    return tuple(results[:visible])


def _computed_in_operator(op, text, arrays, shapes, out_shapes, core, extras, out) -> tuple | None:
    """The outputs (of ``out_shapes``) of a recorded CPU call (validated) whose forward entry
    runs in the recorded operator, on MXNet's buffers (:func:`xlinalg.lapack.mxnet_op.forward`:
    no NumPy outputs computed at the call and copied into MXNet's), raising
    :class:`~xlinalg.LinAlgError` after it has run where its status says an entry failed;
    the residuals that the reverses of ``potrs``, ``det`` and ``slogdet`` read are further
    outputs of the operator (:func:`xlinalg.lapack.mxnet_op.residual_shapes`), not returned.
    ``None`` where the call is computed at the call instead: operators without such an entry,
    an input broadcast over the batch, ``axis`` moved, and what :func:`_recordable` excludes."""
    if not _one_batch(shapes) or (extras and any(_row_axis(op, extras, len(s)) is not None for s in shapes)):
        return None
    residual_shapes = mxnet_op.residual_shapes(op, shapes, out_shapes)
    produced = (*out_shapes, *residual_shapes)
    if not _recordable("cpu", shapes, produced):
        return None
    recorded = _recorded_operator()
    if recorded is None:
        return None
    kern = cpu_kernels()
    threads = kern.threads((*shapes, *out_shapes))
    forward, has_status = mxnet_op.forward(op, core, len(arrays), len(produced), threads)
    if not forward:
        return None
    lapack.use_blas_threads(threads[0])
    status = [np.empty(shapes[0][:-2], np.int32)] if has_status else []
    reverse = mxnet_op.reverse(op, core, len(residual_shapes), len(arrays), len(out_shapes), threads)
    results = _record(op, text, recorded, arrays, shapes, produced, status, forward, reverse, out)
    if status and np.count_nonzero(status[0]):
        call = _prepare(op, [to_core(x, None, s, "cpu") for x, s in zip(arrays, shapes)], core)
        apply.checked(call, results, status[0])
    return results


def _one_batch(shapes) -> bool:
    """Whether arrays of ``shapes`` share their batch shape (none is broadcast over the batch:
    the compiled entries take them as they are, and no cotangent is summed)."""
    return all(tuple(s[:-2]) == tuple(shapes[0][:-2]) for s in shapes)


def _recordable(device: str, shapes, out_shapes) -> bool:
    """Whether a call can be recorded as ``xlinalg_recorded``: arrays on the CPU (``device``) of
    ``shapes``, none of them empty (MXNet's legacy shapes read a zero as "unknown"), and outputs
    of ``out_shapes``, none 0-d (NumPy shape semantics) or empty."""
    return device == "cpu" and all(map(math.prod, shapes)) and all(len(s) and math.prod(s) for s in out_shapes)


def _reverse(call, residuals: int, outputs) -> str:
    """The reverse entry of the recorded operator (its attribute's ``reverse`` field) for a
    prepared ``call`` (core layout) with ``residuals`` and its computed ``outputs``: its
    backward then runs the VJP entry itself (:func:`xlinalg.lapack.mxnet_op.reverse`), on the
    BLAS and batch threads its compiled rule would run on
    (:meth:`~xlinalg.kernels.numpy.NumpyKernels.threads`); ``""`` (the callback runs the rules)
    where an input was broadcast (its cotangent is summed over the batch)."""
    if not _one_batch(call.shapes):
        return ""
    threads = call.kern.threads((*call.inputs, *outputs))
    return mxnet_op.reverse(call.op, call.params, residuals, len(call.inputs), len(outputs), threads)


def _needs_view(x) -> bool:
    """Whether ``x`` reaches the recorded operator through :func:`_recorded_view`: it has a
    gradient buffer whose request is not known to be "write" (:mod:`.mxnet_grad_req`)."""
    return not mxnet_grad_req.writes(x) and x.grad is not None


def _recorded_view(x, shape):
    """A new NDArray over ``x``'s memory (shape ``shape``, its own), recorded by autograd as a
    reshape: ``x.reshape(shape)`` without the Python around MXNet's C call (its checks cost more
    than the call)."""
    from mxnet.base import _LIB, NDArrayHandle, c_array, check_call

    handle = NDArrayHandle()
    check_call(_LIB.MXNDArrayReshape64(x.handle, len(shape), c_array(ctypes.c_int64, shape), False, ctypes.byref(handle)))
    return type(x)(handle=handle, writable=x.writable)


def _recorded_operator():
    """``xlinalg_recorded`` (:func:`xlinalg.lapack.mxnet_op.operator`), or ``None`` where it is off."""
    return mxnet_op.operator(_recorded_backward)


@memo
def _decode_spec(spec: str) -> tuple:
    """``(operator, core parameters, MXNet extras)`` of a recorded call's ``spec``."""
    name, text = spec.split(" ", 1)
    op = operators()[name]
    return (op, *_decode(op, text))


def _recorded_backward(spec: str, arrays: list) -> None:
    """The backward pass of ``xlinalg_recorded``: ``arrays`` are MXNet's (NumPy views), the
    cotangents of the recorded operator's outputs (the operator's, then the residuals': unused),
    its inputs (the operator's arrays), its outputs (the operator's, then the forward's
    residuals), and one cotangent per input, written here."""
    op, core, extras = _decode_spec(spec)
    nargs, nouts = len(op.args), len(op.outputs)
    produced = (len(arrays) - 2 * nargs) // 2  # each output has a cotangent, each input too
    cots, inputs = arrays[:nouts], arrays[produced : produced + nargs]
    end = produced + nargs  # the recorded operator's outputs start here
    outputs, residuals = arrays[end : end + nouts], tuple(arrays[end + nouts : end + produced]) or None
    dsts = arrays[end + produced :]
    grads = _vjp(op, core, extras, inputs, outputs, cots, residuals, out=dsts)
    for dst, g in zip(dsts, grads):
        if dst.size and g is not dst:  # (the compiled reverse wrote most of them in place)
            np.copyto(dst, g)
