"""xlinalg: differentiable linear algebra written once for every array framework.

The operators of "Auto-Differentiating Linear Algebra" (Seeger et al.; MXNet's ``linalg``)
with forward, JVP and VJP rules written against the Python Array API standard. Call them on
NumPy, CuPy, array-api-strict, PyTorch, JAX or MXNet arrays; the result has the input's library,
dtype and device. PyTorch, JAX and MXNet arrays are differentiable in their own autograd; for
every library :func:`vjp` and :func:`jvp` give derivatives explicitly.

Operators: gemm, gemm2, potrf, potri, potrs, trsm, trmm, syrk, sumlogdiag, gelqf, syevd,
extractdiag, makediag, extracttrian, maketrian, inverse, det, slogdet; aliases with Array API
names: cholesky, eigh, inv, solve_triangular.

Importing xlinalg imports no framework. :func:`show_config` (or ``python -m xlinalg``) says
whether the compiled CPU kernel layer (:mod:`xlinalg.lapack`) is active, and whether the GPU
layer (:mod:`xlinalg.cuda`) is built and finds a device.
"""

from . import api as _api
from .api import EighResult, jvp, vjp  # noqa: F401  (exported through __all__ below)
from .errors import LinAlgError  # noqa: F401  (exported through __all__ below)

__version__ = "0.1.0"


def show_config() -> dict:
    """Print and return which kernel layer runs: the mode (``XLINALG_KERNELS``), whether the
    compiled layer is active (or why not), its operators, the instruction set its kernels with
    an AVX2 build run in, BLAS/LAPACK and thread settings
    (:func:`xlinalg.lapack.config`), and under ``"cuda"`` the state of the GPU layer (built or
    why not, CUDA runtime and driver, devices, JAX's CUDA handlers: :func:`xlinalg.cuda.config`).
    The compiled bindings of the frameworks this process has imported are built here if they
    were not yet."""
    from . import cuda, lapack

    info = lapack.config()
    info["cuda"] = cuda.config()
    print(f"xlinalg {__version__}")
    print(f"  kernel layer: {'compiled' if info['active'] else 'pure Array-API rules'} (XLINALG_KERNELS={info['mode']}; {info['reason']})")
    for name, kinds in info["operators"].items():
        print(f"    {name}: {', '.join(kinds)}")
    if info["isa"] is not None:
        print(f"  instruction set of the two-build kernels: {info['isa']}")
    print(f"  batch threads: {info['batch_threads']}")
    for lib in info["blas"]:
        kernels = f" ({lib['architecture']} kernels)" if lib.get("architecture") else ""
        print(f"  BLAS: {lib['internal_api']} {lib['version']}{kernels}, {lib['num_threads']} threads ({lib['filepath']})")
    for name, state in info["bindings"].items():
        print(f"  {name}: {state}")
    gpu = info["cuda"]
    if gpu["active"]:
        driver = gpu["driver_version"] or "none"
        devices = f"{gpu['devices']} device(s)" if gpu["device_status"] == "ok" else f"no device ({gpu['device_status']})"
        print(f"  CUDA kernel layer: built, {gpu['entries']} entries (CUDA runtime {gpu['runtime_version']}, driver {driver}; {devices})")
        for index, error in gpu.get("missing_code", {}).items():
            print(f"    no code for device {index} ({error}): the kernels built at run time, or the pure rules, run there")
    else:
        print(f"  CUDA kernel layer: not available ({gpu['reason']})")
    print(f"  CUDA kernels built at run time (NVRTC): {gpu['runtime']}")
    print(f"  CUDA arrays' layout for the kernels (XLINALG_CUDA_LAYOUT): {gpu['layout']}")
    if "jax_handlers" in gpu:
        print(f"  JAX FFI handlers for CUDA: {gpu['jax_handlers']}")
    return info


globals().update(_api.namespace(_api.FUNCTIONS, __name__))
__all__ = [*__all__, "vjp", "jvp", "show_config", "__version__"]  # noqa: F821  (set by namespace())
