"""Inputs of every operator for every parameter combination (NumPy), and small helpers."""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np

import xlinalg
from xlinalg.core.operator import operators

_spec = importlib.util.find_spec("jax")
JAX_INSTALLED = _spec is not None and _spec.origin is not None


def spd(rng, shape, dtype="float64"):
    n = shape[-1]
    a = rng.standard_normal(shape)
    return (a @ np.swapaxes(a, -1, -2) / max(n, 1) + np.eye(n)).astype(dtype)


def tri(rng, shape, lower=True, dtype="float64"):
    n = shape[-1]
    t = rng.standard_normal(shape) + 3 * np.eye(n)
    return (np.tril(t) if lower else np.triu(t)).astype(dtype)


def param_grid(name):
    """Every combination of ``name``'s parameters: both values of each flag, offsets 0/±1,
    non-default ``alpha``/``beta``."""
    op = operators()[name]
    axes = []
    for key, default in op.params.items():
        if isinstance(default, bool):
            axes.append([(key, False), (key, True)])
        elif key == "offset":
            axes.append([(key, 0), (key, 1), (key, -1)])
        elif key == "alpha":
            axes.append([(key, 0.5)])
        elif key == "beta":
            axes.append([(key, -1.5)])
    return [dict(c) for c in itertools.product(*axes)]


def grid():
    """``(name, params)`` for every operator and parameter combination."""
    return [(name, p) for name in sorted(operators()) for p in param_grid(name)]


def case_id(name, params):
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def inputs(name, params, rng, batch=(), n=3, k=2, dtype="float64"):
    """Well-conditioned NumPy inputs of ``name`` with ``params``, batch axes ``batch``."""

    def mat(r, c):
        return rng.standard_normal((*batch, r, c)).astype(dtype)

    lower = params.get("lower", True)
    ta, tb = params.get("transpose_a", False), params.get("transpose_b", False)
    side = params.get("rightside", False)
    if name in ("gemm", "gemm2"):
        a = mat(k, n) if ta else mat(n, k)
        b = mat(2, k) if tb else mat(k, 2)
        return (a, b, mat(n, 2)) if name == "gemm" else (a, b)
    if name == "syrk":
        return (mat(n, k),)
    if name in ("trmm", "trsm"):
        return tri(rng, (*batch, n, n), lower, dtype), mat(k, n) if side else mat(n, k)
    if name == "potri":
        return (tri(rng, (*batch, n, n), lower, dtype),)
    if name == "potrs":
        return tri(rng, (*batch, n, n), lower, dtype), mat(n, k)
    if name in ("potrf", "sumlogdiag"):
        return (spd(rng, (*batch, n, n), dtype),)
    if name == "syevd":  # well separated eigenvalues
        q, _ = np.linalg.qr(rng.standard_normal((*batch, n, n)))
        lam = np.arange(1, n + 1, dtype="float64") * 1.5
        return (((q * lam[..., None, :]) @ np.swapaxes(q, -1, -2)).astype(dtype),)
    if name == "gelqf":
        return (mat(n - 1, n),)
    if name in ("extractdiag", "extracttrian"):
        return (mat(n, n),)
    if name == "makediag":
        return (rng.standard_normal((*batch, n)).astype(dtype),)
    if name == "maketrian":
        return (rng.standard_normal((*batch, n * (n + 1) // 2)).astype(dtype),)
    if name in ("inverse", "det", "slogdet"):
        return (mat(n, n) + 3 * np.eye(n, dtype=dtype),)
    raise KeyError(name)


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
