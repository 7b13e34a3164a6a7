"""JAX adapter tests; none is collected when JAX is not installed. float64 is enabled; the
float32-only tests switch it off."""

from __future__ import annotations

from tests.jax_adapter.jax_cases import JAX_INSTALLED

if not JAX_INSTALLED:
    collect_ignore_glob = ["test_*.py"]
else:
    import jax

    jax.config.update("jax_enable_x64", True)
