"""xlinalg's GPU kernel layer (CUDA).

The per-matrix algorithms of ``src/per_matrix.h`` run one batch entry per GPU thread. The entries
are listed once, in ``src/entries.def``; from that list come the kernels (``src/kernels.cuh``,
``xl_kernel_<name>_<f32|f64>``, also compilable at run time with NVRTC), the exported C entries
(``src/launch.cu``: ``int xl_cuda_<name>_<f32|f64>(params..., void* stream)``, returning the
launch's ``cudaError_t``) and, here, their ctypes signatures (:mod:`xlinalg.cuda.entries` parses
the same file).

``pip install .`` builds the shared library ``xlinalg/cuda/_xlinalg_cuda.so`` with ``nvcc`` when
one is found (``XLINALG_NVCC``, else ``$CUDA_HOME/bin/nvcc``, else ``PATH``) and
``XLINALG_CUDA`` is not ``0``; architectures from ``XLINALG_CUDA_ARCHS``. The CUDA runtime is
linked statically, so the library loads without a driver or a GPU: its calls then return an error
code (35, ``cudaErrorInsufficientDriver``, or 100, ``cudaErrorNoDevice``). Without ``nvcc`` the
package installs without it.

:func:`library` loads it (``None`` when it is missing or stale, :func:`unavailable_reason` says
why), :func:`device_count` counts the usable GPUs (0 without a driver), :func:`config` reports.

Where the library is missing or finds no device, but a driver with a device and an NVRTC library
are present, the kernels are built at run time instead (:mod:`xlinalg.cuda.runtime`: NVRTC
compiles ``src/kernels.cuh`` for the device once per machine, the driver API loads and launches
it); :func:`xlinalg.cuda.rules.cuda_entries` chooses.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

from . import entries
from .sources import sources_id

#: The library's file, beside this module.
LIBRARY_PATH = Path(__file__).with_name("_xlinalg_cuda.so")
#: The library's exported helpers: name -> (restype, argtypes).
HELPERS = {
    "xl_cuda_runtime_version": (ctypes.c_int, []),
    "xl_cuda_driver_version": (ctypes.c_int, [ctypes.POINTER(ctypes.c_int)]),
    "xl_cuda_device_count": (ctypes.c_int, [ctypes.POINTER(ctypes.c_int)]),
    "xl_cuda_get_device": (ctypes.c_int, [ctypes.POINTER(ctypes.c_int)]),
    "xl_cuda_set_device": (ctypes.c_int, [ctypes.c_int]),
    "xl_cuda_shared_limit": (ctypes.c_int, [ctypes.POINTER(ctypes.c_int)]),
    "xl_cuda_kernel_image": (ctypes.c_int, []),
    "xl_cuda_error_name": (ctypes.c_char_p, [ctypes.c_int]),
    "xl_cuda_error_string": (ctypes.c_char_p, [ctypes.c_int]),
    "xl_cuda_block_size": (ctypes.c_int, []),
    "xl_cuda_block_entry_threads": (ctypes.c_int, []),
    "xl_cuda_build_id": (ctypes.c_char_p, []),
    "xl_cuda_malloc": (ctypes.c_int, [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]),
    "xl_cuda_free": (ctypes.c_int, [ctypes.c_void_p]),
    "xl_cuda_memcpy": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]),
    "xl_cuda_stream_synchronize": (ctypes.c_int, [ctypes.c_void_p]),
}

_state: dict = {}


def library():
    """The loaded CUDA library (a ``ctypes.CDLL`` with every entry's and helper's argtypes and
    restype set), or ``None`` when it is not built, cannot be loaded or was built from other
    sources than the package's (see :func:`unavailable_reason`). Loaded once.

    Every entry ``xl_cuda_<name>_<f32|f64>`` takes the parameters of ``entries.def`` (pointers as
    integers or ``None``) then the stream (a ``cudaStream_t`` as an integer, ``None`` for the
    default stream), and returns a ``cudaError_t`` (0 when the kernel was queued).
    """
    if "library" not in _state:
        _state["library"], _state["reason"] = _load()
    return _state["library"]


def unavailable_reason() -> str | None:
    """Why :func:`library` is ``None`` (``None`` when it is loaded)."""
    library()
    return _state["reason"]


def _load():
    if not LIBRARY_PATH.exists():
        return None, (
            f"{LIBRARY_PATH.name} is not built (the install found no nvcc, had XLINALG_CUDA=0, or the nvcc build failed; "
            "reinstall with nvcc on PATH or XLINALG_NVCC set to build it)"
        )
    try:
        lib = ctypes.CDLL(str(LIBRARY_PATH))
    except OSError as exc:
        return None, f"{LIBRARY_PATH.name} cannot be loaded: {exc}"
    try:
        table = entries.entries()
    except (OSError, ValueError) as exc:
        return None, f"the entries' signatures cannot be read: {exc}"
    try:
        for name, (restype, argtypes) in HELPERS.items():
            function = getattr(lib, name)
            function.restype, function.argtypes = restype, argtypes
        for entry in table.values():
            for suffix in entries.DTYPES:
                for layout in entry.layouts:
                    function = getattr(lib, entry.symbol(suffix, layout))
                    function.restype, function.argtypes = ctypes.c_int, entry.argtypes(layout)
    except AttributeError as exc:
        return None, f"{LIBRARY_PATH.name} is stale (it lacks a function: {exc}); reinstall to rebuild it"
    built = lib.xl_cuda_build_id().decode()
    want = f"sources:{sources_id()}"
    if not built.startswith(want + " "):
        return None, f"{LIBRARY_PATH.name} is stale (built from {built.split()[0]}, the package's sources are {want}); reinstall to rebuild it"
    return lib, None


def error_name(status: int) -> str:
    """The name of a ``cudaError_t`` value (``"cudaErrorNoDevice"``); ``"cudaError <n>"``
    without the library."""
    lib = library()
    return lib.xl_cuda_error_name(status).decode() if lib is not None else f"cudaError {status}"


def error_string(status: int) -> str:
    """The description of a ``cudaError_t`` value; ``"cudaError <n>"`` without the library."""
    lib = library()
    return lib.xl_cuda_error_string(status).decode() if lib is not None else f"cudaError {status}"


def driver_version() -> int:
    """The driver's CUDA version as CUDA writes it (12040 for 12.4): 0 without the library or a
    driver."""
    lib, version = library(), ctypes.c_int(0)
    if lib is not None:
        lib.xl_cuda_driver_version(ctypes.byref(version))
    return version.value


def device_count() -> int:
    """The number of usable CUDA devices: 0 without the library, a driver new enough for it, or a
    GPU (:func:`device_status` says which). Never raises."""
    return _devices()[0]


def device_status() -> str:
    """``"ok"`` where the library finds a usable device, else the error that left none
    (``cudaErrorInsufficientDriver``: no driver, or one older than the runtime linked in;
    ``cudaErrorNoDevice``), or why the library is not loaded."""
    return _devices()[1]


def _devices() -> tuple[int, str]:
    lib = library()
    if lib is None:
        return 0, f"not loaded: {unavailable_reason()}"
    count = ctypes.c_int(0)
    status = lib.xl_cuda_device_count(ctypes.byref(count))
    return (count.value, "ok") if status == 0 else (0, error_name(status))


def config() -> dict:
    """The state of the CUDA layer.

    Returns
    -------
    dict
        ``built`` (the library file exists), ``active`` (loaded), ``reason`` (``"loaded"`` or why
        not), ``path``, ``entries`` (the exported entries' count), and when loaded
        ``runtime_version`` and ``driver_version`` (``"13.0"``; the driver's ``None`` without one),
        ``devices`` (the usable devices' count), ``device_status`` (``"ok"``, or the error name
        that left none: ``cudaErrorInsufficientDriver``, ``cudaErrorNoDevice``), ``block_size``,
        ``build_id``, and ``missing_code`` (``{device: error name}``) once a call found a device the
        library has no code for (built for other architectures: the kernels built at run time,
        or the pure rules, run there); always ``runtime``, the state of the kernels built at run time
        (:func:`xlinalg.cuda.runtime.state`: ``"available (...)"``, ``"active (...)"`` or
        ``"not available (<reason>)"``), and ``layout``, the layout the kernels run in
        (:func:`xlinalg.cuda.rules.layout`; the error's text for an unknown one); where this
        process has imported JAX, ``jax_handlers``: ``"loaded"`` or why JAX's CUDA handlers are
        not or do not run here (:func:`xlinalg.cuda.jax_ffi.handlers_reason`).
    """
    from .rules import layout, library_entries
    from .runtime import state

    try:
        layout_state = layout()
    except ValueError as exc:
        layout_state = f"invalid ({exc})"

    lib = library()
    info = {
        "built": LIBRARY_PATH.exists(),
        "active": lib is not None,
        "reason": unavailable_reason() or "loaded",
        "path": str(LIBRARY_PATH),
        "entries": len(entries.symbols()),
        "runtime": state(),
        "layout": layout_state,
    }
    if "jax" in sys.modules:
        from . import jax_ffi

        info["jax_handlers"] = jax_ffi.handlers_reason()
    if lib is None:
        return info
    driver = driver_version()
    count, status = _devices()
    info.update(
        runtime_version=_version(lib.xl_cuda_runtime_version()),
        driver_version=_version(driver) if driver else None,
        devices=count,
        device_status=status,
        block_size=lib.xl_cuda_block_size(),
        build_id=lib.xl_cuda_build_id().decode(),
    )
    ents = library_entries()
    missing = ents.missing_code() if ents is not None else {}
    if missing:
        info["missing_code"] = missing
    return info


def _version(value: int) -> str:
    """CUDA's integer version (13000) as ``"13.0"``."""
    return f"{value // 1000}.{value % 1000 // 10}"


__all__ = ["config", "device_count", "device_status", "entries", "error_name", "error_string", "library", "sources_id", "unavailable_reason"]
