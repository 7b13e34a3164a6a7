"""xlinalg's operators for MXNet, a drop-in for ``mx.nd.linalg`` / ``mx.sym.linalg``.

``import xlinalg.mxnet as linalg`` and code written against ``mx.nd.linalg`` runs unchanged:
the same names, parameters, defaults, output order and shapes. Every function takes NDArrays
(differentiable with ``mx.autograd``, ``grad_req`` "write" and "add") or Symbols (``mx.sym``
graphs, hybridized ``HybridBlock``\\ s). Also ``potrs``, which MXNet lacks. Differences from
MXNet's own operators are listed in ``docs/mxnet.md``.

Importing this module imports MXNet.
"""

from __future__ import annotations

import mxnet as _mx  # noqa: F401  (this namespace is for MXNet arrays)

from . import core as _core
from .adapters import bound as _bound
from .adapters import mxnet as _adapter
from .api import docstring as _docstring


def _make(name):
    op = _core.get(name)
    _adapter.register(op)  # so that exported graphs using it load after this import
    fn = _bound(_adapter, op)
    fn.__module__ = __name__
    fn.__doc__ = _docstring(op).replace(
        "Works on arrays of\nany Array API library; torch, JAX and MXNet arrays are differentiable in their framework.",
        "Takes MXNet NDArrays\n(differentiable with ``mx.autograd``) or Symbols; array arguments are named A, B, C as in\n"
        "``mx.nd.linalg``.",
    )
    return fn


gemm = _make("gemm")
gemm2 = _make("gemm2")
potrf = _make("potrf")
potri = _make("potri")
potrs = _make("potrs")
trmm = _make("trmm")
trsm = _make("trsm")
syrk = _make("syrk")
sumlogdiag = _make("sumlogdiag")
gelqf = _make("gelqf")
syevd = _make("syevd")
extractdiag = _make("extractdiag")
makediag = _make("makediag")
extracttrian = _make("extracttrian")
maketrian = _make("maketrian")
inverse = _make("inverse")
det = _make("det")
slogdet = _make("slogdet")

__all__ = [
    "gemm", "gemm2", "potrf", "potri", "potrs", "trmm", "trsm", "syrk", "sumlogdiag", "gelqf",
    "syevd", "extractdiag", "makediag", "extracttrian", "maketrian", "inverse", "det", "slogdet",
]
