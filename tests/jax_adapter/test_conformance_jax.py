"""The conformance suite on the JAX backends, every operator × check: ``jax`` (eager) and
``jax_jit`` (everything inside ``jax.jit``), cross-checked against NumPy.

Both backends evaluate derivatives (VJP, JVP, reverse over reverse, vmap) with the same
compiled programs, cached per operator and input signature and shared between them (see
``xlinalg_conformance.backends.jax``), so the second backend compiles almost nothing; the eager
backend's own cost is its eager calls. ``python -m xlinalg_conformance --backend jax`` and
``--backend jax_jit`` print the same verdict as a table.
"""

from __future__ import annotations

import pytest
from xlinalg_conformance.plugin import conformance_tests

from tests.jax_adapter.jax_cases import JAX_INSTALLED

if not JAX_INSTALLED:
    pytest.skip("jax is not installed", allow_module_level=True)

test_conformance_jax = conformance_tests("jax")
test_conformance_jax_jit = conformance_tests("jax_jit")
