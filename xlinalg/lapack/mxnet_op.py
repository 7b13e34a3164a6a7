"""The compiled layer for MXNet: one recorded operator, ``xlinalg_recorded``.

MXNet's Python custom operators (``mx.operator.CustomOp``) cost about a millisecond per forward
and backward pass (shape and type callbacks, an operator object per call, a thread hand-over),
more than the kernels themselves up to n ≈ 256. ``src/mxnet_op.cpp`` is a C++ operator for
MXNet's extension interface (``mxnet/lib_api.h``, shipped with MXNet since 1.7) that costs a
small multiple of a native operator's call (``potrf`` at n = 4, forward+backward: 300 µs against
MXNet's own 166 µs): its inputs are the operator's arrays, its outputs the operator's outputs
and after them, hidden from the caller, the residuals its reverse reuses
(:func:`xlinalg.core.apply.forward_saving`, :func:`residual_shapes`); its forward runs the
operator's forward entry on MXNet's buffers where the call says which (:func:`forward`; the
status of each matrix goes to the array :func:`stage` put under the call's token), and
otherwise copies the outputs and residuals already computed at the call from where
:func:`stage` put them (the caller keeps that memory until the forward has run); its backward
runs the operator's VJP entry of the C ABI (:mod:`xlinalg.lapack.table`) on MXNet's buffers
where the call says which (:func:`reverse`: no Python in the backward pass), and otherwise
hands every array to one Python callback that runs xlinalg's VJP rules on NumPy views of the
buffers (no copies). It is built on first use, with
``entries.cpp`` (the layer's kernels) and the MXNet package's own ``lib_api.cc``
(:mod:`xlinalg.lapack.build`), and loaded with ``mx.library.load``.

:func:`operator` is ``None`` where it is off (``XLINALG_KERNELS=python``) or cannot be built
(no compiler, an MXNet without the extension interface): :func:`reason` says why; with
``XLINALG_KERNELS=compiled`` that is an ``ImportError``. The adapter then records through
MXNet's custom operators, as it does for symbolic graphs.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from ..core.memo import memo
from . import build, mode
from .build import SRC
from .table import PRODUCTS, SAVING, TABLE

NAME = "xlinalg_recorded"
#: MXNet finds the library's entry points by name: they keep the default visibility.
FLAGS = tuple(f for f in build.COMPILE_FLAGS if f != "-fvisibility=hidden")
#: MXNet's dtype codes (``mxnet/lib_api.h``: ``MXDType``) that reach the callback.
DTYPES = {0: np.float32, 1: np.float64}

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.POINTER(ctypes.c_void_p),
    ctypes.POINTER(ctypes.POINTER(ctypes.c_int64)),
    ctypes.POINTER(ctypes.c_int),
    ctypes.POINTER(ctypes.c_int),
    ctypes.c_void_p,
    ctypes.c_int,
)

_state: dict = {}


def operator(backward):
    """``xlinalg_recorded`` (a callable of its arrays, its attribute :func:`call_attribute` and
    ``out``: :class:`_Invoke`) with ``backward`` as its backward pass, or ``None`` where the
    recorded operator is off (:func:`reason`).

    ``backward(spec, arrays)`` gets the ``spec`` of the call (:func:`call_attribute`) and NumPy
    views of every array of MXNet's backward pass, in its order: output cotangents (the
    residuals' too), inputs (the operator's arrays), outputs (the operator's, then the
    residuals), and last the input cotangents to write (writeable views). Its exceptions become
    MXNet errors of the backward pass.

    Raises
    ------
    ImportError
        With ``XLINALG_KERNELS=compiled`` when the operator cannot be built or loaded.
    """
    if mode() == "python":
        return None
    if "operator" not in _state:
        try:
            _state["operator"], _state["reason"] = _load(backward)
        except Exception as exc:  # whatever goes wrong, auto mode uses MXNet's custom operators
            _state["operator"], _state["reason"] = None, f"{type(exc).__name__}: {exc}"
    if _state["operator"] is None and mode() == "compiled":
        raise ImportError(f"XLINALG_KERNELS=compiled, but the MXNet recorded operator is not available: {_state['reason']}")
    return _state["operator"]


def reason() -> str:
    """Why :func:`operator` is ``None`` (``"loaded"`` when it is not)."""
    if mode() == "python":
        return "XLINALG_KERNELS=python"
    return _state.get("reason", "not loaded yet (the first call under mx.autograd.record() loads it)")


def _load(backward):
    import mxnet as mx

    package = Path(mx.__file__).parent
    lib_api = package / "src" / "lib_api.cc"
    if not (package / "include" / "mxnet" / "lib_api.h").is_file():
        return None, f"MXNet {mx.__version__} has no extension interface (mxnet/lib_api.h)"
    target, why = build.cached_library(
        "xlinalg_mxnet", "MXNet recorded operator", [SRC / "mxnet_op.cpp", SRC / "entries.cpp", lib_api],
        [package / "include"], (mx.__version__,), FLAGS,
    )
    if target is None:
        return None, why
    mx.library.load(str(target), verbose=False)
    lib = ctypes.CDLL(str(target))  # the handle MXNet opened: same globals
    build.set_routines(lib)
    lib.xl_mx_reverses_run.argtypes, lib.xl_mx_reverses_run.restype = [], ctypes.c_int64
    callback = _CALLBACK(_callback(backward))
    lib.xl_mx_set_backward.argtypes, lib.xl_mx_set_backward.restype = [_CALLBACK], None
    lib.xl_mx_set_backward(callback)
    lib.xl_mx_stage.argtypes = [ctypes.c_int64, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int64)]
    lib.xl_mx_stage.restype = None
    lib.xl_mx_discard.argtypes, lib.xl_mx_discard.restype = [ctypes.c_int64], None
    _state["keep"] = (lib, callback)
    return _Invoke(mx), "loaded"


def call_attribute(args: int, out_shapes: tuple, token: int, forward: str, reverse: str, spec: str) -> bytes:
    """The operator's one attribute, ``call``:
    ``"<args>|<outs>|<shapes>|<token>|<forward>|<reverse>|<spec>"``, for ``args`` arrays, outputs
    of ``out_shapes`` (dimensions joined by ``,``, outputs by ``;``), the staged arrays' ``token``,
    the ``forward`` and ``reverse`` entries (:func:`forward`, :func:`reverse`; ``""``: none) and
    the ``spec`` the backward callback gets (last: it may hold any character)."""
    return b"%s%d|%s|%s|%s" % (_call_head(args, out_shapes), token, forward.encode(), reverse.encode(), spec.encode())


@memo
def _call_head(args: int, out_shapes: tuple) -> bytes:
    shapes = ";".join(",".join(map(str, s)) for s in out_shapes)
    return f"{args}|{len(out_shapes)}|{shapes}|".encode()


class _Invoke:
    """``xlinalg_recorded`` called through MXNet's C API: ``(arrays, call, out)`` -> its output
    NDArrays (``out`` itself where given), ``call`` its attribute (:func:`call_attribute`). What
    ``mx.nd.xlinalg_recorded(*arrays, call=call, out=out)`` does, without the Python that MXNet
    generates around every operator (argument checks, attributes formatted anew)."""

    def __init__(self, mx):
        from mxnet.base import _LIB, NDArrayHandle, check_call

        self._handle = ctypes.c_void_p()
        check_call(_LIB.NNGetOpHandle(NAME.encode(), ctypes.byref(self._handle)))
        self._invoke, self._check, self._array_handle = _LIB.MXImperativeInvokeEx, check_call, NDArrayHandle
        self._ndarray = mx.nd.NDArray
        self._key = (ctypes.c_char_p * 1)(b"call")

    def __call__(self, arrays, call: bytes, out=None):
        handles = (self._array_handle * len(arrays))(*(x.handle for x in arrays))
        count = ctypes.c_int(0 if out is None else len(out))
        outputs = ctypes.POINTER(self._array_handle)()
        if out is not None:
            outputs = ctypes.cast((self._array_handle * len(out))(*(y.handle for y in out)), ctypes.POINTER(self._array_handle))
        stypes = ctypes.POINTER(ctypes.c_int)()
        self._check(self._invoke(
            self._handle, len(arrays), handles, ctypes.byref(count), ctypes.byref(outputs), 1, self._key,
            (ctypes.c_char_p * 1)(call), ctypes.byref(stypes),
        ))
        if out is not None:
            return list(out)
        return [self._ndarray(ctypes.cast(outputs[i], self._array_handle)) for i in range(count.value)]


def stage(token: int, arrays) -> None:
    """Stage the C-contiguous NumPy ``arrays`` (a call's computed outputs, or the int32 status its
    forward entry writes) under ``token`` for the forward of the ``xlinalg_recorded`` call whose
    attribute holds ``token``; that forward copies them (writes the status) and drops the token.
    The caller keeps ``arrays`` alive until the forward has run, and calls :func:`discard` after
    (harmless where the forward has run)."""
    lib = _state["keep"][0]
    count = len(arrays)
    data = (ctypes.c_void_p * count)(*(a.__array_interface__["data"][0] for a in arrays))
    sizes = (ctypes.c_int64 * count)(*(a.nbytes for a in arrays))
    lib.xl_mx_stage(token, count, data, sizes)


def discard(token: int) -> None:
    """Drop what ``token`` staged where no forward has copied it."""
    _state["keep"][0].xl_mx_discard(token)


def reverses_run() -> int:
    """How many backward passes of the recorded operator ran their VJP entry without Python
    (0 while it is not loaded)."""
    keep = _state.get("keep")
    return 0 if keep is None else keep[0].xl_mx_reverses_run()


def residual_shapes(op, shapes, out_shapes) -> tuple:
    """The shapes of the residuals that a recorded call of ``op`` on arrays of ``shapes`` (with
    outputs of ``out_shapes``) keeps for its reverse, as further (hidden) outputs of the
    recorded operator after ``op``'s own: those of its variant in :data:`SAVING` (Y = L⁻¹B for
    ``potrs``, LU factors and pivots for ``det`` and ``slogdet``), ``()`` for the others."""
    spec = SAVING.get(op.name)
    return () if spec is None else tuple(tuple(s) for s in spec.residual_shapes(tuple(shapes), tuple(out_shapes)))


def forward(op, params: dict, arrays: int, outputs: int, threads: tuple) -> tuple[str, bool]:
    """``(the forward field of :func:`call_attribute`, whether it writes a status)`` of a
    recorded call of the registered operator ``op`` with the core ``params`` whose forward runs
    in the operator: its forward entry (:mod:`xlinalg.lapack.table`; the variant of
    :data:`SAVING` that also writes the residuals, where ``op`` has one), that entry's arrays as
    indices into the forward's (the ``arrays`` inputs, the ``outputs`` — ``op``'s own, then the
    residuals — and last the int32 status staged for it) and its parameters by name, and
    ``threads`` (as for :func:`reverse`).
    ``("", False)`` where ``op`` has no entry."""
    from ..core import operators

    if operators().get(op.name) is not op:
        return "", False
    return _forward(op, tuple(params.items()), arrays, outputs, tuple(threads))


@memo
def _forward(op, params: tuple, arrays: int, outputs: int, threads: tuple) -> tuple[str, bool]:
    spec = SAVING.get(op.name) or TABLE.get(op.name) or PRODUCTS.get(op.name)
    if spec is None:
        return "", False
    read = spec.forward_args(range(arrays))
    status = (arrays + outputs,) if spec.status else ()
    return _entry(spec, "forward", dict(params), (*read, *range(arrays, arrays + outputs), *status), threads), spec.status


def reverse(op, params: dict, residuals: int, arrays: int, outputs: int, threads: tuple) -> str:
    """The reverse field of :func:`call_attribute` for a recorded call of the registered operator
    ``op`` with the core ``params``: its VJP entry (:mod:`xlinalg.lapack.table`; the variant
    reading the forward's ``residuals`` where there are any), that entry's arrays as indices
    into the backward's (the callback's order: the cotangents of the ``outputs`` and of the
    residuals, the ``arrays`` inputs, the outputs and the residuals, the input cotangents it
    writes) and its parameters by name, and ``threads``: ``(BLAS threads, batch threads)`` of
    the call (:func:`xlinalg.kernels.numpy.thread_split`). ``""`` where ``op`` has no entry (the
    callback runs its rules). The caller makes sure the entry applies: inputs with the call's batch
    shape, in the core's layout."""
    from ..core import operators

    if operators().get(op.name) is not op:  # a modified copy runs its own rules
        return ""
    return _reverse(op, tuple(params.items()), residuals, arrays, outputs, tuple(threads))


@memo
def _reverse(op, params: tuple, residuals: int, arrays: int, outputs: int, threads: tuple) -> str:
    spec = SAVING.get(op.name) if residuals else TABLE.get(op.name) or PRODUCTS.get(op.name)
    if spec is None or spec.residuals != residuals:
        return ""
    produced = outputs + residuals  # the recorded operator's outputs
    start = produced + arrays  # its outputs, then the input cotangents
    found = spec.vjp_args(range(produced, start), range(start, start + produced), range(outputs))
    written = range(start + produced, start + produced + arrays)
    return _entry(spec, "vjp", dict(params), (*found, *written), threads)


def _entry(spec, kind: str, params: dict, arrays, threads: tuple) -> str:
    """``"<entry>;<arrays>;<parameters>;<BLAS threads>"``: the ``kind`` entry of ``spec``, the
    indices of its arrays (``None``: absent), its parameters by name (``threads``: the batch
    threads of ``threads``), and the BLAS threads of ``threads``."""
    indices = ",".join(str(-1 if k is None else k) for k in arrays)
    values = spec.attrs(params)
    if "threads" in values:
        values["threads"] = threads[1]
    pairs = ",".join(f"{k}={repr(float(v)) if isinstance(v, (float, np.floating)) else int(v)}" for k, v in values.items())
    return f"{spec.entry(kind)};{indices};{pairs};{threads[0]}"


def _callback(backward):
    def run(spec, count, data, shapes, ndims, dtypes, error, size):
        try:
            backward(spec.decode(), [_view(data[i], shapes[i], ndims[i], dtypes[i]) for i in range(count)])
            return 0
        except BaseException as exc:  # reported by MXNet at the next wait on the gradients
            message = f"{type(exc).__name__}: {exc}".encode()[: size - 1]
            ctypes.memmove(error, message, len(message))
            return 1

    return run


class _Buffer:
    """An object exposing MXNet's memory to NumPy by the array interface (NumPy's cheapest way to
    view foreign memory: a quarter of a ctypes buffer's cost, per array of every call)."""

    __slots__ = ("__array_interface__",)

    def __init__(self, pointer: int, dims: tuple, dtype: np.dtype):
        self.__array_interface__ = {"data": (pointer, False), "shape": dims, "typestr": dtype.str, "version": 3}


def _view(pointer, shape, ndim, code) -> np.ndarray:
    """A writeable NumPy view of ``ndim`` axes ``shape`` over MXNet's buffer at ``pointer``."""
    dims = tuple(shape[:ndim])
    dtype = np.dtype(DTYPES[code])
    if not pointer or 0 in dims:
        return np.empty(dims, dtype)
    return np.asarray(_Buffer(pointer, dims, dtype))
