"""JAX adapter tests: every module skips itself when JAX is not installed (through
``jax_cases.JAX_INSTALLED``). float64 is enabled; the float32-only tests switch it off."""

from __future__ import annotations

from tests.jax_adapter.jax_cases import JAX_INSTALLED

if JAX_INSTALLED:
    import jax

    jax.config.update("jax_enable_x64", True)
