"""On a GPU (skipped elsewhere): xlinalg.jax on GPU arrays gives the CPU's values and gradients
for every operator of the GPU rules, eagerly and under ``jit``, and a failing batch entry raises
eagerly with its index. scripts/gpu_check.sh runs it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.jax_adapter.jax_cases import JAX_INSTALLED, inputs

if not JAX_INSTALLED:
    pytest.skip("jax is not installed", allow_module_level=True)

import jax
import jax.numpy as jnp

import xlinalg
import xlinalg.jax
from xlinalg.core import operators
from xlinalg.cuda.rules import RULES


def _gpu():
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        return None


GPU = _gpu()
pytestmark = pytest.mark.skipif(GPU is None, reason="JAX sees no GPU")
CASES = [(name, p) for name in sorted(RULES) for p in operators()[name].param_grid()]


def _loss(name, params):
    def loss(*arrays):
        out = getattr(xlinalg.jax, name)(*arrays, **params)
        return sum(jnp.sum(jnp.sin(y)) for y in jax.tree.leaves(out))

    return loss


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_gpu_values_and_gradients_match_the_cpu(name, params, dtype, monkeypatch):
    """Eager and jitted, in the packed layout and then, the same compiled programs, in the staged
    one (the handlers read XLINALG_CUDA_LAYOUT at each call)."""
    rng = np.random.default_rng(2)
    arrays = inputs(name, params, rng, batch=(5,), n=6, dtype=dtype)
    cpu = [jax.device_put(x, jax.devices("cpu")[0]) for x in arrays]
    gpu = [jax.device_put(x, GPU) for x in arrays]
    fn = lambda *a: getattr(xlinalg.jax, name)(*a, **params)  # noqa: E731
    grad = jax.grad(_loss(name, params), argnums=tuple(range(len(arrays))))
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == "float64" else {"rtol": 2e-4, "atol": 2e-4}
    with jax.default_device(jax.devices("cpu")[0]):
        want = jax.tree.leaves(fn(*cpu)) + list(grad(*cpu))
    jitted, jitted_grad = jax.jit(fn), jax.jit(grad)
    nout = len(want) - len(arrays)
    for layout in ("packed", "staged"):
        monkeypatch.setenv("XLINALG_CUDA_LAYOUT", layout)
        for got in (jax.tree.leaves(fn(*gpu)), jax.tree.leaves(jitted(*gpu))):  # eager and jitted
            _close(got, want[:nout], tol)
        for got in (list(grad(*gpu)), list(jitted_grad(*gpu))):
            _close(got, want[nout:], tol)


def _close(got, want, tol):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert next(iter(g.devices())).platform == GPU.platform
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), **tol)


def test_gpu_failure_names_the_batch_index():
    a = np.broadcast_to(np.eye(3), (3, 3, 3)).copy()
    a[1, 2, 2] = -1.0
    with pytest.raises(xlinalg.LinAlgError, match=r"batch index \(1,\)"):
        xlinalg.jax.potrf(jax.device_put(a, GPU))
    out = jax.jit(xlinalg.jax.potrf)(jax.device_put(a, GPU))
    out = np.asarray(out)
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
