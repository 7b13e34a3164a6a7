"""xlinalg's operators as JAX functions: ``xlinalg.jax.potrf``, ...

Each is a ``jax.custom_jvp`` function made by the generic adapter
(:mod:`xlinalg.adapters.jax`) from the operator's spec; ``xlinalg.<op>(jax_array)`` calls the
same function. Parameters are static Python values. Plus the Array API-named aliases
``cholesky``, ``eigh``, ``inv`` and ``solve_triangular``. Importing this module imports JAX.
"""

from . import adapters as _adapters

_adapters.require("jax")  # a missing JAX names the pip extra that installs it

from . import api as _api  # noqa: E402
from .adapters import jax as _adapter  # noqa: E402
from .api import EighResult  # noqa: F401,E402
from .core.operator import operators as _operators  # noqa: E402
from .errors import LinAlgError  # noqa: F401,E402

globals().update(
    _api.namespace({name: _adapters.bound(_adapter, op) for name, op in _operators().items()}, __name__)
)
