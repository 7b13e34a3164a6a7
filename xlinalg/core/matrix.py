"""Small matrix helpers written against the Array API (``xp`` is the namespace)."""

from __future__ import annotations

import sys


def mT(xp, x):
    """Transpose of the last two axes."""
    return xp.matrix_transpose(x)


def tri(xp, x, lower: bool, k: int = 0):
    """The lower (``tril``) or upper (``triu``) triangle of ``x``; ``k`` shifts away from the
    diagonal into the other triangle's direction (``k=-1`` on lower: strictly lower)."""
    return xp.tril(x, k=k) if lower else xp.triu(x, k=-k)


def sym(xp, x):
    """``(X + Xᵀ)/2``: the orthogonal projection onto symmetric matrices."""
    return (x + mT(xp, x)) * 0.5


def from_triangle(xp, x, lower: bool):
    """The symmetric matrix whose ``lower``/upper triangle is that of ``x``.

    Not ``where(keep, X, Xᵀ)``: compiled by XLA for the CPU (jax 0.10), a select between an
    array and its transpose segfaults for n ≳ 1000."""
    return tri(xp, x, lower) + mT(xp, tri(xp, x, lower, k=-1))


def phi(xp, x):
    """``tril(X)`` with its diagonal halved (the Cholesky derivative's mask), in one pass."""
    n = x.shape[-1]
    idx = xp.arange(n, device=device(x))
    weights = xp.astype(idx[:, None] > idx[None, :], x.dtype) + 0.5 * xp.astype(idx[:, None] == idx[None, :], x.dtype)
    return x * weights


def diagonal(xp, x):
    """The main diagonal of the last two axes, shape ``(..., n)``."""
    return xp.linalg.diagonal(x) if hasattr(xp, "linalg") else _diag_gather(xp, x)


def _diag_gather(xp, x):
    n = x.shape[-1]
    flat = xp.reshape(x, (*x.shape[:-2], n * n))
    return xp.take(flat, xp.arange(0, n * n, n + 1), axis=-1)


def diag_embed(xp, v):
    """The diagonal matrix ``(..., n, n)`` with diagonal ``v`` ``(..., n)``."""
    n = v.shape[-1]
    eye = xp.eye(n, dtype=v.dtype, device=device(v))
    return v[..., None] * eye


def identity_like(xp, x):
    """Identity matrices with the shape, dtype and device of the square ``x``."""
    eye = xp.eye(x.shape[-1], dtype=x.dtype, device=device(x))
    return xp.broadcast_to(eye, x.shape)


def trace_of_product(xp, a, b):
    """``tr(Aᵀ B) = Σ_ij A_ij B_ij`` per matrix."""
    return xp.sum(a * b, axis=(-2, -1))


def device(x):
    """The device of the array ``x``, as ``array_api_compat.device``.

    Torch tensors are recognised by type (through ``sys.modules``, importing nothing) and answer
    ``x.device`` directly: ``array_api_compat.device`` tests the array against every library
    with ``functools.lru_cache``-wrapped helpers, which ``torch.compile`` warns about when it
    traces them.

    Parameters
    ----------
    x : array
        An array of any Array API library.

    Returns
    -------
    device
        The library's device object.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.device
    import array_api_compat

    return array_api_compat.device(x)
