"""xlinalg's operators as JAX functions: ``xlinalg.jax.potrf``, ...

Each is a ``jax.custom_jvp`` function made by the generic adapter
(:mod:`xlinalg.adapters.jax`) from the operator's spec; ``xlinalg.<op>(jax_array)`` calls the
same function. Parameters are static Python values. The Array API-named aliases
:func:`cholesky`, :func:`eigh`, :func:`inv` and :func:`solve_triangular` have the signatures
and result layouts of the top-level ``xlinalg`` aliases.
"""

from __future__ import annotations

import jax  # noqa: F401  (this module is the JAX namespace; it needs JAX)

from . import adapters as _adapters
from .adapters import jax as _adapter
from .api import EighResult
from .core.operator import operators as _operators

FUNCTIONS = {name: _adapters.bound(_adapter, op) for name, op in _operators().items()}

gemm = FUNCTIONS["gemm"]
gemm2 = FUNCTIONS["gemm2"]
potrf = FUNCTIONS["potrf"]
potri = FUNCTIONS["potri"]
potrs = FUNCTIONS["potrs"]
trsm = FUNCTIONS["trsm"]
trmm = FUNCTIONS["trmm"]
syrk = FUNCTIONS["syrk"]
sumlogdiag = FUNCTIONS["sumlogdiag"]
gelqf = FUNCTIONS["gelqf"]
syevd = FUNCTIONS["syevd"]
extractdiag = FUNCTIONS["extractdiag"]
makediag = FUNCTIONS["makediag"]
extracttrian = FUNCTIONS["extracttrian"]
maketrian = FUNCTIONS["maketrian"]
inverse = FUNCTIONS["inverse"]
det = FUNCTIONS["det"]
slogdet = FUNCTIONS["slogdet"]


def cholesky(x, /, *, upper=False):
    """Cholesky factor with the Array API signature: ``potrf(x, lower=not upper)``."""
    return potrf(x, lower=not upper)


def eigh(x, /):
    """``(eigenvalues, eigenvectors)``, eigenvectors in columns (Array API layout): ``syevd``
    transposed, with its sign convention and its degenerate-gradient policy."""
    u, lam = syevd(x)
    return EighResult(lam, u.mT)


def inv(x, /):
    """Matrix inverse with the Array API name: ``inverse(x)``."""
    return inverse(x)


def solve_triangular(a, b, /, *, upper=False, left=True):
    """``a⁻¹ b`` (``left``) or ``b a⁻¹`` for triangular ``a``: ``trsm`` with torch's names."""
    return trsm(a, b, lower=not upper, rightside=not left)


__all__ = [*FUNCTIONS, "cholesky", "eigh", "inv", "solve_triangular", "EighResult", "FUNCTIONS"]
