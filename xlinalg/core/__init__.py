"""Framework-neutral operators: specs and forward/JVP/VJP rules (one module per family)."""

from . import blas3, cholesky, eigen, inverse, layout, lq  # noqa: F401  (register the operators)
from .operator import Arg, Operator, Output, get, operators

__all__ = ["Arg", "Operator", "Output", "get", "operators"]
