"""xlinalg: differentiable linear algebra written once for every array framework.

The operators of "Auto-Differentiating Linear Algebra" (Seeger et al.; MXNet's ``linalg``)
with forward, JVP and VJP rules written against the Python Array API standard. Call them on
NumPy, CuPy, array-api-strict, PyTorch, JAX or MXNet arrays; the result has the input's library,
dtype and device. PyTorch, JAX and MXNet arrays are differentiable in their own autograd; for
every library :func:`vjp` and :func:`jvp` give derivatives explicitly.

Importing xlinalg imports no framework.
"""

from .api import FUNCTIONS as _FUNCTIONS
from .api import EighResult, cholesky, eigh, inv, jvp, solve_triangular, vjp
from .errors import LinAlgError

__version__ = "0.1.0"

OPERATORS = tuple(_FUNCTIONS)

gemm = _FUNCTIONS["gemm"]
gemm2 = _FUNCTIONS["gemm2"]
potrf = _FUNCTIONS["potrf"]
potri = _FUNCTIONS["potri"]
potrs = _FUNCTIONS["potrs"]
trsm = _FUNCTIONS["trsm"]
trmm = _FUNCTIONS["trmm"]
syrk = _FUNCTIONS["syrk"]
sumlogdiag = _FUNCTIONS["sumlogdiag"]
gelqf = _FUNCTIONS["gelqf"]
syevd = _FUNCTIONS["syevd"]
extractdiag = _FUNCTIONS["extractdiag"]
makediag = _FUNCTIONS["makediag"]
extracttrian = _FUNCTIONS["extracttrian"]
maketrian = _FUNCTIONS["maketrian"]
inverse = _FUNCTIONS["inverse"]
det = _FUNCTIONS["det"]
slogdet = _FUNCTIONS["slogdet"]

__all__ = [
    *OPERATORS,
    "vjp",
    "jvp",
    "cholesky",
    "eigh",
    "inv",
    "solve_triangular",
    "EighResult",
    "LinAlgError",
    "OPERATORS",
    "__version__",
]
