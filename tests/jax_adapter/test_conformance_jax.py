"""The conformance suite on the JAX backends: ``jax`` (eager) and ``jax_jit`` (everything inside
``jax.jit``), cross-checked against NumPy.

By default a subset of operators that covers every path of the adapter (a symmetric argument
with a multi-output eigensolver, triangular arguments with broadcasting, scalar outputs, a
gather): the whole suite compiles hundreds of shapes and takes many minutes on two cores. Set
``XLINALG_CONFORMANCE_FULL=1`` for every operator (``python -m xlinalg_conformance --backend jax`` and
``--backend jax_jit`` print the same verdict as a table).
"""

from __future__ import annotations

import os

import pytest
from xlinalg_conformance.plugin import conformance_tests

from tests.jax_adapter.jax_cases import JAX_INSTALLED

if not JAX_INSTALLED:
    pytest.skip("jax is not installed", allow_module_level=True)

OPS = None if os.environ.get("XLINALG_CONFORMANCE_FULL") else ("potrs", "syevd", "slogdet", "maketrian")

test_conformance_jax = conformance_tests("jax", ops=OPS)
test_conformance_jax_jit = conformance_tests("jax_jit", ops=OPS)
