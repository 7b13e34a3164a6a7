"""The conformance suite on the JAX backends, every operator × check: ``jax`` (eager) and
``jax_jit`` (everything inside ``jax.jit``), cross-checked against NumPy.

Both backends evaluate derivatives (VJP, JVP, reverse over reverse, vmap) with the same
compiled programs, cached per operator and input signature and shared between them (see
``xlinalg_conformance.backends.jax``): the derivative checks of the eager backend would repeat
those of the jit backend on the same programs. So the jit backend runs every check and the
eager backend the checks whose eager path is its own (:data:`EAGER_CHECKS`: op-by-op forward
evaluation, eager errors and NaN policy, dtypes, no mutation, agreement with NumPy).
``python -m xlinalg_conformance --backend jax`` runs every check eagerly and
``--backend jax_jit`` under jit; each prints its verdict as a table.
"""

from __future__ import annotations

import pytest
from xlinalg_conformance.plugin import conformance_tests

from tests.jax_adapter.jax_cases import JAX_INSTALLED

if not JAX_INSTALLED:
    pytest.skip("jax is not installed", allow_module_level=True)

#: the checks whose eager evaluation differs from the jitted one (see the module docstring)
EAGER_CHECKS = ("forward", "dtype", "no_mutation", "errors", "nan_policy", "cross")

test_conformance_jax = conformance_tests("jax", checks=EAGER_CHECKS)
test_conformance_jax_jit = conformance_tests("jax_jit")
