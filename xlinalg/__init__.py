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
whether the compiled CPU kernel layer (:mod:`xlinalg.lapack`) is active.
"""

from . import api as _api
from .api import EighResult, jvp, vjp  # noqa: F401  (exported through __all__ below)
from .errors import LinAlgError  # noqa: F401  (exported through __all__ below)

__version__ = "0.1.0"


def show_config() -> dict:
    """Print and return which kernel layer runs: the mode (``XLINALG_KERNELS``), whether the
    compiled layer is active (or why not), its operators, BLAS/LAPACK and thread settings
    (:func:`xlinalg.lapack.config`)."""
    from . import lapack

    info = lapack.config()
    print(f"xlinalg {__version__}")
    print(f"  kernel layer: {'compiled' if info['active'] else 'pure Array-API rules'} (XLINALG_KERNELS={info['mode']}; {info['reason']})")
    for name, kinds in info["operators"].items():
        print(f"    {name}: {', '.join(kinds)}")
    print(f"  batch threads: {info['batch_threads']}")
    for lib in info["blas"]:
        print(f"  BLAS: {lib['internal_api']} {lib['version']}, {lib['num_threads']} threads ({lib['filepath']})")
    for name, state in info["bindings"].items():
        print(f"  {name}: {state}")
    return info


globals().update(_api.namespace(_api.FUNCTIONS, __name__))
__all__ = [*__all__, "vjp", "jvp", "show_config", "__version__"]  # noqa: F821  (set by namespace())
