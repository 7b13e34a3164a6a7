"""The compiled kernel layer for JAX on the CPU: XLA FFI custom calls.

``pip install`` builds :mod:`xlinalg.lapack._kernels` without jaxlib (its build environment is
isolated), so the XLA FFI handlers (``src/ffi.cpp``, over the same C ABI) are compiled here, on
first use in a process that has JAX: ``ffi.cpp`` and ``entries.cpp`` together, against
``jax.ffi.include_dir()``, into the per-user cache of :mod:`xlinalg.lapack.build` (keyed by the
sources, the jaxlib version and the compiler: one machine compiles once, 10–12 s on two cores,
and every later process only loads the library). The library gets its BLAS/LAPACK from SciPy, as the
extension does, and every handler is registered as the CPU custom-call target of its name; where
the GPU layer is built, :mod:`xlinalg.cuda.jax_ffi` registers CUDA handlers under the same names
for the operators it has, so one ``ffi_call`` lowers to either platform's handler.

:data:`~xlinalg.lapack.table.TABLE` says which operator has which entries (a forward entry, with
or without a status output, and a VJP entry) and how its parameters become FFI attributes; :func:`forward` and
:func:`vjp` call them through ``jax.ffi.ffi_call`` (``vmap_method="broadcast_all"``).
The adapter (:mod:`xlinalg.adapters.jax`) decides where they run.

:func:`library` is ``None`` where the layer is off (``XLINALG_KERNELS=python``, or the extension
is missing in ``auto`` mode) or the handlers cannot be built (no compiler, no XLA FFI headers):
:func:`reason` says why, and nothing raises, except with ``XLINALG_KERNELS=compiled`` (an
``ImportError`` naming the cause, as :func:`xlinalg.lapack.library` raises).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from . import build
from .build import SRC
from .table import DTYPES, SAVING, TABLE, Entry

#: Compiled together into one shared library (the handlers call the C ABI of entries.cpp).
SOURCES = ("ffi.cpp", "entries.cpp")
__all__ = ["DTYPES", "SAVING", "TABLE", "Entry", "entry", "forward", "library", "reason", "saves", "targets", "vjp"]

_state: dict = {}


def entry(op) -> Entry | None:
    """The FFI entries of the operator ``op``, or ``None`` when it has none, is not the
    registered operator of its name (a ``dataclasses.replace`` copy runs its own rules) or the
    layer is off (:func:`library`)."""
    spec = TABLE.get(op.name)
    if spec is None:
        return None
    from ..core.operator import operators

    if operators().get(op.name) is not op or library() is None:
        return None
    return spec


def saves(op) -> bool:
    """Whether ``op`` has FFI entries (:func:`entry`) and a variant whose forward keeps
    residuals for its reverse (:data:`~xlinalg.lapack.table.SAVING`)."""
    return op.name in SAVING and entry(op) is not None


# ---- calls ----------------------------------------------------------------------------------
def _spec(op, saving: bool = False) -> Entry:
    if library() is None:
        raise RuntimeError(f"{op.name}: the JAX FFI kernels are not available ({reason()})")
    return SAVING[op.name] if saving else TABLE[op.name]


def residual_shapes(op, params: dict, shapes: list) -> tuple:
    """The shapes of the residuals that ``op``'s saving forward keeps, for inputs of ``shapes``
    (batch axes broadcast)."""
    from ..core import apply

    _, out, _ = apply.check_signature(op, shapes, ["float64"] * len(shapes), params)
    return tuple(SAVING[op.name].residual_shapes(tuple(shapes), tuple(out)))


def forward(op, params: dict, inputs: tuple, saving: bool = False):
    """``(outputs, status)`` of ``op``'s forward entry on JAX arrays (or tracers) whose batch
    axes are broadcast already; ``status`` is ``None`` for an entry without one. Failing batch
    entries come out NaN. With ``saving`` (an operator of :func:`saves`), ``(outputs, status,
    residuals)`` of the variant that keeps residuals for :func:`vjp`."""
    import jax

    from ..core import apply

    spec = _spec(op, saving)
    dtype = inputs[0].dtype
    in_shapes = [tuple(x.shape) for x in inputs]
    _, shapes, _ = apply.check_signature(op, in_shapes, [np.dtype(x.dtype).name for x in inputs], params)
    if saving:
        shapes = [*shapes, *spec.residual_shapes(tuple(in_shapes), tuple(shapes))]
    batch = tuple(inputs[0].shape[: len(inputs[0].shape) - op.args[0].ndim])
    results = [jax.ShapeDtypeStruct(s, dtype) for s in shapes]
    if spec.status:
        results.append(jax.ShapeDtypeStruct(batch, np.int32))
    out = jax.ffi.ffi_call(spec.target("forward", dtype), results, vmap_method="broadcast_all")(*inputs, **spec.attrs(params))
    out = tuple(out)
    status = out[-1] if spec.status else None
    out = out[:-1] if spec.status else out
    if saving:
        m = len(op.outputs)
        return out[:m], status, out[m:]
    return out, status


def vjp(op, params: dict, inputs: tuple, outputs: tuple, cotangents: tuple, residuals: tuple | None = None) -> tuple:
    """The input cotangents of ``op``'s VJP entry (batch axes not summed, projected onto each
    argument's structure); every array has the broadcast batch shape (cotangents are broadcast
    to their outputs' shapes here). ``residuals``: those of :func:`forward` with ``saving``, for
    the VJP entry that reads them, or ``None``."""
    import jax
    import jax.numpy as jnp

    spec = _spec(op, residuals is not None)
    dtype = inputs[0].dtype
    cotangents = tuple(jnp.broadcast_to(jnp.asarray(g, dtype), y.shape) for g, y in zip(cotangents, outputs))
    results = [jax.ShapeDtypeStruct(x.shape, dtype) for x in inputs]
    call = jax.ffi.ffi_call(spec.target("vjp", dtype), results, vmap_method="broadcast_all")
    kept = tuple(outputs) + tuple(residuals or ())
    return tuple(call(*spec.vjp_args(inputs, kept, cotangents), **spec.attrs(params)))


# ---- the library ------------------------------------------------------------------------------
def library():
    """The FFI library (a ``ctypes.CDLL``) with its BLAS/LAPACK set and its targets registered
    with JAX, built on first use; ``None`` where it is off or cannot be built (:func:`reason`).

    Raises
    ------
    ImportError
        With ``XLINALG_KERNELS=compiled`` when the layer cannot be loaded, saying why.
    """
    return build.first_use(_state, "the JAX FFI kernels", _load)


def reason() -> str:
    """Why :func:`library` is ``None`` (``"loaded"`` when it is not)."""
    return build.why_missing(_state, library)


def _load():
    try:
        import jax
        import jaxlib
    except ImportError as exc:  # pragma: no cover - only imported from the JAX adapter
        return None, f"JAX is not installed ({exc})"
    try:
        include = Path(jax.ffi.include_dir())
    except Exception as exc:
        return None, f"jax.ffi.include_dir() failed ({type(exc).__name__}: {exc})"
    if not (include / "xla" / "ffi" / "api" / "ffi.h").is_file():
        return None, f"the XLA FFI headers are missing from {include}"
    target, why = build.cached_library(
        "xlinalg_ffi", "JAX FFI kernels", [SRC / s for s in SOURCES], [include], (jaxlib.__version__,)
    )
    if target is None:
        return None, why
    try:
        lib = ctypes.CDLL(str(target))
        build.set_routines(lib)
        _register(lib, jax)
    except (OSError, AttributeError, KeyError, ValueError, ImportError, RuntimeError) as exc:
        return None, f"cannot load {target} ({type(exc).__name__}: {exc})"
    return lib, "loaded"


def targets() -> list[str]:
    """Every custom-call target name the library defines."""
    entries = [*TABLE.values(), *SAVING.values()]
    return [e.target(kind, dtype) for e in entries for kind in ("forward", "vjp") for dtype in DTYPES]


def _register(lib, jax) -> None:
    """Every handler as the CPU target of its name, and, where the GPU layer is built, the CUDA
    handlers of the same names (:mod:`xlinalg.cuda.jax_ffi`; their failure leaves the CPU
    targets working)."""
    for name in targets():
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")
    from ..cuda import jax_ffi as cuda_ffi

    cuda_ffi.library()
