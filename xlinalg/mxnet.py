"""xlinalg's operators for MXNet, a drop-in for ``mx.nd.linalg`` / ``mx.sym.linalg``.

``import xlinalg.mxnet as linalg`` and code written against ``mx.nd.linalg`` runs unchanged:
the same names, parameters, defaults, output order and shapes. Every function takes NDArrays
(differentiable with ``mx.autograd``, ``grad_req`` "write" and "add") or Symbols (``mx.sym``
graphs, hybridized ``HybridBlock``\\ s). Also ``potrs``, which MXNet lacks. Differences from
MXNet's own operators are listed in ``docs/mxnet.md``.

Importing this module imports MXNet.
"""

from __future__ import annotations

from .adapters import require as _require

_mx = _require("mxnet")  # this namespace is for MXNet arrays; a missing MXNet names the pip extra

from . import core as _core  # noqa: E402  (after the framework check above)
from .adapters import bound as _bound  # noqa: E402
from .adapters import mxnet as _adapter  # noqa: E402
from .core.docs import docstring as _docstring  # noqa: E402

#: Appended to every operator's docstring (the end of its Notes section).
_NOTE = (
    "\n\nIn ``xlinalg.mxnet`` the function takes MXNet NDArrays (differentiable with\n"
    "``mx.autograd``) or Symbols, with the signature of ``mx.nd.linalg``: array arguments A, B, C\n"
    "(positional or by keyword), then the parameters, ``out`` and ``name``."
)


def _make(name):
    op = _core.get(name)
    _adapter.register(op)  # so that exported graphs using it load after this import
    fn = _bound(_adapter, op)
    fn.__module__ = __name__
    fn.__doc__ = _docstring(op) + _NOTE
    return fn


#: Every registered operator by name, bound to MXNet: a new core operator appears here (and in
#: ``__all__``) by being registered.
FUNCTIONS = {name: _make(name) for name in _core.operators()}
_clash = sorted(set(FUNCTIONS) & set(globals()))
if _clash:
    raise ImportError(f"xlinalg.mxnet: operator name(s) {', '.join(_clash)} clash with the module's own names")
globals().update(FUNCTIONS)

__all__ = list(FUNCTIONS)
