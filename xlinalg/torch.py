"""xlinalg's operators bound into PyTorch autograd: ``xlinalg.torch.potrf(tensor)``, ...

The same functions that ``xlinalg.<operator>`` dispatches to for tensors (see
:mod:`xlinalg.adapters.torch`), plus the Array API-named aliases ``cholesky``, ``eigh``,
``inv`` and ``solve_triangular`` (signatures and result layouts of ``torch.linalg``).
Importing this module imports torch.
"""

from __future__ import annotations

from . import adapters as _adapters
from .adapters import torch as _adapter
from .api import EighResult
from .core.operator import operators as _operators
from .errors import LinAlgError

#: operator name -> bound function
FUNCTIONS = {name: _adapters.bound(_adapter, op) for name, op in _operators().items()}
OPERATORS = tuple(FUNCTIONS)

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
    """Cholesky factor with ``torch.linalg.cholesky``'s signature: ``potrf(x, lower=not upper)``."""
    return potrf(x, lower=not upper)


def eigh(x, /):
    """``(eigenvalues, eigenvectors)``, eigenvectors in columns (``torch.linalg.eigh``'s layout):
    ``syevd`` transposed, with its sign convention and degenerate-gradient policy. The lower
    triangle of ``x`` is read."""
    u, lam = syevd(x)
    return EighResult(lam, u.mT)


def inv(x, /):
    """Matrix inverse with ``torch.linalg.inv``'s name: ``inverse(x)``."""
    return inverse(x)


def solve_triangular(a, b, /, *, upper=False, left=True):
    """``a⁻¹ b`` (``left``) or ``b a⁻¹`` for triangular ``a``, with the parameters of
    ``torch.linalg.solve_triangular`` (``upper`` defaults to False, as in
    ``xlinalg.solve_triangular``): ``trsm(a, b, lower=not upper, rightside=not left)``."""
    return trsm(a, b, lower=not upper, rightside=not left)


__all__ = [*OPERATORS, "cholesky", "eigh", "inv", "solve_triangular", "EighResult", "LinAlgError", "OPERATORS"]
