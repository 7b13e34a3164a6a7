"""xlinalg's operators bound into PyTorch autograd: ``xlinalg.torch.potrf(tensor)``, ...

The same functions that ``xlinalg.<operator>`` dispatches to for tensors: each a
``torch.autograd.Function`` made by the generic factory (:mod:`xlinalg.adapters.torch`) from
the operator's spec; plus the Array API-named aliases ``cholesky``, ``eigh``, ``inv`` and
``solve_triangular``. Importing this module imports torch.
"""

from . import adapters as _adapters

_adapters.require("torch")  # a missing torch names the pip extra that installs it

from . import api as _api  # noqa: E402
from .adapters import torch as _adapter  # noqa: E402
from .api import EighResult  # noqa: F401,E402
from .core.operator import operators as _operators  # noqa: E402
from .errors import LinAlgError  # noqa: F401,E402

globals().update(
    _api.namespace({name: _adapters.bound(_adapter, op) for name, op in _operators().items()}, __name__)
)
