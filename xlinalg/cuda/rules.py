"""The GPU layer's operator rules, for any array library with device memory.

``RULES[name]`` maps ``"forward"`` and ``"vjp"`` to functions with the contract of the CPU
layer's rules (:mod:`xlinalg.lapack.rules`): batch axes already broadcast; a forward returns
``(outputs, status)`` (``status``: ``int32`` of the batch shape, non-zero where the entry failed,
whose outputs are then NaN; ``None`` for operators that cannot fail), a VJP the input
cotangents projected onto each argument's structure. They differ in what they run on: arrays
of one library (:class:`Arrays` says how to allocate, find a pointer and the stream) and the
entries of ``entries.def`` (:class:`Entries`): the CUDA library's ``xl_cuda_*`` on GPU memory,
or the same per-matrix code compiled for the CPU (``xl_hd_*``, :func:`host_entries`), which
runs these rules, and so every binding's path through them, on machines without a GPU.

The per-matrix entries take square orders up to :data:`MAX_ORDER`, and ``syevd``'s forward up to
:data:`BLOCK_MAX_ORDER` (above ``MAX_ORDER`` a block of threads per matrix: ``syevd_block``);
:func:`runner` returns ``None`` for larger ones (the pure rules run, on the library's own kernels).

Every entry comes in three layouts (:func:`layout`): ``packed`` runs on the arrays as they are
(row-major ``(batch, ...)``: a thread's matrix is contiguous, so the threads of a warp touch
addresses a matrix apart), ``interleaved`` on their transposes ``(..., batch)``, made by the
array library before the call and undone after it (each thread's element ``q`` next to its
neighbours': every access of the kernels coalesced, for two more passes over the arrays), and
``staged`` on the arrays as they are, each warp copying its 32 entries' arrays into shared
memory first (coalesced) and the outputs back after (where a group's arrays take more than
:data:`STAGE_MAX_BYTES`, or than a block may have on the device, the call runs packed).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
from functools import cache

import numpy as np

from .entries import DTYPES, LAYOUTS, entries
from .sources import constant

#: The largest square order the per-matrix entries take (``kMaxOrder`` of ``src/hd.h``).
MAX_ORDER = constant("kMaxOrder", "hd.h")
#: The largest order of the block entries (``kBlockMaxOrder`` of ``src/block.h``).
BLOCK_MAX_ORDER = constant("kBlockMaxOrder", "block.h")
#: The rules that take larger orders than :data:`MAX_ORDER`: (operator, kind) -> order.
ORDER_LIMITS = {("syevd", "forward"): BLOCK_MAX_ORDER}
#: The entries staged per group (a warp), and the most shared memory a group's arrays may take
#: (``kStageGroup``, ``kStageMaxBytes`` of ``src/per_matrix.h``).
STAGE_GROUP = constant("kStageGroup", "per_matrix.h")
STAGE_MAX_BYTES = constant("kStageMaxBytes", "per_matrix.h")
_SUFFIX = {name: suffix for suffix, name in DTYPES.items()}


#: The layout when ``XLINALG_CUDA_LAYOUT`` is not set.
DEFAULT_LAYOUT = "packed"


def layout() -> str:
    """The layout the GPU entries run in: ``XLINALG_CUDA_LAYOUT`` (``packed``, the default,
    ``interleaved`` or ``staged``), read at each call.

    Raises
    ------
    ValueError
        For another value.
    """
    value = os.environ.get("XLINALG_CUDA_LAYOUT", DEFAULT_LAYOUT)
    if value not in LAYOUTS:
        raise ValueError(f"XLINALG_CUDA_LAYOUT must be one of {sorted(LAYOUTS)}, got {value!r}")
    return value


class Arrays:
    """How the rules use one array library's arrays; subclasses implement every method.

    ``empty(shape, like, dtype=None)`` a new C-contiguous array on ``like``'s device (of its
    dtype, or ``"int32"``); ``contiguous(x)`` ``x`` C-contiguous (itself when it is);
    ``broadcast(x, shape)`` ``x`` broadcast to ``shape`` and made contiguous; ``pointer(x)``
    the address of ``x``'s first element; ``dtype(x)`` ``"float32"``/``"float64"`` (else any
    other string); ``stream(x)`` the stream handle work on ``x`` goes to (``None``: none);
    ``device(x)`` the device's index (``None`` on the host); ``interleave(x, batch)`` the
    C-contiguous transpose ``(size, batch)`` of ``x`` read as ``(batch, size)``;
    ``deinterleave(y, out)`` writes such a transpose back into the C-contiguous ``out``."""


class NumpyArrays(Arrays):
    """NumPy arrays (host memory: for :func:`host_entries`)."""

    def empty(self, shape, like, dtype=None):
        return np.empty(shape, dtype=like.dtype if dtype is None else dtype)

    def contiguous(self, x):
        return np.ascontiguousarray(x)

    def broadcast(self, x, shape):
        return np.ascontiguousarray(np.broadcast_to(x, shape))

    def pointer(self, x):
        return x.ctypes.data

    def dtype(self, x):
        return x.dtype.name

    def stream(self, x):
        return None

    def device(self, x):
        return None

    def interleave(self, x, batch):
        return np.ascontiguousarray(x.reshape(batch, -1).T)

    def deinterleave(self, y, out):
        out.reshape(y.shape[1], -1)[...] = y.T


def stage_capacity(stage: int, itemsize: int) -> int:
    """The bytes of a group's staging area for ``stage`` elements per batch entry of ``itemsize``
    bytes (``stage_capacity`` of ``src/per_matrix.h``: a padded column per entry)."""
    return stage * (STAGE_GROUP | 1) * itemsize


class Entries:
    """Callable entries of ``entries.def``: ``function(name, suffix, layout)`` (the staged
    layout's take :data:`~xlinalg.cuda.entries.STAGE` after the parameters) and whether calls
    take a stream. ``with on_device(index):`` runs the calls inside it on device ``index``;
    ``describe(status)`` names a non-zero status of a call."""

    stream = True

    def function(self, name: str, suffix: str, layout: str = "packed"):
        raise NotImplementedError

    def on_device(self, index):
        """A context manager: the calls in it run on device ``index`` (``None``: where they
        would anyway), and the calling thread's current device is the caller's again after it,
        as the frameworks' own operators leave it. Here (the CPU build) nothing to switch."""
        return NO_SWITCH

    def shared_limit(self, index=None) -> int:
        """The most dynamic shared memory (bytes) a block may ask for on device ``index``; here
        (the CPU build) no limit but :data:`STAGE_MAX_BYTES`."""
        return STAGE_MAX_BYTES

    def describe(self, status: int) -> str:
        return f"error {status}"

    def check(self, status: int, what: str) -> None:
        """Raise ``RuntimeError`` naming ``what`` and the error when ``status`` is not 0."""
        if status:
            raise RuntimeError(f"xlinalg.cuda: {what} failed: {self.describe(status)}")


#: What :meth:`Entries.on_device` gives where there is no device to switch: a context manager
#: that does nothing (reusable).
NO_SWITCH = contextlib.nullcontext()


class DeviceGuard:
    """``with DeviceGuard(switch, restore):``: ``switch()`` on entry returns what ``restore``
    needs to make the caller's device current again (``None``: nothing to restore), which it
    does on exit, whatever happened inside."""

    __slots__ = ("_switch", "_restore", "_saved")

    def __init__(self, switch, restore):
        self._switch, self._restore = switch, restore

    def __enter__(self):
        self._saved = self._switch()

    def __exit__(self, *exc):
        if self._saved is not None:
            self._restore(self._saved)


#: The errors of ``xl_cuda_kernel_image`` that say the library has no code for the device.
NO_CODE = frozenset(
    {
        "cudaErrorNoKernelImageForDevice",
        "cudaErrorInvalidKernelImage",
        "cudaErrorInvalidDeviceFunction",
        "cudaErrorInvalidPtx",
        "cudaErrorUnsupportedPtxVersion",
    }
)


class CudaEntries(Entries):
    """The CUDA library's ``xl_cuda_<name>_<suffix>`` (:func:`xlinalg.cuda.library`)."""

    def __init__(self, lib):
        self._lib = lib
        self._limits: dict = {}  # device -> shared_limit()
        self._images: dict = {}  # device -> xl_cuda_kernel_image()

    def function(self, name, suffix, layout="packed"):
        return getattr(self._lib, entries()[name].symbol(suffix, layout))

    def on_device(self, index):
        if index is None:
            return NO_SWITCH
        return DeviceGuard(lambda: self._switch(index), self._set)

    def _switch(self, index):
        """Make ``index`` current; the device that was (``None`` when it already was ``index``)."""
        current = ctypes.c_int(-1)
        self.check(self._lib.xl_cuda_get_device(ctypes.byref(current)), "cudaGetDevice")
        if current.value == index:
            return None
        self._set(index)
        return current.value

    def _set(self, index):
        self.check(self._lib.xl_cuda_set_device(index), f"cudaSetDevice({index})")

    def runs_on(self, index: int) -> bool:
        """Whether the library has code device ``index`` runs (``xl_cuda_kernel_image``, asked on
        that device until it answers; :meth:`missing_code` keeps why not). Another error (out
        of memory, say) decides nothing: ``True``, and the launch reports it."""
        if index not in self._images:
            with self.on_device(index):
                status = self._lib.xl_cuda_kernel_image()
            from . import error_name

            if status and error_name(status) not in NO_CODE:
                return True
            self._images[index] = status
        return self._images[index] == 0

    def missing_code(self) -> dict:
        """``{device: error name}`` for the devices :meth:`runs_on` found without code."""
        return {index: self.describe(status) for index, status in sorted(self._images.items()) if status}

    def shared_limit(self, index=None):
        """(asked of the current device, once per device)"""
        if index not in self._limits:
            value = ctypes.c_int()
            self.check(self._lib.xl_cuda_shared_limit(ctypes.byref(value)), "cudaDeviceGetAttribute")
            self._limits[index] = value.value
        return self._limits[index]

    def describe(self, status):
        from . import error_name, error_string

        return f"{error_name(status)} ({error_string(status)})"


class HostEntries(Entries):
    """The per-matrix code compiled into the CPU library: ``xl_hd_<name>_<suffix>`` (and
    ``..._interleaved``, ``..._staged``), with the CUDA entries' parameters less the stream."""

    stream = False

    def __init__(self, lib: ctypes.CDLL):
        self._lib = lib
        self._functions: dict = {}

    def function(self, name, suffix, layout="packed"):
        key = (name, suffix, layout)
        fn = self._functions.get(key)
        if fn is None:
            fn = getattr(self._lib, "xl_hd" + entries()[name].symbol(suffix, layout)[len("xl_cuda") :])
            fn.restype, fn.argtypes = None, [p.ctype for p in entries()[name].parameters(layout)]
            self._functions[key] = fn
        return fn


@cache
def host_entries() -> HostEntries | None:
    """The CPU build of the per-matrix entries, or ``None`` without the compiled CPU layer."""
    from .. import lapack

    lib = lapack.library()
    return None if lib is None else HostEntries(ctypes.CDLL(lib.__file__))


def cuda_entries(device: int) -> Entries | None:
    """The GPU entries for arrays on device ``device``: the CUDA library's when it is loaded, a
    device is usable and the library has code for this one (:meth:`CudaEntries.runs_on`: it was
    built for older or other architectures than the device's), else the kernels compiled at run
    time (:func:`xlinalg.cuda.runtime.runtime_entries`: a driver with a device and NVRTC, which
    compiles for the device's own architecture), else ``None`` (the pure rules run), as with
    ``XLINALG_KERNELS=python``. Decided per device at its first call that gets an answer (the
    check loads the library's code on that device, as its first launch would; both are
    remembered where they are found)."""
    from .. import lapack
    from .runtime import runtime_entries

    if lapack.mode() == "python":
        return None
    ents = library_entries()
    if ents is not None and ents.runs_on(device):
        return ents
    return runtime_entries()


@cache
def library_entries() -> CudaEntries | None:
    """The CUDA library's entries (one object: it caches per-device facts), or ``None`` when the
    library is not loaded or finds no usable device."""
    from . import device_count, library

    lib = library()
    return CudaEntries(lib) if lib is not None and device_count() > 0 else None


@cache
def _signature(name: str, layout: str) -> tuple[tuple[str, bool, bool], ...]:
    """(name, pointer, input) of each C parameter of the entry ``name`` in ``layout``."""
    return tuple((p.name, p.pointer, p.input) for p in entries()[name].parameters(layout))


class _Call:
    """One rule's calls of entries, on the arrays of one library and device."""

    def __init__(self, ax: Arrays, ents: Entries, like):
        self.ax, self.ents = ax, ents
        self.suffix = _SUFFIX[ax.dtype(like)]
        self.itemsize = np.dtype(DTYPES[self.suffix]).itemsize
        self.stream = ax.stream(like) if ents.stream else None
        self.layout = layout()
        self.device = ax.device(like)

    def __call__(self, name: str, batch_shape, **values) -> None:
        """Run the entry ``name`` over ``batch_shape``: every parameter of ``entries.def`` by
        name (``batch`` from ``batch_shape``; arrays pass their pointers). Interleaved, the
        arrays with more than one element per batch entry go through their transposes; staged,
        the entry takes the elements per batch entry of all its arrays, or runs packed when a
        group's would take more than :data:`STAGE_MAX_BYTES` or the device's
        :meth:`Entries.shared_limit`."""
        batch = values["batch"] = math.prod(batch_shape)
        # one batch entry: the layouts agree; a block entry's threads share each matrix: packed
        layout = self.layout if batch > 1 and not entries()[name].block else "packed"
        if layout == "staged":
            stage = sum(-(-math.prod(values[p].shape) // batch) for p, pointer, _ in _signature(name, "packed") if pointer)
            if stage_capacity(stage, self.itemsize) > min(STAGE_MAX_BYTES, self.ents.shared_limit(self.device)):
                layout = "packed"
            else:
                values["stage"] = stage
        written = []
        if layout == "interleaved":
            for p, pointer, read in _signature(name, layout):
                x = values[p]
                if not pointer or math.prod(x.shape) <= batch:
                    continue
                if read:
                    values[p] = self.ax.interleave(x, batch)
                else:
                    values[p] = self.ax.empty((math.prod(x.shape) // batch, batch), x)
                    written.append((values[p], x))
        pointer_of = self.ax.pointer
        args = [pointer_of(values[p]) if pointer else values[p] for p, pointer, _ in _signature(name, layout)]
        fn = self.ents.function(name, self.suffix, layout)
        if self.ents.stream:
            self.ents.check(fn(*args, self.stream), f"{name}_{self.suffix}{LAYOUTS[layout]}")
        else:
            fn(*args)
        for y, out in written:
            self.ax.deinterleave(y, out)

    def empty_like(self, x):
        return self.ax.empty(tuple(x.shape), x)

    def status(self, x):
        return self.ax.empty(tuple(x.shape[:-2]), x, "int32")


def _flags(params) -> int:
    return int(params["transpose"]) | int(params["rightside"]) << 1 | int(params["lower"]) << 2


# ---- Cholesky family ----------------------------------------------------------------------------
def _potrf_forward(k: _Call, inputs, params):
    a = k.ax.contiguous(inputs[0])
    out, status = k.empty_like(a), k.status(a)
    k("potrf", a.shape[:-2], lower=int(params["lower"]), n=a.shape[-1], a=a, out=out, status=status)
    return (out,), status


def _potrf_vjp(k: _Call, inputs, outputs, cotangents, params):
    f = k.ax.contiguous(outputs[0])
    g = k.ax.broadcast(cotangents[0], f.shape)
    ga = k.empty_like(f)
    k("potrf_vjp", f.shape[:-2], lower=int(params["lower"]), n=f.shape[-1], f=f, g=g, ga=ga)
    return (ga,)


def _potri_forward(k: _Call, inputs, params):
    f = k.ax.contiguous(inputs[0])
    out, status = k.empty_like(f), k.status(f)
    k("potri", f.shape[:-2], lower=int(params["lower"]), n=f.shape[-1], f=f, out=out, status=status)
    return (out,), status


def _potri_vjp(k: _Call, inputs, outputs, cotangents, params):
    f, x = k.ax.contiguous(inputs[0]), k.ax.contiguous(outputs[0])
    g = k.ax.broadcast(cotangents[0], x.shape)
    gf = k.empty_like(f)
    k("potri_vjp", f.shape[:-2], lower=int(params["lower"]), n=f.shape[-1], f=f, x=x, g=g, gf=gf)
    return (gf,)


def _potrs_forward(k: _Call, inputs, params):
    f, b = k.ax.contiguous(inputs[0]), k.ax.contiguous(inputs[1])
    out, status = k.empty_like(b), k.status(f)
    k("potrs", f.shape[:-2], lower=int(params["lower"]), n=f.shape[-1], k=b.shape[-1], f=f, b=b, out=out, status=status)
    return (out,), status


def _potrs_vjp(k: _Call, inputs, outputs, cotangents, params):
    f, b, x = (k.ax.contiguous(v) for v in (inputs[0], inputs[1], outputs[0]))
    g = k.ax.broadcast(cotangents[0], x.shape)
    gf, gb = k.empty_like(f), k.empty_like(x)
    k("potrs_vjp", f.shape[:-2], lower=int(params["lower"]), n=f.shape[-1], k=b.shape[-1], f=f, b=b, x=x, g=g, gf=gf, gb=gb)
    return gf, gb


def _sumlogdiag_forward(k: _Call, inputs, params):
    a = k.ax.contiguous(inputs[0])
    out = k.ax.empty(tuple(a.shape[:-2]), a)
    k("sumlogdiag", a.shape[:-2], n=a.shape[-1], a=a, out=out)
    return (out,), None


def _sumlogdiag_vjp(k: _Call, inputs, outputs, cotangents, params):
    a = k.ax.contiguous(inputs[0])
    g = k.ax.broadcast(cotangents[0], tuple(outputs[0].shape))
    ga = k.empty_like(a)
    k("sumlogdiag_vjp", a.shape[:-2], n=a.shape[-1], a=a, g=g, ga=ga)
    return (ga,)


# ---- triangular operators -------------------------------------------------------------------------
def _triangular(params) -> dict:
    return {"flags": _flags(params), "alpha": float(params["alpha"])}


def _trsm_forward(k: _Call, inputs, params):
    a, b = k.ax.contiguous(inputs[0]), k.ax.contiguous(inputs[1])
    out, status = k.empty_like(b), k.status(a)
    k("trsm", a.shape[:-2], **_triangular(params), rows=b.shape[-2], cols=b.shape[-1], a=a, b=b, out=out, status=status)
    return (out,), status


def _trsm_vjp(k: _Call, inputs, outputs, cotangents, params):
    a, x = k.ax.contiguous(inputs[0]), k.ax.contiguous(outputs[0])
    g = k.ax.broadcast(cotangents[0], x.shape)
    ga, gb = k.empty_like(a), k.empty_like(x)
    k("trsm_vjp", a.shape[:-2], **_triangular(params), rows=x.shape[-2], cols=x.shape[-1], a=a, x=x, g=g, ga=ga, gb=gb)
    return ga, gb


def _trmm_forward(k: _Call, inputs, params):
    a, b = k.ax.contiguous(inputs[0]), k.ax.contiguous(inputs[1])
    out = k.empty_like(b)
    k("trmm", a.shape[:-2], **_triangular(params), rows=b.shape[-2], cols=b.shape[-1], a=a, b=b, out=out)
    return (out,), None


def _trmm_vjp(k: _Call, inputs, outputs, cotangents, params):
    a, b = k.ax.contiguous(inputs[0]), k.ax.contiguous(inputs[1])
    g = k.ax.broadcast(cotangents[0], b.shape)
    ga, gb = k.empty_like(a), k.empty_like(b)
    k("trmm_vjp", a.shape[:-2], **_triangular(params), rows=b.shape[-2], cols=b.shape[-1], a=a, b=b, g=g, ga=ga, gb=gb)
    return ga, gb


# ---- symmetric eigendecomposition ------------------------------------------------------------------
def _syevd_forward(k: _Call, inputs, params):
    a = k.ax.contiguous(inputs[0])
    u, w = k.empty_like(a), k.ax.empty(tuple(a.shape[:-1]), a)
    name = "syevd" if a.shape[-1] <= MAX_ORDER else "syevd_block"
    k(name, a.shape[:-2], n=a.shape[-1], a=a, u=u, w=w)
    return (u, w), None


def _syevd_vjp(k: _Call, inputs, outputs, cotangents, params):
    u, w = k.ax.contiguous(outputs[0]), k.ax.contiguous(outputs[1])
    gu, gw = k.ax.broadcast(cotangents[0], u.shape), k.ax.broadcast(cotangents[1], w.shape)
    ga = k.empty_like(u)
    k("syevd_vjp", u.shape[:-2], n=u.shape[-1], u=u, w=w, gu=gu, gw=gw, ga=ga)
    return (ga,)


#: operator name -> {"forward": fn, "vjp": fn}
RULES = {
    "potrf": {"forward": _potrf_forward, "vjp": _potrf_vjp},
    "potri": {"forward": _potri_forward, "vjp": _potri_vjp},
    "potrs": {"forward": _potrs_forward, "vjp": _potrs_vjp},
    "sumlogdiag": {"forward": _sumlogdiag_forward, "vjp": _sumlogdiag_vjp},
    "trsm": {"forward": _trsm_forward, "vjp": _trsm_vjp},
    "trmm": {"forward": _trmm_forward, "vjp": _trmm_vjp},
    "syevd": {"forward": _syevd_forward, "vjp": _syevd_vjp},
}


def fits(op, shapes, kind: str | None = None) -> bool:
    """Whether a call of ``op``'s ``kind`` rule on arrays of ``shapes`` (its inputs first, as
    every rule takes them) fits the per-matrix entries: each square argument's order at most
    the rule's limit (:data:`ORDER_LIMITS`, else :data:`MAX_ORDER`; without ``kind``,
    :data:`MAX_ORDER`: what every entry takes). Right-hand sides may have any number of columns,
    and the other arrays (outputs, cotangents) have the inputs' orders or none."""
    limit = ORDER_LIMITS.get((op.name, kind), MAX_ORDER)
    return all(len(s) >= 2 and s[-1] <= limit for a, s in zip(op.args, shapes) if a.square)


def cuda_runner(op, kind: str, arrays, ax: Arrays):
    """:func:`runner` through the GPU entries of the arrays' device (:func:`cuda_entries`, the
    device of the first array as ``ax`` reads it), or ``None`` where there are none."""
    if not arrays:
        return None
    ents = cuda_entries(ax.device(arrays[0]))
    return None if ents is None else runner(op, kind, arrays, ax, ents)


def runner(op, kind: str, arrays, ax: Arrays, ents: Entries):
    """The ``kind`` rule of ``op`` as the ``run(*groups, params)`` of
    :meth:`xlinalg.kernels.Kernels.compiled`, for ``arrays`` of the library ``ax`` describes on
    one device, through ``ents``; ``None`` when there is no such rule: another operator (or a
    modified copy of a registered one), a dtype other than float32/float64, or a square order
    above the rule's limit (:func:`fits`)."""
    fn = RULES.get(op.name, {}).get(kind)
    if fn is None or not arrays:
        return None
    from ..core import operators

    if operators().get(op.name) is not op:
        return None
    first = arrays[0]
    if ax.dtype(first) not in _SUFFIX or not fits(op, tuple(tuple(x.shape) for x in arrays), kind):
        return None

    def run(*groups, params):
        k = _Call(ax, ents, first)
        with ents.on_device(k.device):
            result = fn(k, *groups, params)
        return result if kind == "forward" else (result, None)

    return run
