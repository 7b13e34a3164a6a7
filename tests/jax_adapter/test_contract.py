"""JAX's contract with the core rules, for every operator.

Under JAX the VJP rule is never called: JAX linearizes each operator through its JVP rule and
transposes that. So every JVP must be linear in the tangents in a way JAX can transpose, and
the transpose must equal the core VJP rule. An operator can opt out (``jax_reverse="vjp"``):
JAX then runs the core VJP through ``jax.custom_vjp``, giving up forward mode.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.jax_adapter.jax_cases import JAX_INSTALLED, as_tuple, case_id, grid, inputs, weights

if not JAX_INSTALLED:
    pytest.skip("jax is not installed", allow_module_level=True)

import jax
import jax.numpy as jnp

import xlinalg
import xlinalg.jax as xj
from xlinalg.adapters import jax as adapter
from xlinalg.core import operators

GRID = grid()


@pytest.mark.parametrize("name, params", GRID, ids=[case_id(*c) for c in GRID])
def test_transposed_jvp_is_the_vjp_rule(name, params):
    """``jax.linear_transpose`` of the linearized operator (what ``jax.grad`` uses) equals the
    core VJP rule evaluated by NumPy."""
    if operators()[name].jax_reverse == "vjp":
        pytest.skip("uses the VJP rule through jax.custom_vjp")
    rng = np.random.default_rng(3)
    arrays = inputs(name, params, rng, batch=(2,), n=3)
    xs = tuple(jnp.asarray(x) for x in arrays)

    def f(*xs):
        return as_tuple(getattr(xj, name)(*xs, **params))

    outs, linear = jax.linearize(f, *xs)
    cotangents = weights(rng, outs)
    transposed = jax.linear_transpose(linear, *xs)(tuple(jnp.asarray(c) for c in cotangents))
    _, pullback = xlinalg.vjp(name, *arrays, **params)
    expected = pullback(cotangents if len(outs) > 1 else cotangents[0])
    for got, want in zip(transposed, expected):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-12)


def test_an_operator_can_opt_into_the_vjp_rule():
    """``jax_reverse="vjp"``: reverse mode runs the core VJP rule (a broken JVP rule does not
    matter to ``jax.grad``), forward mode is refused with JAX's error."""
    inverse = operators()["inverse"]

    def broken_jvp(xp, kern, inputs, outputs, tangents):
        return (0.0 * outputs[0],)

    op = replace(inverse, jvp=broken_jvp, jax_reverse="vjp")
    fn = adapter.bind(op)
    a = jnp.asarray(np.array([[2.0, 1.0], [0.5, 3.0]]))
    w = jnp.asarray(np.array([[1.0, -2.0], [0.3, 0.7]]))
    got = jax.grad(lambda a: jnp.sum(fn(a) * w))(a)
    _, pullback = xlinalg.vjp(inverse, np.asarray(a))
    np.testing.assert_allclose(np.asarray(got), pullback(np.asarray(w))[0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(lambda a: jnp.sum(fn(a) * w)))(a)), np.asarray(got), rtol=1e-12)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(fn, (a,), (w,))
