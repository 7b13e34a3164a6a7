"""Inputs of every operator for every parameter combination (NumPy), and small helpers."""

from __future__ import annotations

import importlib.util

import numpy as np

import xlinalg
from xlinalg.core import samples
from xlinalg.core.operator import operators

JAX_INSTALLED = importlib.util.find_spec("jax") is not None


def spd(rng, shape, dtype="float64"):
    n = shape[-1]
    a = rng.standard_normal(shape)
    return (a @ np.swapaxes(a, -1, -2) / max(n, 1) + np.eye(n)).astype(dtype)


def grid():
    """``(name, params)`` for every operator and every combination of its registry grid."""
    return [(name, p) for name in sorted(operators()) for p in operators()[name].param_grid()]


def case_id(name, params):
    return samples.case_id(name, params)


def inputs(name, params, rng, batch=(), n=3, dtype="float64"):
    """Well-conditioned NumPy inputs of ``name`` (registry entry) with ``params`` (defaults
    filled in) and batch axes ``batch``; symmetric arguments symmetric, triangular ones zero
    outside their triangle."""
    op = operators()[name]
    arrays, _ = samples.draw(op, rng, [batch], n, {**op.params, **params}, garbage=False)
    return tuple(x.astype(dtype) for x in arrays)


def structured(name, params, fn):
    """``fn`` with its symmetric arguments passed through ``sym`` (so that unstructured
    perturbations, as finite differences make, stay symmetric). Triangular arguments need no
    wrapping: reading one triangle is a linear projection the JVP applies to tangents too."""
    op = operators()[name]

    def wrapped(*arrays):
        arrays = [(x + x.mT) / 2 if a.structure == "symmetric" else x for x, a in zip(arrays, op.args)]
        return fn(*arrays, **params)

    return wrapped


def as_tuple(out):
    return tuple(out) if isinstance(out, tuple) else (out,)


def numpy_reference(name, arrays, params):
    """Outputs of the core rules on NumPy float64 arrays."""
    return as_tuple(getattr(xlinalg, name)(*[np.asarray(x, dtype="float64") for x in arrays], **params))


def weights(rng, outputs):
    """Random cotangents shaped like ``outputs`` (NumPy)."""
    return tuple(rng.standard_normal(np.shape(y)) for y in outputs)
