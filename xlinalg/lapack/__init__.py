"""xlinalg's compiled CPU kernel layer.

One C++17 library (sources in ``xlinalg/lapack/src``, C ABI in ``xlinalg.h``) with an entry per
operator rule: forward passes that read only the named triangle and report failures per batch
entry from LAPACK's ``info``, and fused reverse passes (for ``potrf`` the blocked, in-place,
level-3 algorithm of Murray, 2016, "Differentiation of the Cholesky decomposition"). BLAS and
LAPACK come as function pointers from SciPy (``scipy.linalg.cython_blas``/``cython_lapack``), so
the library has no link-time dependency. ``pip install .`` compiles it as the extension module
``xlinalg.lapack._kernels`` where a C++ compiler exists; without one the package installs
without it and the pure Array-API rules run instead.

The environment variable ``XLINALG_KERNELS`` (read on first use) chooses: ``auto`` (default: the compiled layer
where it is built), ``python`` (the pure rules everywhere), ``compiled`` (an ``ImportError``
when the layer is missing). ``XLINALG_NUM_THREADS`` caps the threads that split a batch
(default: the process's CPUs). For torch tensors both the batch threads and the BLAS threads
follow ``torch.get_num_threads()`` (set through threadpoolctl: SciPy's OpenBLAS does not read
torch's setting); on Intel CPUs the eager PyTorch node calls torch's own MKL for most routines
instead (:mod:`xlinalg.lapack.torch_blas`, ``XLINALG_TORCH_BLAS``). ``XLINALG_ISA=baseline``
runs the baseline builds of the kernels that also have an AVX2 build (chosen at run time where
the CPU has AVX2 and FMA).

The rules themselves (which operator and flags have an entry, how outputs are allocated) are in
:mod:`xlinalg.lapack.rules`; :func:`config` says what is active.
"""

from __future__ import annotations

import ctypes
import os

#: The BLAS/LAPACK routines the library calls, for ``s`` (float32) and ``d`` (float64).
ROUTINES = {
    "cython_blas": ("gemm", "trsm", "trmm", "syrk"),
    "cython_lapack": ("potrf", "potri", "syevd", "getrf", "getri", "geqrf", "orgqr"),
}

_state: dict = {}


def mode() -> str:
    """``XLINALG_KERNELS``: ``"auto"``, ``"python"`` or ``"compiled"`` (read once; see
    :func:`reset`)."""
    if "mode" not in _state:
        value = os.environ.get("XLINALG_KERNELS", "auto").strip().lower() or "auto"
        if value not in ("auto", "python", "compiled"):
            raise ValueError(f"XLINALG_KERNELS must be auto, python or compiled, got {value!r}")
        _state["mode"] = value
    return _state["mode"]


def library():
    """The extension module with its BLAS/LAPACK set, or ``None`` when the pure rules are to
    run (``XLINALG_KERNELS=python``, or the layer was not built and the mode is ``auto``).

    Raises
    ------
    ImportError
        With ``XLINALG_KERNELS=compiled`` when the layer cannot be loaded, saying why.
    """
    try:
        return _state["active"]
    except KeyError:
        pass
    if "library" not in _state:
        _state["library"], _state["reason"] = _load()
    lib = _state["library"]
    if lib is None and mode() == "compiled":
        raise ImportError(f"XLINALG_KERNELS=compiled, but the compiled kernel layer is not available: {_state['reason']}")
    _state["active"] = None if mode() == "python" else lib
    return _state["active"]


def reset() -> None:
    """Forget the decisions read from the environment (``XLINALG_KERNELS``,
    ``XLINALG_NUM_THREADS``), so that the next call reads it again; the library stays loaded."""
    for key in ("mode", "active", "threads"):
        _state.pop(key, None)


def _load():
    try:
        from . import _kernels
    except ImportError as exc:
        return None, f"xlinalg.lapack._kernels is not built ({exc}); reinstall with a C++17 compiler"
    try:
        import importlib

        for module, names in ROUTINES.items():
            capi = importlib.import_module(f"scipy.linalg.{module}").__pyx_capi__
            for name in names:
                for prefix in "sd":
                    _kernels.set_routine(prefix + name, capi[prefix + name])
    except (ImportError, KeyError, AttributeError, ValueError) as exc:
        return None, f"SciPy's BLAS/LAPACK pointers are not available ({type(exc).__name__}: {exc})"
    if not _kernels.ready():  # pragma: no cover - every routine above is set or an error raised
        return None, "some BLAS/LAPACK routine is missing"
    try:
        set_blas_thread_functions(ctypes.CDLL(_kernels.__file__))  # the import's handle: its globals
    except (OSError, AttributeError) as exc:
        return None, f"cannot load {_kernels.__file__} ({type(exc).__name__}: {exc})"
    return _kernels, "loaded"


def threads() -> int:
    """Threads a batch may be split across (``XLINALG_NUM_THREADS``, default every CPU of the
    process)."""
    if "threads" not in _state:
        value = os.environ.get("XLINALG_NUM_THREADS")
        if value:
            _state["threads"] = max(1, int(value))
        else:
            try:
                _state["threads"] = len(os.sched_getaffinity(0))
            except AttributeError:  # pragma: no cover - not Linux
                _state["threads"] = os.cpu_count() or 1
    return _state["threads"]


#: Below this matrix order the BLAS the layer calls runs on one thread: beside another pool on the
#: same cores (a framework's, or the batch split across threads) OpenBLAS's spinning threads cost
#: far more than they bring. Measured with 2 threads: potrf forward+backward at n = 256 took 16 ms
#: with SciPy's OpenBLAS on 2 threads beside torch's pool against 1.4 ms on one (n = 1024: 40 and
#: 44 ms); MXNet's potri on 256 matrices of order 32, 308 ms against 16 ms natively.
BLAS_THREADS_MIN_ORDER = 1024


def use_blas_threads(n: int) -> None:
    """Run the BLAS the layer calls (SciPy's OpenBLAS) on ``n`` threads, as a framework with a
    thread setting of its own (``torch.set_num_threads``) asks; only when ``n`` differs from
    the count set last (a cheap test on every call)."""
    if _state.get("blas_threads") == n:
        return
    controller = _blas_controller()
    if controller is not None:
        controller.set_num_threads(n)
    _state["blas_threads"] = n


def _blas_controller():
    """threadpoolctl's controller of SciPy's BLAS (``None`` without threadpoolctl)."""
    if "blas_controller" not in _state:
        _state["blas_controller"] = None
        try:
            import scipy
            import scipy.linalg.cython_blas  # loads the library
            import threadpoolctl
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            return None
        root = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy")
        for lib in threadpoolctl.ThreadpoolController().lib_controllers:
            if lib.user_api == "blas" and lib.filepath.startswith(root):  # scipy/ or scipy.libs/
                _state["blas_controller"] = lib
    return _state["blas_controller"]


def _blas_thread_functions() -> tuple:
    """The addresses of ``openblas_get_num_threads`` and ``openblas_set_num_threads`` of the
    BLAS the layer calls (SciPy's OpenBLAS, its symbols prefixed ``scipy_`` in SciPy's own
    builds), or ``(None, None)`` where that BLAS is another or they are not found."""
    if "blas_thread_functions" not in _state:
        _state["blas_thread_functions"] = (None, None)
        lib = _blas_controller()
        if lib is not None and lib.internal_api == "openblas":
            try:
                dll = ctypes.CDLL(lib.filepath)
            except OSError:  # pragma: no cover - threadpoolctl found it loaded
                return _state["blas_thread_functions"]
            for prefix in ("scipy_", ""):
                get = getattr(dll, f"{prefix}openblas_get_num_threads", None)
                set_ = getattr(dll, f"{prefix}openblas_set_num_threads", None)
                if get is not None and set_ is not None:
                    address = [ctypes.cast(f, ctypes.c_void_p).value for f in (get, set_)]
                    _state["blas_thread_functions"] = tuple(address)
                    break
    return _state["blas_thread_functions"]


def set_blas_thread_functions(lib) -> None:
    """Give ``lib`` (a ``ctypes.CDLL`` of a library built with ``entries.cpp``) the BLAS's thread
    count functions: while it splits a batch across its own threads it runs the BLAS on one
    (``src/batch.hpp``: ``SingleThreadedBlas``)."""
    fn = lib.xl_set_blas_threads
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_void_p], None
    fn(*_blas_thread_functions())


def config() -> dict:
    """What runs: the mode, whether the compiled layer is active (and why not), its operators,
    BLAS/LAPACK and thread settings.

    Returns
    -------
    dict
        ``mode``, ``active``, ``reason``, ``operators`` (name -> rules with an entry), ``isa``
        (the instruction set of the kernels with two builds: ``"avx2+fma"`` or ``"baseline"``;
        ``None`` when the layer is off), ``blas`` (the BLAS the layer calls: threadpoolctl's
        description), ``batch_threads``,
        ``bindings`` (for PyTorch, JAX and MXNet, when imported: their compiled bindings,
        ``"loaded"`` or why not — the C++ autograd node, the XLA FFI handlers, the recorded MXNet
        operator).
    """
    try:
        lib = library()
    except ImportError:
        lib = None
    from .rules import RULES

    info = {
        "mode": mode(),
        "active": lib is not None,
        "reason": "XLINALG_KERNELS=python" if mode() == "python" else _state.get("reason"),
        "operators": {name: sorted(r) for name, r in RULES.items()} if lib is not None else {},
        "isa": lib.isa() if lib is not None else None,
        "batch_threads": threads(),
        "blas": _blas_info(),
        "bindings": _bindings(),
    }
    return info


def _bindings() -> dict:
    """The state of the compiled bindings of the frameworks this process has imported."""
    import sys

    info = {}
    if "torch" in sys.modules:
        from . import torch_node

        state = torch_node.reason()
        blas = torch_node.blas()
        info["PyTorch autograd node"] = state if blas is None else f"{state} (BLAS/LAPACK: {blas})"
    if "jax" in sys.modules:
        from . import jax_ffi

        info["JAX FFI kernels"] = jax_ffi.reason()
    if "mxnet" in sys.modules:
        from . import mxnet_op

        info["MXNet recorded operator"] = mxnet_op.reason()
    return info


def _blas_info() -> list:
    lib = _blas_controller()
    if lib is None:
        return []
    info = lib.info()
    return [{k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}]
