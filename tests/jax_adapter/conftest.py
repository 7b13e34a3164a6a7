"""JAX adapter tests: every module skips itself when JAX is not installed (through
``jax_cases.JAX_INSTALLED``, checked with ``find_spec``: with ``tests`` on ``sys.path`` this
directory is a namespace package named ``jax`` that a plain import would find). float64 is
enabled; the float32-only tests switch it off."""

from __future__ import annotations

import os
import sys

# jax_cases.py lives beside this file (a unique name: it cannot shadow a library).
sys.path.insert(0, os.path.dirname(__file__))

from jax_cases import JAX_INSTALLED  # noqa: E402

if JAX_INSTALLED:
    import jax

    jax.config.update("jax_enable_x64", True)
